"""Event ingestion: drain the buffer, label each event human or machine, store, count.

Each batch runs in one transaction. Its events are copied into a temporary table together
with what labelling looked up about each recipient (their email, its rollup keys, the day the
copy was sent), inserted into the events table with `ON CONFLICT (event_id) DO NOTHING`, and
those stored before are struck from the batch. Everything after reads only the batch: one
set-based UPDATE each adds it to the counters of its recipients, emails and links, and the
rollups and the campaign funnel move on from it. A batch delivered twice therefore inserts
nothing and adds nothing the second time. The buffer entries are removed only after the
commit, so a crash loses nothing and counts nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns.services import members_advance
from crm import rollups, sql
from crm.models import EmailEvent, EmailMessageRelation, OrgSettings, TrackedLink
from crm.services import (
    activity_refresh_enqueue,
    bounce_record,
    complaint_record,
    email_events_record,
    privacy_update,
    reply_record,
    unsubscribe_record,
)
from tracking import buffer
from tracking.buffer import EventWriter, RawEvent
from tracking.classify import EventFacts, Label, classify, describe_client, truncate_ip
from tracking.inbound import HARD_REASONS, classify_message, message_content, reason_from_text
from tracking.inbound import InboundMessage as ParsedMessage
from tracking.models import InboundMessage, TrackingEvent
from tracking.rollups import INGEST_LOCK, rollups_add_batch
from tracking.tokens import from_verp, make_token, parse_token, signing_keys

logger = logging.getLogger(__name__)

# recount() names at most this many ids per statement (SQLite allows 32,766 parameters).
CHUNK = 10_000

HUMAN = str(Label.HUMAN)
# What the fast path writes as an event id: 32 hex digits (a UUID).
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class IngestResult:
    read: int
    stored: int


def events_ingest(*, batch_size: int = 5000, consumer: str = "") -> IngestResult:
    """Ingest one batch from each buffer (the Redis stream and the database table)."""
    read = stored = 0
    client = buffer.redis_client()
    if client is not None:
        # One consumer name per process: each holds its own pending entries.
        events, stream_ids = buffer.read_stream(
            client, consumer or f"{socket.gethostname()}-{os.getpid()}", batch_size
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
    """Label, insert and count one batch; returns how many events were new."""
    org = OrgSettings.load()
    rows = _label(raw_events, org)
    if not rows:
        return 0
    stored = _insert(rows)
    if not stored:
        return 0
    _count(machine_open_filtering=org.machine_open_filtering)
    # Only the recipients of campaign emails have a member to move along the funnel.
    members_advance(relation_ids=_batch_relations("campaign_key <> 0"))
    rollups_add_batch(table=BATCH_TABLE)
    # Human opens and clicks are activity: refresh those people's metrics and alerts.
    activity_refresh_enqueue(relation_ids=_batch_relations(f"label = '{HUMAN}'"))
    return stored


@lru_cache(maxsize=131_072)
def _verify(token: str, keys: tuple[bytes, ...]) -> tuple[int, int] | None:
    """A token's (recipient id, link id or 0); cached, as one person's opens repeat it."""
    data = parse_token(token, keys=keys)
    return None if data is None else (data.recipient_id, data.link_id)


def _label(raw_events: Sequence[RawEvent], org: OrgSettings) -> list[tuple[Any, ...]]:
    """The batch's events as rows of BATCH_COLUMNS + FACT_COLUMNS, labelled, each event once."""
    keys = _keys()
    parsed: list[tuple[RawEvent, int, int]] = []
    seen: set[str] = set()
    for raw in raw_events:
        if raw.event_id in seen:
            continue  # a writer's retry: the same event twice in one batch
        seen.add(raw.event_id)
        if raw.relation_id:
            # The fast path verified the token before it wrote the event.
            parsed.append((raw, raw.relation_id, raw.link_id))
            continue
        ids = _verify(raw.token, keys)
        if ids is None:
            # Only possible if a signing key was removed between the request and now.
            logger.warning("Dropping event %s: its token no longer verifies", raw.event_id)
            continue
        parsed.append((raw, *ids))
    if not parsed:
        return []
    # Per recipient, in one query: the send time as seconds since the epoch (cheaper to read
    # than a datetime, and all that classifying needs), and what counting needs afterwards.
    sent_day, day_params = rollups.sent_day()
    recipients = {
        row[0]: row[1:]
        for row in _select_by_ids(
            f"SELECT r.id, {_EPOCH[connection.vendor]}, r.email_id, COALESCE(m.sender_id, 0), "
            f"COALESCE(m.campaign_id, 0), {sent_day} FROM crm_emailmessagerelation AS r "
            "JOIN crm_emailmessage AS m ON m.id = r.email_id WHERE ",
            {relation for _, relation, _ in parsed},
            column="r.id",
            params=day_params,
        )
    }
    honeypots = {
        row[0]
        for row in _select_by_ids(
            "SELECT id FROM crm_trackedlink WHERE is_honeypot AND ",
            {link for _, _, link in parsed if link},
        )
    }
    # Several links clicked by one recipient within one second: a scanner following every link.
    burst = Counter(
        (relation, int(raw.received_at))
        for raw, relation, link in {(r, rel, lk) for r, rel, lk in parsed if lk}
    )
    window = org.scanner_window_seconds
    vendor_time = _time_adapter()
    rows: list[tuple[Any, ...]] = []
    for raw, relation_id, link_id in parsed:
        recipient = recipients.get(relation_id)
        if recipient is None:
            continue  # the email was deleted after it was sent
        if _EVENT_ID.fullmatch(raw.event_id) is None:
            logger.warning("Dropping an event with a malformed id: %r", raw.event_id[:64])
            continue
        sent_at, email_id, sender_key, campaign_key, day = recipient
        verdict = classify(
            EventFacts(
                kind=raw.kind,
                user_agent=raw.user_agent,
                ip=raw.ip,
                method=raw.method,
                seconds_since_delivery=(
                    raw.received_at - float(sent_at) if sent_at is not None else None
                ),
                honeypot=link_id in honeypots,
                links_clicked_same_second=(
                    burst[(relation_id, int(raw.received_at))] if link_id else 1
                ),
            ),
            scanner_window_seconds=window,
        )
        client = describe_client(raw.user_agent)
        rows.append(
            (
                # 32 hex digits, as both databases' columns take a UUID.
                raw.event_id.lower(),
                raw.kind,
                relation_id,
                link_id or None,
                vendor_time(datetime.fromtimestamp(raw.received_at, tz=UTC)),
                verdict.label,
                verdict.reason[:200],
                (raw.ip if org.store_full_ip else truncate_ip(raw.ip)) or None,
                raw.user_agent[:512],
                raw.method[:8],
                client.device[:64],
                client.browser[:64],
                client.os[:64],
                email_id,
                sender_key,
                campaign_key,
                day,
                len(rows),
            )
        )
    return rows


