"""What inbound mail and ESP events change: a bounce on the recipient's copy (and the
suppression list), a complaint (Email Opt Out and suppression), a reply or auto-reply (an
incoming email threaded to the original, on the person's timeline, with a task for the sender),
and an ESP's own reports (opens and clicks, delivery, unsubscribes).

Each takes the copy it acts on: inbound.processing calls them only with proof that the message
answers that copy, inbound.review on an admin's word."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from crm.activity import activity_changed
from crm.email_events import email_events_record
from crm.models import (
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    OrgSettings,
    Task,
    TrackedLink,
    User,
)
from crm.privacy_changes import privacy_update
from crm.suppression import address_suppress, people_with
from crm.tokens import token_for
from mailkit.rewrite import html_to_text
from mailkit.tokens import Purpose
from tracking import buffer
from tracking.buffer import EventWriter, RawEvent

Relation = EmailMessageRelation


def bounce_record(
    *, relation: Relation, hard: bool, status: str, diagnostic: str, when: datetime
) -> bool:
    """A recipient's copy bounced; returns whether the address is now suppressed.

    A hard bounce suppresses at once; soft ones when Setup's limit is reached in its window.
    """
    Relation.objects.filter(pk=relation.pk).update(
        bounce_category=Relation.Bounce.HARD if hard else Relation.Bounce.SOFT,
        bounce_status=status[:16],
        bounce_diagnostic=diagnostic,
        bounced_at=when,
        delivery_status=Relation.Delivery.BOUNCED,
    )
    EmailMessage.objects.filter(pk=relation.email_id).update(is_bounced=True)
    code = f" {status}" if status else ""
    email_events_record(
        kind=EmailEvent.Kind.BOUNCED,
        relation_ids=[relation.pk],
        when=when,
        detail=f"{status} {diagnostic}".strip(),
        hard_bounce=hard,
    )
    if hard:
        address_suppress(
            address=relation.address,
            reason=EmailSuppression.Reason.HARD_BOUNCE,
            detail=f"Hard bounce{code}: {diagnostic}",
            when=when,
        )
        return True
    org = OrgSettings.load()
    window = timedelta(days=org.soft_bounce_window_days)
    soft = Relation.objects.filter(
        address__iexact=relation.address,
        bounce_category=Relation.Bounce.SOFT,
        bounced_at__gt=when - window,
        bounced_at__lte=when,
    ).count()
    if soft < org.soft_bounce_limit:
        return False
    address_suppress(
        address=relation.address,
        reason=EmailSuppression.Reason.SOFT_BOUNCES,
        detail=f"{soft} soft bounces in {org.soft_bounce_window_days} days (last{code}: "
        f"{diagnostic})",
        when=when,
    )
    return True


def complaint_record(
    *, relation: Relation | None, address: str, feedback_type: str, by: User | None = None
) -> None:
    """A spam complaint: Email Opt Out for the person (for everyone with the address when no
    copy is known), and the address is suppressed. `by` is the admin who applied it, if one did."""
    source = f"spam complaint ({feedback_type or 'abuse'})"
    person = (relation.contact or relation.lead) if relation else None
    people = [person] if person else [*(p for q in people_with(address) for p in q)]
    for someone in people:
        privacy_update(person=someone, by=by, source=source, email_opt_out=True)
    if relation is not None:
        email_events_record(
            kind=EmailEvent.Kind.COMPLAINED, relation_ids=[relation.pk], detail=source
        )
    address_suppress(
        address=address,
        reason=EmailSuppression.Reason.COMPLAINT,
        detail=f"Marked as spam ({feedback_type or 'abuse'})",
        when=timezone.now(),
    )


def reply_record(
    *,
    original: Relation,
    from_address: str,
    subject: str,
    html_body: str,
    text_body: str,
    message_id: str,
    received_at: datetime,
    is_auto_reply: bool,
) -> EmailMessage:
    """A person answered: an incoming email threaded to the original, on their timeline.

    A real reply also marks their copy replied and gives the sender a task to answer it; an
    automatic one (out of office) is recorded as such and never counts as a reply.
    """
    sent = original.email
    person = original.contact or original.lead
    # Whatever the sender wrote must fit the columns; the raw message keeps it all.
    subject, message_id = subject[:998], message_id[:255]
    from_address = from_address if len(from_address) <= 254 else ""
    incoming = EmailMessage.objects.create(
        subject=subject,
        html_body=html_body,
        text_body=text_body or html_to_text(html_body),
        from_address=from_address or original.address,
        from_name=person.name if person else original.name,
        to_addresses=sent.from_address,
        status=EmailMessage.Status.RECEIVED,
        incoming=True,
        is_auto_reply=is_auto_reply,
        message_identifier=message_id,
        thread_identifier=sent.thread_identifier,
        reply_to_message=sent,
        related_account=sent.related_account,
        related_opportunity=sent.related_opportunity,
        message_date=received_at,
        delivery_status="",
    )
    Relation.objects.bulk_create(
        [
            Relation(
                email=incoming,
                relation_type=Relation.Type.FROM,
                address=from_address or original.address,
                name=person.name if person else original.name,
                contact=original.contact,
                lead=original.lead,
                delivery_status=Relation.Delivery.SENT,
            ),
            Relation(
                email=incoming,
                relation_type=Relation.Type.TO,
                address=sent.from_address,
                user=sent.sender,
                delivery_status=Relation.Delivery.SENT,
            ),
        ]
    )
    activity_changed(
        contact_ids=[original.contact_id] if original.contact_id else [],
        lead_ids=[original.lead_id] if original.lead_id else [],
    )
    if not is_auto_reply:
        # Salesforce's Status of the email answered; the reply names it (reply_to_message), so
        # the email page links one to the other.
        EmailMessage.objects.filter(pk=sent.pk).exclude(status=EmailMessage.Status.REPLIED).update(
            status=EmailMessage.Status.REPLIED
        )
        first_reply = Relation.objects.filter(pk=original.pk, replied_at__isnull=True).update(
            replied_at=received_at
        )
        if first_reply:
            # Replied recipients, not reply messages: a second reply is not a new one.
            email_events_record(
                kind=EmailEvent.Kind.REPLIED,
                relation_ids=[original.pk],
                when=received_at,
                detail=subject,
            )
        if sent.sender is not None:
            who = person.name if person else original.address
            Task.objects.create(
                owner=sent.sender,
                subject=f"{who} replied: {subject}"[:255],
                description=incoming.text_body[:2000],
                subtype=Task.Subtype.EMAIL,
                priority=Task.Priority.HIGH,
                due_date=timezone.localdate(),
                who_contact=original.contact,
                who_lead=original.lead,
            )
    return incoming


def esp_engagement_record(
    *, relation: Relation, event_type: str, click_url: str, user_agent: str, when: datetime
) -> str:
    """An ESP-tracked open or click goes through the same buffer and classification as ours."""
    link_id = 0
    if event_type == "clicked":
        link = TrackedLink.objects.filter(email_id=relation.email_id, url=click_url).first()
        if link is None:
            return ""
        link_id = link.pk
    EventWriter(buffer.redis_client()).append(
        RawEvent(
            event_id=uuid.uuid4().hex,
            kind="click" if event_type == "clicked" else "open",
            token=token_for(relation.pk, Purpose.TRACK, link_id),
            received_at=when.timestamp(),
            ip="",
            user_agent=user_agent[:512],
            method="GET",
            relation_id=relation.pk,
            link_id=link_id,
        )
    )
    return f"{event_type} (reported by the ESP)"


def esp_unsubscribe_record(*, relation: Relation, esp_name: str, when: datetime) -> str:
    """The recipient unsubscribed at the ESP: Email Opt Out, logged once however often reported."""
    person = relation.contact or relation.lead
    note = f"unsubscribed at {esp_name}"
    changes = (
        privacy_update(person=person, by=None, source=f"{esp_name} unsubscribe", email_opt_out=True)
        if person is not None
        else None
    )
    if changes:  # the email log and the dashboards count an unsubscribe once
        email_events_record(
            kind=EmailEvent.Kind.UNSUBSCRIBED, relation_ids=[relation.pk], when=when, detail=note
        )
    return note


def delivery_report_record(*, relation: Relation, kind: str, detail: str, when: datetime) -> None:
    """An ESP's delivered or deferred report, in the email log."""
    email_events_record(
        kind=EmailEvent.Kind(kind), relation_ids=[relation.pk], when=when, detail=detail
    )
