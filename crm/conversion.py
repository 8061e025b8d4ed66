"""Converting a lead: the new Account, Contact and Opportunity take over the lead's whole story.

Lead.convert makes the records; this workflow makes the conversion safe and complete. Under a
lock on the lead's row (two people converting at once: the second is refused, never a second
contact), and in one transaction, everything that happened to the lead moves to the contact
with one UPDATE per table, never a query per row: its emails (the recipient rows, with their
opens, clicks, bounces and replies), its tasks and calls (which also get the opportunity, or
else the account, as what they are about when they had nothing), its privacy changes, and
through the `lead_converted` hook its campaign memberships. The lead keeps its links to what
it became. Activity metrics and campaign influence are recomputed once the conversion commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.formats import date_format
from django.utils.timezone import localtime

from crm import hooks
from crm.activity import activity_changed
from crm.models import (
    Account,
    Contact,
    EmailMessageRelation,
    Lead,
    Opportunity,
    PrivacyChange,
    Task,
    User,
)


class LeadAlreadyConverted(Exception):
    """The lead was converted before (perhaps a moment ago, by someone else): nothing was done."""

    def __init__(self, lead: Lead) -> None:
        self.lead = lead
        when = f" on {date_format(localtime(lead.converted_at))}" if lead.converted_at else ""
        into = f" into {lead.converted_contact}" if lead.converted_contact_id else ""
        super().__init__(f"{lead} was already converted{when}{into}; it was not converted again.")


@dataclass(frozen=True)
class Conversion:
    """What a conversion made, and how much of the lead's story moved with it."""

    lead: Lead
    account: Account
    contact: Contact
    opportunity: Opportunity | None
    emails_moved: int
    tasks_moved: int


def lead_convert(
    *,
    lead_id: int,
    account: Account | None = None,
    opportunity_name: str = "",
    owner: User | None = None,
) -> Conversion:
    """Convert the lead and move its history to the new contact; raises LeadAlreadyConverted."""
    with transaction.atomic():
        # The row lock is the only safe check: two requests that both read the lead as open
        # would otherwise both convert it. The second waits here, then reads it converted.
        lead = (
            Lead.objects.select_for_update(of=("self",))
            .select_related("converted_contact")
            .get(pk=lead_id)
        )
        if lead.is_converted:
            raise LeadAlreadyConverted(lead)
        account, contact, opportunity = lead.convert(
            account=account, opportunity_name=opportunity_name, owner=owner
        )
        emails_moved = EmailMessageRelation.objects.filter(lead_id=lead_id).update(
            lead=None, contact=contact
        )
        tasks_moved = _tasks_move(lead_id, contact, account, opportunity)
        PrivacyChange.objects.filter(lead_id=lead_id).update(lead=None, contact=contact)
        # campaigns moves the lead's memberships (and recomputes influence after commit).
        hooks.lead_converted(lead_id=lead_id, contact_id=contact.pk)
        # The contact's account and opportunities are recomputed with it.
        activity_changed(contact_ids=[contact.pk], lead_ids=[lead_id])
    return Conversion(lead, account, contact, opportunity, emails_moved, tasks_moved)


def _tasks_move(
    lead_id: int, contact: Contact, account: Account, opportunity: Opportunity | None
) -> int:
    """The lead's tasks become the contact's; those about nothing are now about the deal (or
    else the account), as Salesforce relates a converted lead's activities. A task that already
    names what it is about keeps it."""
    tasks = Task.objects.filter(who_lead_id=lead_id)
    about: dict[str, Account | Opportunity] = (
        {"what_opportunity": opportunity} if opportunity else {"what_account": account}
    )
    unrelated = tasks.filter(what_account__isnull=True, what_opportunity__isnull=True).update(
        who_lead=None, who_contact=contact, **about
    )
    return unrelated + tasks.update(who_lead=None, who_contact=contact)