_EPOCH = {
    "postgresql": "EXTRACT(EPOCH FROM r.sent_at)::float8",
    "sqlite": "(julianday(r.sent_at) - 2440587.5) * 86400.0",
}

# The batch, in a temporary table of the connection's own: the events are copied in, those
# stored before are struck out, and the counters and rollups are summed from it in SQL.
BATCH_TABLE = "ingest_batch"
BATCH_COLUMNS = (
    "event_id, kind, relation_id, link_id, occurred_at, label, reason, ip, user_agent, method, "
    "device, client, os"
)
# Also in the batch: what counting, the rollups (tracking.rollups.rollups_add_batch) and the
# funnel need of each event's recipient, looked up once while labelling; and the event's place
# in the batch (the buffer is first in, first out), which orders events of the same instant.
FACT_COLUMNS = "email_id, sender_key, campaign_key, sent_day, seq"
_CREATE_BATCH_TABLE = {
    vendor: f"""
    CREATE TEMP TABLE IF NOT EXISTS {BATCH_TABLE} (
        event_id {uuid}, kind varchar(5), relation_id bigint, link_id bigint,
        occurred_at {timestamp}, label varchar(12), reason varchar(200), ip {inet},
        user_agent varchar(512), method varchar(8), device varchar(64), client varchar(64),
        os varchar(64), email_id bigint, sender_key bigint, campaign_key bigint, sent_day date,
        seq integer
    ) {end}
    """
    for vendor, uuid, timestamp, inet, end in (
        ("postgresql", "uuid", "timestamptz", "inet", "ON COMMIT DELETE ROWS"),
        ("sqlite", "char(32)", "datetime", "char(39)", ""),
    )
}


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Store the batch's rows; leaves in the batch table only those not stored before, and
    returns how many they are."""
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_BATCH_TABLE[connection.vendor])
        cursor.execute(f"DELETE FROM {BATCH_TABLE}")
        if connection.vendor == "postgresql":
            # COPY formats the rows in C: far cheaper than binding thousands of parameters.
            copy_sql = f"COPY {BATCH_TABLE} ({BATCH_COLUMNS}, {FACT_COLUMNS}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            # The statement itself says which events are new: strike the others from the batch.
            cursor.execute(
                f"""
                WITH stored AS (
                    INSERT INTO tracking_trackingevent ({BATCH_COLUMNS})
                    SELECT {BATCH_COLUMNS} FROM {BATCH_TABLE}
                    ON CONFLICT (event_id) DO NOTHING
                    RETURNING event_id
                )
                DELETE FROM {BATCH_TABLE} AS b
                WHERE NOT EXISTS (SELECT FROM stored WHERE stored.event_id = b.event_id)
                """
            )
            return len(rows) - cursor.rowcount
        cursor.executemany(
            f"INSERT INTO {BATCH_TABLE} ({BATCH_COLUMNS}, {FACT_COLUMNS}) "
            f"VALUES ({', '.join(['%s'] * 18)})",
            rows,
        )
        # SQLite has one writer at a time, and this transaction is it from the DELETE on:
        # what is not stored yet cannot become stored before the INSERT.
        cursor.execute(
            f"DELETE FROM {BATCH_TABLE} WHERE event_id IN "
            "(SELECT event_id FROM tracking_trackingevent WHERE event_id IN "
            f"(SELECT event_id FROM {BATCH_TABLE}))"
        )
        cursor.execute(
            f"INSERT INTO tracking_trackingevent ({BATCH_COLUMNS}) "
            f"SELECT {BATCH_COLUMNS} FROM {BATCH_TABLE}"
        )
        return cursor.rowcount


def _count(*, machine_open_filtering: bool) -> None:
    """Add the batch's new events to their recipients, emails and links: one UPDATE each.

    An open or click "counts" (first / last opened, last clicked, the email's figures) when
    human, or always when machine-open filtering is off, as in plain Salesforce.
    """
    if connection.vendor == "postgresql":
        # Serialise the counting step of concurrent ingesters, so that rows are always locked
        # in one order (no deadlock).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")

    def human(alias: str = "b") -> str:
        return f"{alias}.label = '{HUMAN}'"

    def counts(alias: str = "b") -> str:
        return human(alias) if machine_open_filtering else "TRUE"

    def earliest(column: str) -> str:
        return f"{least}(COALESCE(t.{column}, d.{column}), COALESCE(d.{column}, t.{column}))"

    def latest(column: str) -> str:
        return f"{greatest}(COALESCE(t.{column}, d.{column}), COALESCE(d.{column}, t.{column}))"

    # A recipient's latest counted click and latest machine open in the batch, ranked by a
    # window function over the batch (one sort, not a subquery per recipient).
    counted_click = f"x.kind = 'click' AND {counts('x')}"
    machine_open = f"x.kind = 'open' AND NOT {human('x')}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE crm_emailmessagerelation AS t SET
                human_opens = t.human_opens + d.human_opens,
                machine_opens = t.machine_opens + d.machine_opens,
                human_clicks = t.human_clicks + d.human_clicks,
                machine_clicks = t.machine_clicks + d.machine_clicks,
                first_opened_at = {earliest("first_opened_at")},
                last_opened_at = {latest("last_opened_at")},
                last_clicked_link_id = CASE
                    WHEN COALESCE(d.last_clicked_at >= t.last_clicked_at,
                        d.last_clicked_at IS NOT NULL)
                    THEN d.last_clicked_link_id ELSE t.last_clicked_link_id END,
                last_clicked_at = {latest("last_clicked_at")},
                -- The buffer is first in, first out, so the batch's latest machine open is the
                -- person's latest.
                machine_open_label = COALESCE(d.machine_open_label, t.machine_open_label)
            FROM (
                SELECT b.relation_id,
                    COUNT(*) FILTER (WHERE b.kind = 'open' AND {human()}) AS human_opens,
                    COUNT(*) FILTER (WHERE b.kind = 'open' AND NOT {human()}) AS machine_opens,
                    COUNT(*) FILTER (WHERE b.kind = 'click' AND {human()}) AS human_clicks,
                    COUNT(*) FILTER (WHERE b.kind = 'click' AND NOT {human()}) AS machine_clicks,
                    MIN(b.occurred_at) FILTER (WHERE b.kind = 'open' AND {counts()})
                        AS first_opened_at,
                    MAX(b.occurred_at) FILTER (WHERE b.kind = 'open' AND {counts()})
                        AS last_opened_at,
                    MAX(b.occurred_at) FILTER (WHERE b.kind = 'click' AND {counts()})
                        AS last_clicked_at,
                    MAX(CASE WHEN b.is_click AND b.click_rank = 1 THEN b.link_id END)
                        AS last_clicked_link_id,
                    MAX(CASE WHEN b.is_machine_open AND b.open_rank = 1 THEN b.label END)
                        AS machine_open_label
                FROM (
                    SELECT x.relation_id, x.kind, x.label, x.link_id, x.occurred_at,
                        {counted_click} AS is_click, {machine_open} AS is_machine_open,
                        ROW_NUMBER() OVER (
                            PARTITION BY x.relation_id, {counted_click}
                            ORDER BY x.occurred_at DESC, x.seq DESC
                        ) AS click_rank,
                        ROW_NUMBER() OVER (
                            PARTITION BY x.relation_id, {machine_open}
                            ORDER BY x.occurred_at DESC, x.seq DESC
                        ) AS open_rank
                    FROM {BATCH_TABLE} AS x
                ) AS b
                GROUP BY b.relation_id
            ) AS d
            WHERE t.id = d.relation_id
            """
        )
        # An email's figures change only with the events that count.
        cursor.execute(
            f"""
            UPDATE crm_emailmessage AS t SET
                times_opened = t.times_opened + d.opens,
                times_clicked = t.times_clicked + d.clicks,
                is_opened = t.times_opened + d.opens > 0,
                first_opened_at = {earliest("first_opened_at")},
                last_opened_at = {latest("last_opened_at")}
            FROM (
                SELECT b.email_id,
                    COUNT(*) FILTER (WHERE b.kind = 'open') AS opens,
                    COUNT(*) FILTER (WHERE b.kind = 'click') AS clicks,
                    MIN(b.occurred_at) FILTER (WHERE b.kind = 'open') AS first_opened_at,
                    MAX(b.occurred_at) FILTER (WHERE b.kind = 'open') AS last_opened_at
                FROM {BATCH_TABLE} AS b
                WHERE {counts()}
                GROUP BY b.email_id
            ) AS d
            WHERE t.id = d.email_id
            """
        )
        cursor.execute(
            f"""
            UPDATE crm_trackedlink AS t SET
                human_clicks = t.human_clicks + d.human,
                machine_clicks = t.machine_clicks + d.machine
            FROM (
                SELECT b.link_id,
                    COUNT(*) FILTER (WHERE {human()}) AS human,
                    COUNT(*) FILTER (WHERE NOT {human()}) AS machine
                FROM {BATCH_TABLE} AS b
                WHERE b.link_id IS NOT NULL
                GROUP BY b.link_id
            ) AS d
            WHERE t.id = d.link_id
            """
        )


