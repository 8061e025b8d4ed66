"""Event ingestion: drain the buffer, label each event human or machine, store, count.

Each batch runs in one transaction. Its events are copied into a temporary table together
with what labelling looked up about each recipient (their email, its rollup keys, the day the
copy was sent), inserted into the events table with `ON CONFLICT (event_id, occurred_at) DO
NOTHING` (an event's id and its time travel together, so a second copy meets the first), and
those stored before are struck from the batch. Everything after reads only the batch: one
set-based UPDATE each adds it to the counters of its recipients, emails and links, and the
rollups and the campaign funnel move on from it. A batch delivered twice therefore inserts
nothing and adds nothing the second time (but for events counted anonymously, which are never
stored: a second copy in a later batch finds nothing to meet, see the Don't Track note below).
The buffer entries are removed only after the commit, so a crash loses nothing and counts
nothing twice.

Events from Setup's internal addresses and IP ranges (crm.internal) are stored, marked
internal, and struck from the batch before counting: they count nowhere.

The person's Individual flags bind here when Setup enforces them (crm.privacy_flags), read in
the one query that looks the batch's recipients up. Block Geolocation: the event is stored with
no IP at all; the internal range check runs first, on the IP in memory, which is then dropped
before the row is written anywhere. Don't Track turned on after the send: with Setup's "Not
stored" the event is dropped (the buffer entry is still acknowledged); with "Counted
anonymously" it is added to the org's daily rollups (opens and clicks, link clicks) and struck
from the batch before anything names the person: no stored event, no recipient, email or link
counter, funnel, metrics or alert. Nothing remembers such an event's id, so a second copy of it
in a later batch (the balancer's retry recorded by two web hosts) is counted again: the one
double ingestion does not prevent, in the org's totals only.

A forgotten person (dataprotection.forget) still has our emails in their mailbox: their opens
and clicks after the forget are treated as Don't Track's above, whether or not Setup enforces
the flags (an erasure is not a setting), so nothing that names them is stored again.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction

from crm import hooks, rollups, sql
from crm.activity import activity_refresh_enqueue
from crm.internal import InternalRules
from crm.models import OrgSettings
from crm.privacy_flags import (
    BLOCK_GEOLOCATION,
    DONT_TRACK,
    flags_bind,
    relation_flag_sql,
    relation_forgotten_sql,
    relation_individual_joins,
)
from mailkit.tokens import configured_keys, parse_token
from tracking import buffer
from tracking.buffer import RawEvent
from tracking.classify import Label, classify_event, truncate_ip
from tracking.rollups import INGEST_LOCK, rollups_add_batch, rollups_add_totals
from tracking.user_agents import describe_client

logger = logging.getLogger(__name__)

HUMAN = str(Label.HUMAN)
# What the fast path writes as an event id: 32 hex digits (a UUID).
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")


# A batch's steps, in order, as IngestResult.seconds names them. "read" includes waiting for
# events on an empty stream (block_ms); "lock" is waiting for the other consumers' counting
# (_serialise); "commit" includes what runs at commit (the copies' deferred key checks, the
# activity task's publish) and acknowledging the stream (or deleting the database buffer's
# rows).
PHASES = ("read", "label", "store", "lock", "count", "funnel", "rollups", "activity", "commit")


@dataclass(frozen=True)
class IngestResult:
    read: int
    stored: int
    # Wall-clock seconds in each of PHASES: where a batch's time goes (the log, bench/ingest.py).
    seconds: Mapping[str, float] = field(default_factory=dict)


class _Clock:
    """Adds the time since the last mark to a phase: a few clock reads a batch."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now


def events_ingest(*, batch_size: int = 5000, consumer: str = "", block_ms: int = 0) -> IngestResult:
    """Ingest one batch from each buffer (the Redis stream and the database table); with
    `block_ms`, an empty stream is waited on for up to that long."""
    with _collector_paused():
        result = _ingest(batch_size=batch_size, consumer=consumer, block_ms=block_ms)
    if result.read and logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "Ingested %d events (%d new) in %.0f ms: %s",
            result.read,
            result.stored,
            sum(result.seconds.values()) * 1000,
            ", ".join(f"{phase} {result.seconds[phase] * 1000:.0f}" for phase in PHASES),
        )
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a batch: its thousands of event tuples and rows
    made it run about 35 times a batch (a full collection walks the worker's whole heap, the
    classification caches included), a quarter of ingestion's Python time. They are freed by
    reference counting; cycles a batch leaves wait for the collector's next run after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _ingest(*, batch_size: int, consumer: str, block_ms: int) -> IngestResult:
    read = stored = 0
    clock = _Clock()
    client = buffer.redis_client()
    if client is not None:
        # One consumer name per process: each holds its own pending entries.
        events, stream_ids = buffer.read_stream(
            client, consumer or f"{socket.gethostname()}-{os.getpid()}", batch_size, block_ms
        )
        clock.mark("read")
        if stream_ids:
            with transaction.atomic():
                stored += _store(events, clock)
            buffer.acknowledge_stream(client, stream_ids)
            clock.mark("commit")
            read += len(events)
    with transaction.atomic():
        events, row_ids = buffer.read_database(batch_size)
        clock.mark("read")
        if row_ids:
            stored += _store(events, clock)
            buffer.delete_database_rows(row_ids)
            read += len(row_ids)
    clock.mark("commit")
    return IngestResult(read=read, stored=stored, seconds=clock.seconds)


