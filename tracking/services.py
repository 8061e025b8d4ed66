"""Event ingestion: drain the buffer, label each event human or machine, store, recount.

Each batch runs in one transaction: the events are inserted (idempotent on event_id), then the
counters of every recipient, email and link the batch touched are recounted from the stored
events with one set-based UPDATE each. Recounting rather than incrementing makes a re-delivered
batch harmless; the buffer entries are removed only after the commit, so a crash loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import EmailEvent, EmailMessageRelation, OrgSettings, TrackedLink
from crm.services import (
    activity_refresh_enqueue,
    bounce_record,
    complaint_record,
    email_events_record,
    privacy_update,
    reply_record,
)
from tracking import buffer
from tracking.buffer import EventWriter, RawEvent
from tracking.classify import EventFacts, Label, classify, describe_client, truncate_ip
from tracking.inbound import HARD_REASONS, classify_message, message_content, reason_from_text
from tracking.inbound import InboundMessage as ParsedMessage
from tracking.models import InboundMessage, TrackingEvent
from tracking.rollups import rollups_add_events
from tracking.tokens import from_verp, make_token, parse_token, signing_keys

logger = logging.getLogger(__name__)

# Every SQL statement below names at most this many ids (SQLite allows 32,766 parameters).
CHUNK = 10_000
# An arbitrary constant: PostgreSQL's advisory lock key for the recount step.
RECOUNT_LOCK = 720_301


@dataclass(frozen=True)
class IngestResult:
    read: int
    stored: int


def events_ingest(*, batch_size: int = 5000, consumer: str = "") -> IngestResult:
    """Ingest one batch from each buffer (the Redis stream and the database table)."""
    read = stored = 0
    client = buffer.redis_client()
    if client is not None:
        events, stream_ids = buffer.read_stream(
            client, consumer or socket.gethostname(), batch_size
        )
        if stream_ids:
            with transaction.atomic():
                stored += _store(events)
            buffer.acknowledge_stream(client, stream_ids)
            read += len(events)
    with transaction.atomic():
        events, row_ids = buffer.read_database(batch_size)
        if row_ids:
            stored += _store(events)
            buffer.delete_database_rows(row_ids)
            read += len(row_ids)
    return IngestResult(read=read, stored=stored)


def _store(raw_events: Sequence[RawEvent]) -> int:
    org = OrgSettings.load()
    keys = _keys()
    parsed = []
    for raw in raw_events:
        data = parse_token(raw.token, keys=keys)
        if data is None:
            # Only possible if a signing key was removed between the request and now.
            logger.warning("Dropping event %s: its token no longer verifies", raw.event_id)
            continue
        parsed.append((raw, data.recipient_id, data.link_id or None))
    if not parsed:
        return 0
    relations = dict(
        EmailMessageRelation.objects.filter(pk__in={r for _, r, _ in parsed}).values_list(
            "pk", "sent_at"
        )
    )
    honeypots = set(
        TrackedLink.objects.filter(
            pk__in={link for _, _, link in parsed if link}, is_honeypot=True
        ).values_list("pk", flat=True)
    )
    # Several links clicked by one recipient within one second: a scanner following every link.
    burst = Counter(
        (relation, int(raw.received_at))
        for raw, relation, link in {(r, rel, lk) for r, rel, lk in parsed if lk}
    )
    rows = []
    for raw, relation_id, link_id in parsed:
        if relation_id not in relations:
            continue  # the email was deleted after it was sent
        occurred_at = datetime.fromtimestamp(raw.received_at, tz=UTC)
        sent_at = relations[relation_id]
        facts = EventFacts(
            kind=raw.kind,
            user_agent=raw.user_agent,
            ip=raw.ip,
            method=raw.method,
            seconds_since_delivery=(occurred_at - sent_at).total_seconds() if sent_at else None,
            honeypot=link_id in honeypots,
            links_clicked_same_second=burst[(relation_id, int(raw.received_at))] if link_id else 1,
        )
        verdict = classify(facts, scanner_window_seconds=org.scanner_window_seconds)
        client = describe_client(raw.user_agent)
        try:
            event_id = uuid.UUID(hex=raw.event_id)
        except ValueError:
            logger.warning("Dropping an event with a malformed id: %r", raw.event_id[:64])
            continue
        rows.append(
            TrackingEvent(
                event_id=event_id,
                kind=raw.kind,
                relation_id=relation_id,
                link_id=link_id,
                occurred_at=occurred_at,
                label=verdict.label,
                reason=verdict.reason[:200],
                ip=(raw.ip if org.store_full_ip else truncate_ip(raw.ip)) or None,
                user_agent=raw.user_agent[:512],
                method=raw.method[:8],
                device=client.device[:64],
                client=client.browser[:64],
                os=client.os[:64],
            )
        )
    # A re-delivered batch holds events stored before: only the new ones go to the rollups.
    stored_before = set(
        TrackingEvent.objects.filter(event_id__in=[row.event_id for row in rows]).values_list(
            "event_id", flat=True
        )
    )
    TrackingEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    recount(
        relation_ids={row.relation_id for row in rows},
        link_ids={row.link_id for row in rows if row.link_id},
        machine_open_filtering=org.machine_open_filtering,
    )
    new = [row.event_id for row in rows if row.event_id not in stored_before]
    rollups_add_events(
        event_ids=list(TrackingEvent.objects.filter(event_id__in=new).values_list("pk", flat=True))
    )
    # Human opens and clicks are activity: refresh those people's metrics and alerts.
    activity_refresh_enqueue(
        relation_ids={row.relation_id for row in rows if row.label == Label.HUMAN}
    )
    return len(rows)


def recount(*, relation_ids: set[int], link_ids: set[int], machine_open_filtering: bool) -> None:
    """Recount recipients, their emails and links from the stored events (set-based)."""
    if connection.vendor == "postgresql":
        # Serialise recounts so each one sees the events every earlier one committed.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECOUNT_LOCK])
    counted = "" if machine_open_filtering else "OR TRUE"
    human = f"label = '{Label.HUMAN}'"
    for ids in _chunks(relation_ids):
        _execute(
            f"""
            UPDATE crm_emailmessagerelation SET
                human_opens = a.human_opens,
                machine_opens = a.machine_opens,
                human_clicks = a.human_clicks,
                machine_clicks = a.machine_clicks,
                first_opened_at = a.first_opened_at,
                last_opened_at = a.last_opened_at,
                last_clicked_at = a.last_clicked_at,
                last_clicked_link_id = (
                    SELECT e.link_id FROM tracking_trackingevent AS e
                    WHERE e.relation_id = crm_emailmessagerelation.id AND e.kind = 'click'
                        AND (e.{human} {counted})
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ),
                machine_open_label = COALESCE((
                    SELECT e.label FROM tracking_trackingevent AS e
                    WHERE e.relation_id = crm_emailmessagerelation.id AND e.kind = 'open'
                        AND NOT e.{human}
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ), '')
            FROM (
                SELECT relation_id,
                    COUNT(*) FILTER (WHERE kind = 'open' AND {human}) AS human_opens,
                    COUNT(*) FILTER (WHERE kind = 'open' AND NOT {human}) AS machine_opens,
                    COUNT(*) FILTER (WHERE kind = 'click' AND {human}) AS human_clicks,
                    COUNT(*) FILTER (WHERE kind = 'click' AND NOT {human}) AS machine_clicks,
                    MIN(occurred_at) FILTER (WHERE kind = 'open' AND ({human} {counted}))
                        AS first_opened_at,
                    MAX(occurred_at) FILTER (WHERE kind = 'open' AND ({human} {counted}))
                        AS last_opened_at,
                    MAX(occurred_at) FILTER (WHERE kind = 'click' AND ({human} {counted}))
                        AS last_clicked_at
                FROM tracking_trackingevent
                WHERE relation_id IN ({_placeholders(ids)})
                GROUP BY relation_id
            ) AS a
            WHERE crm_emailmessagerelation.id = a.relation_id
            """,
            ids,
        )
    opens = "r.human_opens" if machine_open_filtering else "r.human_opens + r.machine_opens"
    clicks = "r.human_clicks" if machine_open_filtering else "r.human_clicks + r.machine_clicks"
    email_ids = list(
        EmailMessageRelation.objects.filter(pk__in=relation_ids)
        .order_by()  # the model's default ordering would join the emails for nothing
        .values_list("email_id", flat=True)
        .distinct()
    )
    for ids in _chunks(email_ids):
        _execute(
            f"""
            UPDATE crm_emailmessage SET
                times_opened = a.opens,
                times_clicked = a.clicks,
                is_opened = a.opens > 0,
                first_opened_at = a.first_opened_at,
                last_opened_at = a.last_opened_at
            FROM (
                SELECT r.email_id, SUM({opens}) AS opens, SUM({clicks}) AS clicks,
                    MIN(r.first_opened_at) AS first_opened_at,
                    MAX(r.last_opened_at) AS last_opened_at
                FROM crm_emailmessagerelation AS r
                WHERE r.email_id IN ({_placeholders(ids)})
                GROUP BY r.email_id
            ) AS a
            WHERE crm_emailmessage.id = a.email_id
            """,
            ids,
        )
    for ids in _chunks(link_ids):
        _execute(
            f"""
            UPDATE crm_trackedlink SET human_clicks = a.human, machine_clicks = a.machine
            FROM (
                SELECT link_id,
                    COUNT(*) FILTER (WHERE {human}) AS human,
                    COUNT(*) FILTER (WHERE NOT {human}) AS machine
                FROM tracking_trackingevent
                WHERE link_id IN ({_placeholders(ids)})
                GROUP BY link_id
            ) AS a
            WHERE crm_trackedlink.id = a.link_id
            """,
            ids,
        )


def _keys() -> tuple[bytes, ...]:
    """The tracking signing keys, newest first (what the endpoints verify with)."""
    return signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)


def _chunks(ids: set[int] | list[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def _placeholders(ids: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _execute(sql: str, params: Sequence[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))


# Inbound mail: bounces, complaints, auto-replies and replies.

MAX_RAW = 2 * 1024 * 1024
_VERP = re.compile(r"^bounces\+([A-Za-z0-9_-]+)@", re.IGNORECASE)


def inbound_mail_process(*, raw: bytes, source: str) -> InboundMessage:
    """Read one message that came back, match it to what was sent, and act on it.

    Idempotent: the same message (by content) is processed once. A message that matches
    nothing is kept, marked Unmatched, for a person to look at.
    """
    fingerprint = hashlib.sha256(raw).hexdigest()
    existing = InboundMessage.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return existing
    parsed = classify_message(raw)
    now = timezone.now()
    with transaction.atomic():
        relation = _match(parsed)
        note, created_email = "", None
        if parsed.kind == "bounce":
            note = _apply_bounces(parsed, relation, now)
        elif parsed.kind == "complaint" and (relation or parsed.recipients):
            address = relation.address if relation else parsed.recipients[0].address
            complaint_record(relation=relation, address=address, feedback_type=parsed.feedback_type)
            note = f"complaint ({parsed.feedback_type or 'abuse'}) from {address}"
        elif parsed.kind in ("reply", "auto_reply") and relation is not None:
            content = message_content(raw)
            created_email = reply_record(
                original=relation,
                from_address=parsed.from_address,
                subject=content.subject or parsed.subject,
                html_body=content.html,
                text_body=content.text,
                message_id=parsed.message_id,
                received_at=content.date or now,
                is_auto_reply=parsed.kind == "auto_reply",
            )
            what = "auto-reply" if parsed.kind == "auto_reply" else "reply"
            note = f"{what} from {parsed.from_address}"
        matched = bool(note)
        try:
            with transaction.atomic():
                return InboundMessage.objects.create(
                    fingerprint=fingerprint,
                    source=source,
                    kind=parsed.kind,
                    status=InboundMessage.Status.PROCESSED
                    if matched
                    else InboundMessage.Status.UNMATCHED,
                    note=(note or parsed.reason or "matches no email Openrate sent")[:255],
                    message_id=parsed.message_id[:255],
                    from_address=parsed.from_address[:255],
                    subject=parsed.subject[:998],
                    relation=relation,
                    created_email=created_email,
                    raw=raw[:MAX_RAW],
                )
        except IntegrityError:
            # Another worker stored the same message first; undo ours, keep theirs.
            transaction.set_rollback(True)
    return InboundMessage.objects.get(fingerprint=fingerprint)


def _match(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The recipient copy a message is about: VERP address, token header, then Message-IDs."""
    keys = _keys()
    tokens = [from_verp(m.group(1)) for a in parsed.to_addresses if (m := _VERP.match(a))]
    tokens += [parsed.original_headers.get("X-Openrate-Token", "").strip()]
    for token in tokens:
        data = parse_token(token, keys=keys) if token else None
        if data is not None:
            found = EmailMessageRelation.objects.filter(pk=data.recipient_id).first()
            if found is not None:
                return found
    ids = [i for i in (parsed.original_message_id, *parsed.in_reply_to) if i]
    if ids:
        found = (
            EmailMessageRelation.objects.filter(message_id__in=ids)
            .exclude(relation_type=EmailMessageRelation.Type.FROM)
            .order_by("-pk")
            .first()
        )
        if found is not None:
            return found
        sender = parsed.from_address.lower()
        found = (
            EmailMessageRelation.objects.filter(
                email__message_identifier__in=ids, address__iexact=sender
            )
            .exclude(relation_type=EmailMessageRelation.Type.FROM)
            .first()
        )
        if found is not None:
            return found
    return None