def _batch_relations(condition: str) -> list[int]:
    """The recipients of the batch's new events that match `condition` (SQL on the batch)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT relation_id FROM {BATCH_TABLE} WHERE {condition}")
        return [row[0] for row in cursor.fetchall()]


def recount(*, relation_ids: set[int], link_ids: set[int], machine_open_filtering: bool) -> None:
    """Recount recipients, their emails and links from all their stored events (set-based).

    Ingestion adds to the counters instead; this is for events written some other way (the
    demo data) and for repairs.
    """
    if connection.vendor == "postgresql":
        # Serialise recounts so each one sees the events every earlier one committed.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])
    counted = "" if machine_open_filtering else "OR TRUE"
    human = f"label = '{Label.HUMAN}'"
    for ids in sql.chunks(relation_ids, CHUNK):
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
                WHERE relation_id IN ({sql.placeholders(ids)})
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
    for ids in sql.chunks(email_ids, CHUNK):
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
                WHERE r.email_id IN ({sql.placeholders(ids)})
                GROUP BY r.email_id
            ) AS a
            WHERE crm_emailmessage.id = a.email_id
            """,
            ids,
        )
    for ids in sql.chunks(link_ids, CHUNK):
        _execute(
            f"""
            UPDATE crm_trackedlink SET human_clicks = a.human, machine_clicks = a.machine
            FROM (
                SELECT link_id,
                    COUNT(*) FILTER (WHERE {human}) AS human,
                    COUNT(*) FILTER (WHERE NOT {human}) AS machine
                FROM tracking_trackingevent
                WHERE link_id IN ({sql.placeholders(ids)})
                GROUP BY link_id
            ) AS a
            WHERE crm_trackedlink.id = a.link_id
            """,
            ids,
        )