def _store(raw_events: Sequence[RawEvent], clock: _Clock) -> int:
    """Label, insert and count one batch; returns how many events were new."""
    org = OrgSettings.load()
    rows = _label(raw_events, org)
    clock.mark("label")
    if not rows:
        return 0
    left = stored = _insert(rows)
    clock.mark("store")
    if not left:
        return 0
    if any(row[_ANONYMOUS] for row in rows):
        # Don't Track, counted anonymously: in the org's totals only, then out of the batch
        # (striking them is timed with the rollups).
        _serialise()
        clock.mark("lock")
        rollups_add_totals(table=BATCH_TABLE, where="anonymous")
        anonymous, left = _strike("anonymous")
        stored -= anonymous
        clock.mark("rollups")
    if any(row[_INTERNAL] for row in rows):
        _, left = _strike("internal")
        clock.mark("store")
    if not left:
        return stored  # all internal or anonymous: counted nowhere else
    _serialise()  # held until commit; at once if the anonymous events took it
    clock.mark("lock")
    _count(machine_open_filtering=org.machine_open_filtering)
    clock.mark("count")
    # Only the recipients of campaign emails have a member to move along the funnel (campaigns
    # registers this hook; see crm.hooks).
    hooks.engagement_counted(relation_ids=_batch_relations("campaign_key <> 0"))
    clock.mark("funnel")
    rollups_add_batch(table=BATCH_TABLE)
    clock.mark("rollups")
    # Human opens and clicks are activity: refresh those people's metrics and alerts.
    activity_refresh_enqueue(relation_ids=_batch_relations(f"label = '{HUMAN}'"))
    clock.mark("activity")
    return stored


@lru_cache(maxsize=131_072)
def _verify(token: str, keys: tuple[bytes, ...]) -> tuple[int, int] | None:
    """A token's (recipient id, link id or 0); cached, as one person's opens repeat it."""
    data = parse_token(token, keys=keys)
    return None if data is None else (data.recipient_id, data.link_id)