def _apply_bounces(
    parsed: ParsedMessage, relation: EmailMessageRelation | None, now: datetime
) -> str:
    notes = []
    for failed in parsed.recipients or ():
        target = relation
        if target is None or (failed.address and failed.address != target.address.lower()):
            # The report names another address: find that recipient's copy.
            target = (
                EmailMessageRelation.objects.filter(address__iexact=failed.address)
                .exclude(relation_type=EmailMessageRelation.Type.FROM)
                .filter(**({"email_id": relation.email_id} if relation else {}))
                .order_by("-pk")
                .first()
            ) or (relation if not failed.address else None)
        if target is None:
            continue
        suppressed = bounce_record(
            relation=target,
            hard=failed.hard,
            status=failed.status,
            diagnostic=failed.diagnostic,
            when=now,
        )
        kind = "hard" if failed.hard else "soft"
        notes.append(f"{kind} bounce {target.address}{' (suppressed)' if suppressed else ''}")
    return "; ".join(notes)


def esp_event_process(*, event: Any, esp_name: str) -> InboundMessage | None:
    """An ESP's tracking webhook event (through django-anymail), matched by our token."""
    keys = _keys()
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
            if person is not None:
                privacy_update(
                    person=person, by=None, source=f"{esp_name} unsubscribe", email_opt_out=True
                )
            note = f"unsubscribed at {esp_name}"
            email_events_record(
                kind=EmailEvent.Kind.UNSUBSCRIBED, relation_ids=[relation.pk], when=now, detail=note
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
    if event.event_type == "clicked":
        link = TrackedLink.objects.filter(email_id=relation.email_id, url=event.click_url).first()
        if link is None:
            return ""
        token = make_token(
            relation.pk,
            link.pk,
            key=_keys()[0],
        )
    EventWriter(buffer.redis_client()).append(
        RawEvent(
            event_id=uuid.uuid4().hex,
            kind="click" if event.event_type == "clicked" else "open",
            token=token,
            received_at=(event.timestamp or timezone.now()).timestamp(),
            ip="",
            user_agent=str(event.user_agent or "")[:512],
            method="GET",
        )
    )
    return f"{event.event_type} (reported by the ESP)"