def counters_recount_all() -> int:
    """Recount every recipient with events, and their emails, from the stored events, a chunk
    of recipients per transaction: machine-open filtering decides which opens count, so
    switching it must recount what was counted the other way. Returns how many recipients."""
    machine_open_filtering = OrgSettings.load().machine_open_filtering
    last = total = 0
    while True:
        ids = list(
            TrackingEvent.objects.filter(relation_id__gt=last)
            .order_by("relation_id")
            .values_list("relation_id", flat=True)
            .distinct()[:CHUNK]
        )
        if not ids:
            return total
        with transaction.atomic():
            # Links count human and machine clicks apart, whatever the setting.
            recount(
                relation_ids=set(ids), link_ids=set(), machine_open_filtering=machine_open_filtering
            )
        last, total = ids[-1], total + len(ids)


def _execute(query: str, params: Sequence[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(query, list(params))


def _select_by_ids(
    query: str, ids: set[int], *, column: str = "id", params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run `query` followed by "`column` is one of `ids`": one parameter however many ids
    (thousands of placeholders cost more to send than the query)."""
    if not ids:
        return []
    condition, ids_params = sql.ids_in(column, "ids", ids)
    with connection.cursor() as cursor:
        cursor.execute(query + condition, {**(params or {}), **ids_params})
        return [tuple(row) for row in cursor.fetchall()]


def _time_adapter() -> Callable[[datetime], Any]:
    if connection.vendor == "postgresql":
        return lambda value: value
    return connection.ops.adapt_datetimefield_value


def _keys() -> tuple[bytes, ...]:
    """The tracking signing keys, newest first (what the endpoints verify with)."""
    return signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)


# Inbound mail: bounces, complaints, auto-replies and replies.

MAX_RAW = 2 * 1024 * 1024
_VERP = re.compile(r"^bounces\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
# A list email's mailto unsubscribe (crm.services.list_unsubscribe_headers): to
# unsubscribe+<token>@<VERP domain>, or to the sender with "unsubscribe <token>" as subject.
_UNSUBSCRIBE_ADDRESS = re.compile(r"^unsubscribe\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_-]+)\s*$", re.IGNORECASE)


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
        unsubscribing = (
            _unsubscribe_request(parsed) if parsed.kind not in ("bounce", "complaint") else None
        )
        if unsubscribing is not None:
            relation = unsubscribing
            unsubscribe_record(relation=relation)
            note = f"unsubscribe request from {parsed.from_address}"
        elif parsed.kind == "bounce":
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
            members_advance(relation_ids=[relation.pk])
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


def _unsubscribe_request(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The recipient copy a mailto unsubscribe names by its signed token, if it is one."""
    tokens = [
        from_verp(m.group(1)) for a in parsed.to_addresses if (m := _UNSUBSCRIBE_ADDRESS.match(a))
    ]
    if subject := _UNSUBSCRIBE_SUBJECT.match(parsed.subject):
        tokens.append(subject.group(1))
    keys = _keys()
    for token in tokens:
        data = parse_token(token, keys=keys)
        if data is not None:
            relation = (
                EmailMessageRelation.objects.select_related("contact", "lead")
                .filter(pk=data.recipient_id)
                .first()
            )
            if relation is not None:
                return relation
    return None


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
        token = make_token(relation.pk, link_id, key=_keys()[0])
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
