"""Changing a person's privacy: Email Opt Out and the Individual's flags, each change kept.

Every change is a PrivacyChange row, shown on the record's Activity Timeline with who made it
and from where (a rep, a one-click unsubscribe, a complaint). The send pipeline reads the flags
through privacy.policy; this module only writes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from crm.email_events import email_events_record
from crm.models import Contact, EmailEvent, EmailMessageRelation, Lead, PrivacyChange, User
from privacy.audit import audit_changes
from privacy.models import AuditEntry, Individual

# The Individual's flags a record page shows and edits, in the order people read them.
PRIVACY_FLAGS = (
    "has_opted_out_tracking",
    "has_opted_out_processing",
    "has_opted_out_solicit",
    "should_forget",
)


@transaction.atomic
def privacy_update(
    *,
    person: Contact | Lead,
    by: User | None,
    source: str,
    email_opt_out: bool | None = None,
    flags: Mapping[str, bool] | None = None,
) -> list[PrivacyChange]:
    """Change a person's Email Opt Out and Individual flags; each change is kept for the timeline.

    An Individual is created for the person when a flag is first set.
    """
    owner: dict[str, Contact | Lead] = (
        {"contact": person} if isinstance(person, Contact) else {"lead": person}
    )
    changes: list[PrivacyChange] = []
    if email_opt_out is not None and email_opt_out != person.has_opted_out_of_email:
        person.has_opted_out_of_email = email_opt_out
        person.save(update_fields=["has_opted_out_of_email", "updated_at"])
        changes.append(
            PrivacyChange(
                **owner,
                field="has_opted_out_of_email",
                label="Email Opt Out",
                value=email_opt_out,
                source=source,
                changed_by=by,
            )
        )
    individual = person.individual
    wanted = {
        name: value
        for name, value in (flags or {}).items()
        if name in PRIVACY_FLAGS and value != bool(individual and getattr(individual, name))
    }
    if wanted:
        if individual is None:
            individual = Individual.objects.create(
                first_name=person.first_name, last_name=person.last_name
            )
            person.individual = individual
            person.save(update_fields=["individual", "updated_at"])
        for name, value in wanted.items():
            setattr(individual, name, value)
            changes.append(
                PrivacyChange(
                    **owner,
                    field=name,
                    label=Individual.flag_label(name),
                    value=value,
                    source=source,
                    changed_by=by,
                )
            )
        individual.save(update_fields=[*wanted, "updated_at"])
    if changes:
        kind = "Contact" if isinstance(person, Contact) else "Lead"
        audit_changes(
            actor=by,
            action=AuditEntry.Action.PRIVACY_FLAG,
            target=f"{kind} #{person.pk}",
            changes=[(change.label, not change.value, change.value) for change in changes],
            note=source,
        )
    return PrivacyChange.objects.bulk_create(changes)


def unsubscribe_record(*, relation: EmailMessageRelation) -> bool:
    """The recipient of this copy unsubscribed: Email Opt Out, shown on their timeline.

    Returns whether anything changed: a second click changes nothing, and a copy whose Contact
    or Lead has since been deleted has no one left to opt out.
    """
    person = relation.contact or relation.lead
    if person is None:
        return False
    with transaction.atomic():
        changes = privacy_update(
            person=person, by=None, source="one-click unsubscribe", email_opt_out=True
        )
        if changes:  # the email log and the dashboards count an unsubscribe once
            email_events_record(
                kind=EmailEvent.Kind.UNSUBSCRIBED,
                relation_ids=[relation.pk],
                detail="one-click unsubscribe",
            )
    return bool(changes)