def _label(raw_events: Sequence[RawEvent], org: OrgSettings) -> list[tuple[Any, ...]]:
    """The batch's events as rows of BATCH_COLUMNS + FACT_COLUMNS, labelled, each event once."""
    keys = configured_keys()
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
    # The person's flags, when Setup enforces them: one join more in this query, per batch.
    sent_day, day_params = rollups.sent_day()
    flags = flags_bind(org)
    recipients = {
        row[0]: row[1:]
        for row in _select_by_ids(
            f"SELECT r.id, {_EPOCH[connection.vendor]}, r.email_id, COALESCE(m.sender_id, 0), "
            f"COALESCE(m.campaign_id, 0), {sent_day}, r.address, "
            f"{relation_flag_sql(BLOCK_GEOLOCATION, org)}, "
            f"({relation_flag_sql(DONT_TRACK, org)} OR {relation_forgotten_sql('r')}) "
            "FROM crm_emailmessagerelation AS r "
            "JOIN crm_emailmessage AS m ON m.id = r.email_id "
            f"{relation_individual_joins('r') if flags else ''} WHERE ",
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
    rules = InternalRules.from_setup(
        org.internal_addresses, org.internal_ip_ranges, full_ip=org.store_full_ip
    )
    internal_ips: dict[str, bool] = {}
    anonymous_after_dont_track = org.events_after_dont_track == OrgSettings.AfterDontTrack.ANONYMOUS
    rows: list[tuple[Any, ...]] = []
    for raw, relation_id, link_id in parsed:
        recipient = recipients.get(relation_id)
        if recipient is None:
            continue  # the email was deleted after it was sent
        if _EVENT_ID.fullmatch(raw.event_id) is None:
            logger.warning("Dropping an event with a malformed id: %r", raw.event_id[:64])
            continue
        sent_at, email_id, sender_key, campaign_key, day, address, no_ip, dont_track = recipient
        if dont_track and not anonymous_after_dont_track:
            continue  # Don't Track since the send, "Not stored": nothing of it is kept
        verdict = classify_event(
            raw.kind,
            raw.user_agent,
            raw.ip,
            raw.method,
            raw.received_at - float(sent_at) if sent_at is not None else None,
            link_id in honeypots,
            burst[(relation_id, int(raw.received_at))] if link_id else 1,
            window,
        )
        client = describe_client(raw.user_agent)
        ip = raw.ip if org.store_full_ip else truncate_ip(raw.ip)
        internal = False
        if rules:
            if ip not in internal_ips:
                internal_ips[ip] = rules.ip_is_internal(ip)
            internal = internal_ips[ip] or rules.address_is_internal(address)
        if internal and dont_track:
            continue  # neither stored (Don't Track) nor counted (internal)
        if no_ip:
            ip = ""  # Block Geolocation: matched against the internal ranges above, never stored
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
                ip or None,
                raw.user_agent[:512],
                raw.method[:8],
                client.device[:64],
                client.browser[:64],
                client.os[:64],
                internal,
                email_id,
                sender_key,
                campaign_key,
                day,
                len(rows),
                bool(dont_track),
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
    "device, client, os, internal"
)
# Also in the batch: what counting, the rollups (tracking.rollups.rollups_add_batch) and the
# funnel need of each event's recipient, looked up once while labelling; and the event's place
# in the batch (the buffer is first in, first out), which orders events of the same instant.
# `anonymous`: Don't Track since the send, counted anonymously (in the rollups' totals only,
# never stored).
FACT_COLUMNS = "email_id, sender_key, campaign_key, sent_day, seq, anonymous"
_ROW_COLUMNS = [*BATCH_COLUMNS.split(", "), *FACT_COLUMNS.split(", ")]
# Their places in a row.
_INTERNAL = _ROW_COLUMNS.index("internal")
_ANONYMOUS = _ROW_COLUMNS.index("anonymous")
_CREATE_BATCH_TABLE = {
    vendor: f"""
    CREATE TEMP TABLE IF NOT EXISTS {BATCH_TABLE} (
        event_id {uuid}, kind varchar(5), relation_id bigint, link_id bigint,
        occurred_at {timestamp}, label varchar(12), reason varchar(200), ip {inet},
        user_agent varchar(512), method varchar(8), device varchar(64), client varchar(64),
        os varchar(64), internal boolean, email_id bigint, sender_key bigint,
        campaign_key bigint, sent_day date, seq integer, anonymous boolean
    ) {end}
    """
    for vendor, uuid, timestamp, inet, end in (
        ("postgresql", "uuid", "timestamptz", "inet", "ON COMMIT DELETE ROWS"),
        ("sqlite", "char(32)", "datetime", "char(39)", ""),
    )
}


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Store the batch's rows but the anonymous ones; leaves in the batch table only those not
    stored before (an anonymous one: whose id no stored event has), and returns how many they
    are."""
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_BATCH_TABLE[connection.vendor])
        cursor.execute(f"DELETE FROM {BATCH_TABLE}")
        if connection.vendor == "postgresql":
            # COPY formats the rows in C: far cheaper than binding thousands of parameters.
            copy_sql = f"COPY {BATCH_TABLE} ({_COPY_COLUMNS}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                copy.write(_copy_text(rows))
            # The statement itself says which events are new: strike the others from the batch.
            cursor.execute(
                f"""
                WITH stored AS (
                    INSERT INTO tracking_trackingevent ({BATCH_COLUMNS})
                    SELECT {BATCH_COLUMNS} FROM {BATCH_TABLE} WHERE NOT anonymous
                    ORDER BY event_id  -- two consumers' duplicates: waited on in one order
                    ON CONFLICT (event_id, occurred_at) DO NOTHING
                    RETURNING event_id
                )
                DELETE FROM {BATCH_TABLE} AS b
                WHERE CASE WHEN b.anonymous
                    THEN EXISTS (
                        SELECT FROM tracking_trackingevent AS e
                        WHERE e.event_id = b.event_id AND e.occurred_at = b.occurred_at
                    )
                    ELSE NOT EXISTS (SELECT FROM stored WHERE stored.event_id = b.event_id)
                END
                """
            )
            return len(rows) - cursor.rowcount
        cursor.executemany(
            f"INSERT INTO {BATCH_TABLE} ({BATCH_COLUMNS}, {FACT_COLUMNS}) "
            f"VALUES ({', '.join(['%s'] * len(_ROW_COLUMNS))})",
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
            f"SELECT {BATCH_COLUMNS} FROM {BATCH_TABLE} WHERE NOT anonymous"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {BATCH_TABLE}")
        return int(cursor.fetchone()[0])


# COPY's text format: a tab between columns, \N for NULL, and in a value a backslash, tab,
# line end or carriage return escaped. A NUL, which no text column can hold, is dropped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": ""})
_COPY_UNSAFE = re.compile(r"[\\\t\n\r\0]")
_NULL = "\\N"
# The batch's columns in the order COPY receives them: the free text (from the request: the
# user agent and what was read from it, the address, the method; the reason may quote them)
# last, so that a row's text is escaped in one piece.
_COPY_COLUMNS = (
    "event_id, kind, relation_id, link_id, occurred_at, label, internal, email_id, sender_key, "
    "campaign_key, sent_day, seq, anonymous, ip, reason, user_agent, method, device, client, os"
)


def _copy_text(rows: list[tuple[Any, ...]]) -> str:
    """The batch's rows (_ROW_COLUMNS) as COPY's text format in _COPY_COLUMNS's order, instead
    of handing psycopg a row at a time: it adapts each of the twenty values by its type, which
    was 1.8 s of a 26.9 s drain of 200,000 events by one consumer (bench/ingest.py)."""
    lines = []
    for (
        event_id,
        kind,
        relation_id,
        link_id,
        occurred_at,
        label,
        reason,
        ip,
        user_agent,
        method,
        device,
        client,
        system,
        internal,
        email_id,
        sender_key,
        campaign_key,
        sent_day,
        seq,
        anonymous,
    ) in rows:
        address = "" if ip is None else ip
        free = (reason, user_agent, method, device, client, system)
        if _COPY_UNSAFE.search(address + "".join(free)):  # rare: one scan for the whole row
            address = address.translate(_COPY_ESCAPES)
            free = tuple(value.translate(_COPY_ESCAPES) for value in free)
        lines.append(
            f"{event_id}\t{kind}\t{relation_id}\t{_NULL if link_id is None else link_id}\t"
            f"{occurred_at}\t{label}\t{'t' if internal else 'f'}\t{email_id}\t{sender_key}\t"
            f"{campaign_key}\t{_NULL if sent_day is None else sent_day}\t{seq}\t"
            f"{'t' if anonymous else 'f'}\t{_NULL if ip is None else address}\t" + "\t".join(free)
        )
    lines.append("")
    return "\n".join(lines)


def _strike(column: str) -> tuple[int, int]:
    """Strike the batch's events with this flag (internal: stored, counted nowhere; anonymous:
    counted in the totals already); returns how many were struck and how many remain."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {BATCH_TABLE} WHERE {column}")
        struck = cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {BATCH_TABLE}")
        return struck, int(cursor.fetchone()[0])


