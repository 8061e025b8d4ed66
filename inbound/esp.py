"""ESP events (django-anymail's tracking webhooks): bounces, complaints, unsubscribes and
delivery reports applied like inbound mail's; opens and clicks go through tracking's buffer
and classification like our own endpoints' hits."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.email_events import email_events_record
from crm.models import EmailEvent, EmailMessageRelation, TrackedLink
from crm.privacy_changes import privacy_update
from inbound.effects import bounce_record, complaint_record
from inbound.models import InboundMessage
from inbound.parsing import HARD_REASONS, reason_from_text
from inbound.processing import MAX_RAW
from mailkit.tokens import configured_keys, make_token, parse_token
from tracking import buffer
from tracking.buffer import EventWriter, RawEvent


def esp_event_process(*, event: Any, esp_name: str) -> InboundMessage | None:
    """An ESP's tracking webhook event (through django-anymail), matched by our token."""
    keys = configured_keys()
    token = str((event.metadata or {}).get("openrate_token", ""))
    data = parse_token(token, keys=keys) if token else None
    relation = EmailMessageRelation.objects.filter(pk=data.recipient_id).first() if data else None
    identity = f"{esp_name}:{event.event_id or ''}:{event.event_type}:{event.recipient or ''}"
    fingerprint = hashlib.sha256(identity.encode()).hexdigest()
    if event.event_id and InboundMessage.objects.filter(fingerprint=fingerprint).exists():
        return None
    now = event.timestamp or timezone.now()
    note = ""
    with transaction.atomic():
        if relation is not None and event.event_type in ("opened", "clicked"):
            note = _esp_engagement(event, relation, token)
        elif event.event_type == "bounced" and relation is not None:
            detail = str(event.mta_response or event.description or event.reject_reason or "")
            hard = event.reject_reason == "invalid" or reason_from_text(detail) in HARD_REASONS
            bounce_record(relation=relation, hard=hard, status="", diagnostic=detail, when=now)
            note = f"{'hard' if hard else 'soft'} bounce reported by {esp_name}"
        elif event.event_type == "complained":
            address = relation.address if relation else str(event.recipient or "")
            if address:
                complaint_record(relation=relation, address=address, feedback_type="abuse")
                note = f"complaint reported by {esp_name}"
        elif event.event_type == "unsubscribed" and relation is not None:
            person = relation.contact or relation.lead
            changes = (
                privacy_update(
                    person=person, by=None, source=f"{esp_name} unsubscribe", email_opt_out=True
                )
                if person is not None
                else None
            )
            note = f"unsubscribed at {esp_name}"
            if changes:  # the email log and the dashboards count an unsubscribe once
                email_events_record(
                    kind=EmailEvent.Kind.UNSUBSCRIBED,
                    relation_ids=[relation.pk],
                    when=now,
                    detail=note,
                )
        elif event.event_type in ("delivered", "deferred") and relation is not None:
            note = f"{event.event_type} ({esp_name})"
            detail = str(event.mta_response or event.description or note)
            email_events_record(
                kind=EmailEvent.Kind(event.event_type),
                relation_ids=[relation.pk],
                when=now,
                detail=detail,
            )
        return InboundMessage.objects.create(
            fingerprint=fingerprint,
            source=InboundMessage.Source.WEBHOOK,
            kind=str(event.event_type)[:12],
            status=InboundMessage.Status.PROCESSED if note else InboundMessage.Status.UNMATCHED,
            note=(note or f"{esp_name} {event.event_type}: matches no email Openrate sent")[:255],
            message_id=str(event.message_id or "")[:255],
            from_address=str(event.recipient or "")[:255],
            relation=relation,
            raw=json.dumps(event.esp_event, default=str).encode()[:MAX_RAW],
        )


def _esp_engagement(event: Any, relation: EmailMessageRelation, token: str) -> str:
    """An ESP-tracked open or click goes through the same buffer and classification as ours."""
    link_id = 0
    if event.event_type == "clicked":
        link = TrackedLink.objects.filter(email_id=relation.email_id, url=event.click_url).first()
        if link is None:
            return ""
        link_id = link.pk
        token = make_token(relation.pk, link_id, key=configured_keys()[0])
    EventWriter(buffer.redis_client()).append(
        RawEvent(
            event_id=uuid.uuid4().hex,
            kind="click" if event.event_type == "clicked" else "open",
            token=token,
            received_at=(event.timestamp or timezone.now()).timestamp(),
            ip="",
            user_agent=str(event.user_agent or "")[:512],
            method="GET",
            relation_id=relation.pk,
            link_id=link_id,
        )
    )
    return f"{event.event_type} (reported by the ESP)"
