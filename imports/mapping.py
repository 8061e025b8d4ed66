"""What an import may fill, per kind, and turning one row into a record's values.

The fields and their rules are the record forms' own (crm.forms ContactForm, LeadForm,
AccountForm, built once per import for the importing user), so a row the record's form would
refuse is refused here with the same words ("Email: Enter a valid email address.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from crm.forms import AccountForm, ContactForm, LeadForm, RecordForm
from crm.models import Account, Contact, Lead, User

ACCOUNT_NAME = "account_name"  # a Contact's account, named (looked up, or created, by name)
OPT_OUT = "has_opted_out_of_email"
KIND_FORMS: dict[str, type[RecordForm]] = {
    "contact": ContactForm,
    "lead": LeadForm,
    "account": AccountForm,
}
KIND_MODELS: dict[str, type[Contact] | type[Lead] | type[Account]] = {
    "contact": Contact,
    "lead": Lead,
    "account": Account,
}
# Other names a column may have, written as `_key` makes them (lower case, letters and digits).
_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first", "firstname", "givenname", "forename", "prenom"),
    "last_name": ("last", "lastname", "surname", "familyname", "nom"),
    "email": ("email", "emailaddress", "mail", "mailaddress", "emailid", "workemail"),
    "phone": ("phone", "telephone", "tel", "phonenumber", "mobile", "businessphone"),
    "title": ("title", "jobtitle", "position", "role"),
    "name": ("name", "accountname", "company", "companyname", "organization"),
    ACCOUNT_NAME: ("account", "accountname", "company", "companyname", "organization"),
    "company": ("company", "companyname", "account", "accountname", "organization"),
    OPT_OUT: ("emailoptout", "optout", "optedout", "unsubscribed", "hasoptedoutofemail"),
    "mailing_city": ("city", "mailingcity"),
    "mailing_country": ("country", "mailingcountry"),
    "billing_city": ("city", "billingcity"),
    "billing_country": ("country", "billingcountry"),
    "lead_source": ("source", "leadsource"),
    "status": ("status", "leadstatus"),
    "website": ("website", "web", "url", "site", "homepage"),
    "industry": ("industry", "sector"),
    "description": ("description", "notes", "note"),
    "is_person_account": ("personaccount", "isperson"),
}
_TRUE = {"1", "true", "yes", "y", "x", "t", "on", "checked", "opted out", "optedout"}
_FALSE = {"0", "false", "no", "n", "f", "off", "unchecked"}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class Target:
    """A field a column may fill."""

    name: str
    label: str
    required: bool
    form_field: forms.Field


def targets(kind: str, user: User) -> dict[str, Target]:
    """The fields an import of this kind may fill, in the form's order, with the form's rules."""
    form = KIND_FORMS[kind](user=user)
    model = KIND_MODELS[kind]
    found: dict[str, Target] = {}
    for name, form_field in form.fields.items():
        if name == "owner":
            continue  # the job's owner, chosen once for every row
        if name == "account":
            found[ACCOUNT_NAME] = Target(
                ACCOUNT_NAME,
                "Account name",
                False,
                forms.CharField(max_length=Account._meta.get_field("name").max_length),
            )
            continue
        model_field = model._meta.get_field(name)
        has_default = isinstance(model_field, models.Field) and model_field.has_default()
        found[name] = Target(
            name, str(form_field.label), form_field.required and not has_default, form_field
        )
    return found


def guess(header: list[str], kind: str, user: User) -> dict[str, str]:
    """A first mapping from the columns' names: "E-mail", "Email Address" -> email, ..."""
    known: dict[str, str] = {}
    for target in targets(kind, user).values():
        for alias in (_key(target.name), _key(target.label), *_ALIASES.get(target.name, ())):
            known.setdefault(alias, target.name)
    mapping: dict[str, str] = {}
    for column in header:
        name = known.get(_key(column))
        if name and name not in mapping.values():
            mapping[column] = name
    return mapping


def mapping_problems(mapping: dict[str, str], kind: str, user: User, rule: str) -> list[str]:
    """What is wrong with a mapping, in words: a required field with no column, a field chosen
    for two columns, a duplicate rule without the column it compares."""
    fields = targets(kind, user)
    problems: list[str] = []
    columns_of: dict[str, list[str]] = {}
    for column, name in mapping.items():
        if name in fields:
            columns_of.setdefault(name, []).append(column)
    for name, columns in columns_of.items():
        if len(columns) > 1:
            named = " and ".join(f"“{c}”" for c in columns)
            problems.append(f"{fields[name].label} is chosen for more than one column: {named}.")
    for target in fields.values():
        if target.required and target.name not in columns_of:
            problems.append(f"Choose the column that holds the {target.label.lower()}.")
    if rule == "email" and "email" in fields and "email" not in columns_of:
        problems.append("To find duplicates by email, choose the column that holds the email.")
    return problems


@dataclass
class Cleaned:
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class RowCleaner:
    """Cleans rows of one import: the form fields are built once, then each row's cells go
    through them. An empty cell fills nothing (a new record gets the default, an existing one
    keeps its value), except a required field, which the form would refuse empty."""

    def __init__(self, kind: str, user: User, mapping: dict[str, str], header: list[str]):
        fields = targets(kind, user)
        self.columns = [
            (header.index(column), fields[name])
            for column, name in mapping.items()
            if name in fields and column in header
        ]
        self.choices: dict[str, dict[str, str]] = {}
        for _position, target in self.columns:
            if isinstance(target.form_field, forms.ChoiceField):
                words: dict[str, str] = {}
                for value, label in target.form_field.choices:  # type: ignore[misc,union-attr]
                    if value:
                        words[str(label).lower()] = str(value)
                        words[str(value).lower()] = str(value)
                self.choices[target.name] = words

    def clean(self, cells: list[str]) -> Cleaned:
        cleaned = Cleaned()
        for position, target in self.columns:
            raw = cells[position]
            if not raw and not target.required:
                continue
            try:
                cleaned.values[target.name] = self._clean_one(target, raw)
            except ValidationError as error:
                for message in error.messages:
                    cleaned.errors.append(f"{target.label}: {message}")
        return cleaned

    def _clean_one(self, target: Target, raw: str) -> Any:
        if isinstance(target.form_field, forms.BooleanField):
            word = raw.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValidationError(f"“{raw}” is not yes or no.")
        if target.name in self.choices:
            raw = self.choices[target.name].get(raw.strip().lower(), raw)
        return target.form_field.clean(raw)
