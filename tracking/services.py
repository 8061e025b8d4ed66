"""Event ingestion: drain the buffer, label each event human or machine, store, recount.

Each batch runs in one transaction: the events are inserted (idempotent on event_id), then the
counters of every recipient, email and link the batch touched are recounted from the stored
events with one set-based UPDATE each. Recounting rather than incrementing makes a re-delivered
batch harmless; the buffer entries are removed only after the commit, so a crash loses nothing.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction

from crm.models import EmailMessageRelation, OrgSettings, TrackedLink
from tracking import buffer
from tracking.buffer import RawEvent
from tracking.classify import EventFacts, Label, classify, describe_client, truncate_ip
from tracking.models import TrackingEvent
from tracking.tokens import parse_token, signing_keys

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
            read += len(stream_ids)
    with transaction.atomic():
        events, row_ids = buffer.read_database(batch_size)
        if row_ids:
            stored += _store(events)
            buffer.delete_database_rows(row_ids)
            read += len(row_ids)
    return IngestResult(read=read, stored=stored)


def _store(raw_events: Sequence[RawEvent]) -> int:
    org = OrgSettings.load()
    keys = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)
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
        rows.append(
            TrackingEvent(
                event_id=raw.event_id,
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
    TrackingEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    recount(
        relation_ids={row.relation_id for row in rows},
        link_ids={row.link_id for row in rows if row.link_id},
        machine_open_filtering=org.machine_open_filtering,
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


def _chunks(ids: set[int] | list[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def _placeholders(ids: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _execute(sql: str, params: Sequence[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
