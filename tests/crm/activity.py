"""Building a record's history by hand: emails both ways, opens and clicks, done tasks."""

import uuid
from datetime import datetime

from crm.models import Contact, EmailMessage, EmailMessageRelation, Lead
from tracking.models import TrackingEvent


def email_to(
    person: Contact | Lead, *, when: datetime, status: str = "sent", kind: str = "to"
) -> EmailMessageRelation:
    """An outgoing email to the person; `status` is their copy's delivery status."""
    email = EmailMessage.objects.create(
        subject="Hello",
        from_address="rita@openrate.example",
        status="sent",
        delivery_status="sent",
        message_date=when,
    )
    return EmailMessageRelation.objects.create(
        email=email,
        relation_type=kind,
        address=person.email,
        delivery_status=status,
        sent_at=when if status in ("sent", "bounced") else None,
        **_who(person),
    )


def email_from(
    person: Contact | Lead, *, when: datetime, auto_reply: bool = False
) -> EmailMessageRelation:
    """An incoming email from the person."""
    email = EmailMessage.objects.create(
        subject="Re: Hello",
        from_address=person.email,
        status="received",
        incoming=True,
        is_auto_reply=auto_reply,
        message_date=when,
    )
    return EmailMessageRelation.objects.create(
        email=email,
        relation_type="from",
        address=person.email,
        delivery_status="sent",
        **_who(person),
    )


def event(
    relation: EmailMessageRelation, *, when: datetime, kind: str = "open", label: str = "human"
) -> TrackingEvent:
    return TrackingEvent.objects.create(
        event_id=uuid.uuid4().hex,
        kind=kind,
        relation=relation,
        occurred_at=when,
        label=label,
        reason="test",
        method="GET",
    )


def _who(person: Contact | Lead) -> dict[str, Contact | Lead]:
    return {"contact": person} if isinstance(person, Contact) else {"lead": person}
