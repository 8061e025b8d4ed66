"""The suppression list: addresses that get no more list email (hard bounce, soft bounces,
complaint), and the bounce alert on the Contacts and Leads that have them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.db.models.functions import Upper

from crm.models import Contact, EmailSuppression, Lead


def people_with(address: str) -> tuple[QuerySet[Contact], QuerySet[Lead]]:
    upper = address.strip().upper()
    return (
        Contact.objects.annotate(address=Upper("email")).filter(address=upper),
        Lead.objects.annotate(address=Upper("email")).filter(address=upper),
    )


def address_suppress(*, address: str, reason: str, detail: str, when: datetime) -> None:
    """No more list email to this address; its Contacts and Leads show the bounce alert."""
    detail = detail[:255]
    EmailSuppression.objects.update_or_create(
        address=address.strip().lower(),
        defaults={"reason": reason, "detail": detail, "created_at": when},
    )
    for people in people_with(address):
        people.update(email_bounced_at=when, email_bounced_reason=detail)


def suppression_lift(*, address: str) -> None:
    """The rep has fixed the address (they send to it again, or change it): clear the alert."""
    EmailSuppression.objects.filter(address=address.strip().lower()).delete()
    for people in people_with(address):
        people.filter(email_bounced_at__isnull=False).update(
            email_bounced_at=None, email_bounced_reason=""
        )
