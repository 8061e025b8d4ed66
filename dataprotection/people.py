"""Who a data-subject request is about: a person's records, addresses and names.

A request is made from an Individual, a Contact or a Lead. The person is every record of that
Individual, the record itself, and every Contact or Lead sharing one of their addresses (the same
person entered twice). Forget and export both start here, so they reach the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.shortcuts import get_object_or_404

from crm.models import Contact, Lead
from privacy.models import Individual

KINDS = ("individual", "contact", "lead")


@dataclass(frozen=True)
class Person:
    """One data subject, as the database holds them."""

    label: str  # kind and id, never a name: "Contact #12"
    individual_ids: frozenset[int]
    contact_ids: frozenset[int]
    lead_ids: frozenset[int]
    addresses: frozenset[str]  # lower-cased
    names: frozenset[str]  # the strings that name them: full names, first / last names (3+ chars)

    @property
    def is_empty(self) -> bool:
        return not (self.individual_ids or self.contact_ids or self.lead_ids)


def person_from(kind: str, pk: int) -> Person:
    """The person a request about this Individual, Contact or Lead is about (404 if none)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}")
    individual_ids: set[int] = set()
    contact_ids: set[int] = set()
    lead_ids: set[int] = set()
    if kind == "individual":
        individual_ids.add(get_object_or_404(Individual, pk=pk).pk)
    elif kind == "contact":
        contact = get_object_or_404(Contact, pk=pk)
        contact_ids.add(contact.pk)
        if contact.individual_id:
            individual_ids.add(contact.individual_id)
    else:
        lead = get_object_or_404(Lead, pk=pk)
        lead_ids.add(lead.pk)
        if lead.individual_id:
            individual_ids.add(lead.individual_id)
    if individual_ids:
        contact_ids |= set(
            Contact.objects.filter(individual__in=individual_ids).values_list("pk", flat=True)
        )
        lead_ids |= set(
            Lead.objects.filter(individual__in=individual_ids).values_list("pk", flat=True)
        )
    addresses = _addresses(contact_ids, lead_ids)
    if addresses:
        # The same person entered again under the same address is the same person.
        same = Q()
        for address in addresses:
            same |= Q(email__iexact=address)
        contact_ids |= set(Contact.objects.filter(same).values_list("pk", flat=True))
        lead_ids |= set(Lead.objects.filter(same).values_list("pk", flat=True))
        addresses = _addresses(contact_ids, lead_ids)
    names: set[str] = set()
    for model, ids in ((Contact, contact_ids), (Lead, lead_ids), (Individual, individual_ids)):
        for first, last in model.objects.filter(pk__in=ids).values_list("first_name", "last_name"):
            names.update(_name_strings(first, last))
    return Person(
        label=f"{kind.capitalize()} #{pk}",
        individual_ids=frozenset(individual_ids),
        contact_ids=frozenset(contact_ids),
        lead_ids=frozenset(lead_ids),
        addresses=frozenset(addresses),
        names=frozenset(names),
    )


def _addresses(contact_ids: set[int], lead_ids: set[int]) -> set[str]:
    found = set(Contact.objects.filter(pk__in=contact_ids).values_list("email", flat=True))
    found |= set(Lead.objects.filter(pk__in=lead_ids).values_list("email", flat=True))
    return {address.strip().lower() for address in found if address and address.strip()}


def _name_strings(first: str, last: str) -> set[str]:
    """The strings that name someone: the full name, and each part of 3 characters or more."""
    first, last = (first or "").strip(), (last or "").strip()
    strings = {f"{first} {last}".strip()} | {part for part in (first, last) if len(part) >= 3}
    return {s for s in strings if s}


def scheduled_emails_of(person: Person) -> Q:
    """Scheduled emails written from one of their pages or naming one of their addresses."""
    found = Q(contact_id__in=sorted(person.contact_ids)) | Q(lead_id__in=sorted(person.lead_ids))
    for address in sorted(person.addresses):
        for column in ("to_addresses", "cc_addresses", "bcc_addresses"):
            found |= Q(**{f"{column}__icontains": address})
    return found