def _serialise() -> None:
    """On PostgreSQL, take the lock that serialises the counting step of concurrent ingesters,
    so that rows (counters, rollups) are always locked in one order (no deadlock)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])


def _count(*, machine_open_filtering: bool) -> None:
    """Add the batch's new events to their recipients, emails and links: one UPDATE each.

    An open or click "counts" (the email's figures, last clicked) when human, or always when
    machine-open filtering is off, as in plain Salesforce. A copy is opened (first / last
    opened) by a counted open, or by a human click: a person who clicked read the email even
    if their mail program blocked the pixel ("opened, shown by a click"). Call it with the
    counting lock held (_serialise).
    """
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")

    def human(alias: str = "b") -> str:
        return f"{alias}.label = '{HUMAN}'"

    def counts(alias: str = "b") -> str:
        return human(alias) if machine_open_filtering else "TRUE"

    def opened(alias: str = "b") -> str:
        counted_open = f"{alias}.kind = 'open' AND {counts(alias)}"
        return f"(({counted_open}) OR ({alias}.kind = 'click' AND {human(alias)}))"

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
                    MIN(b.occurred_at) FILTER (WHERE {opened()}) AS first_opened_at,
                    MAX(b.occurred_at) FILTER (WHERE {opened()}) AS last_opened_at,
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
        # An email's figures change only with the events that count (a human click counts
        # whatever the setting, so every event that opens a copy is among them).
        cursor.execute(
            f"""
            UPDATE crm_emailmessage AS t SET
                times_opened = t.times_opened + d.opens,
                times_clicked = t.times_clicked + d.clicks,
                is_opened = t.is_opened OR d.first_opened_at IS NOT NULL,
                first_opened_at = {earliest("first_opened_at")},
                last_opened_at = {latest("last_opened_at")}
            FROM (
                SELECT b.email_id,
                    COUNT(*) FILTER (WHERE b.kind = 'open') AS opens,
                    COUNT(*) FILTER (WHERE b.kind = 'click') AS clicks,
                    MIN(b.occurred_at) FILTER (WHERE {opened()}) AS first_opened_at,
                    MAX(b.occurred_at) FILTER (WHERE {opened()}) AS last_opened_at
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
