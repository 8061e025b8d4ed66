"""Who a sequence or a triggered email may write to: the list email policy, reused.

Automated email is marketing in the person's eyes, so it is held to list email's rules (Don't
Process, Email Opt Out, Don't Market, suppressed addresses, forgotten people), decided by
privacy.policy.email_policy and the suppression list exactly as crm.sending decides a list
email; crm.sending refuses Don't Process again at send time.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm.models import Contact, EmailSuppression, Lead, OrgSettings
from privacy.forgotten import forgotten_among
from privacy.policy import email_policy

Person = Contact | Lead


def person_key(person: Person) -> tuple[str, int]:
    return ("contact" if isinstance(person, Contact) else "lead", person.pk)


def people_refusals(people: Sequence[Person]) -> dict[tuple[str, int], str]:
    """Why each person who may not be emailed is refused (absent: they may); two queries.

    The people carry their `individual` (select_related) so the policy reads no more rows.
    """
    org = OrgSettings.load()
    addresses = [person.email.strip() for person in people]
    forgotten = forgotten_among(addresses)
    suppressed = dict(
        EmailSuppression.objects.filter(
            address__in=[address.lower() for address in addresses if address]
        ).values_list("address", "reason")
    )
    refusals: dict[tuple[str, int], str] = {}
    for person, address in zip(people, addresses, strict=True):
        reason = ""
        if not address:
            reason = "No email address"
        elif isinstance(person, Lead) and person.status == Lead.Status.CONVERTED:
            reason = "Lead converted"
        elif address in forgotten:
            reason = "Forgotten person"
        else:
            decision = email_policy(
                person.individual,
                has_opted_out_of_email=person.has_opted_out_of_email,
                is_list_email=True,
                enforce_privacy=org.enforce_email_privacy,
            )
            if not decision.may_send:
                reason = decision.reason
            elif address.lower() in suppressed:
                reason = f"Suppressed: {EmailSuppression.Reason(suppressed[address.lower()]).label}"
        if reason:
            refusals[person_key(person)] = reason
    return refusals
