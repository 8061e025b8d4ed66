"""The event buffer between the tracking endpoints and ingestion.

A Redis Stream read through a consumer group when REDIS_URL is set; the BufferedEvent table in
embedded mode, and whenever Redis cannot take an event (the endpoint never fails because of it).
Both are drained by ingestion; entries are removed only after the batch that stored them commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

STREAM = "openrate:events"
GROUP = "ingest"
# A consumer that has held entries this long without acknowledging them has died: take them over.
CLAIM_IDLE_MS = 60_000
# After Redis fails, go straight to the database for this long instead of waiting on Redis.
REDIS_COOL_OFF_SECONDS = 5.0

_FIELDS = ("event_id", "kind", "token", "received_at", "ip", "user_agent", "method")
_INSERT = (
    "INSERT INTO tracking_bufferedevent "
    "(event_id, kind, token, received_at, ip, user_agent, method) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class RawEvent:
    event_id: str
    kind: str  # "open" | "click"
    token: str
    received_at: float  # server time, seconds since the epoch
    ip: str
    user_agent: str
    method: str


def redis_client() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    # Short timeouts: the endpoint would rather write to the database than wait.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


class EventWriter:
    """Appends events for the fast path: Redis when configured and up, else the database."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    def append(self, event: RawEvent) -> None:
        if self.client is not None and time.monotonic() >= self._redis_down_until:
            try:
                self.client.xadd(STREAM, asdict(event))  # type: ignore[arg-type]
                return
            except redis.RedisError:
                logger.warning("Redis refused a tracking event; buffering it in the database")
                with self._lock:
                    self._redis_down_until = time.monotonic() + REDIS_COOL_OFF_SECONDS
        self._append_to_database(event)

    @staticmethod
    def _append_to_database(event: RawEvent) -> None:
        values = [getattr(event, name) for name in _FIELDS]
        try:
            with connection.cursor() as cursor:
                cursor.execute(_INSERT, values)
        except Exception:
            # A connection the server dropped: reconnect once, then give up loudly.
            connection.close()
            with connection.cursor() as cursor:
                cursor.execute(_INSERT, values)


def read_database(limit: int) -> tuple[list[RawEvent], list[int]]:
    """Oldest buffered rows; on PostgreSQL, rows another ingester holds are skipped.

    Call inside the ingestion transaction: the rows are deleted in that same transaction.
    """
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {', '.join(_FIELDS)} FROM tracking_bufferedevent "  # noqa: S608
            f"ORDER BY id LIMIT %s{lock}",
            [limit],
        )
        rows = cursor.fetchall()
    return [RawEvent(*row[1:]) for row in rows], [row[0] for row in rows]


def delete_database_rows(row_ids: Sequence[int]) -> None:
    if not row_ids:
        return
    with connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(row_ids))
        cursor.execute(
            f"DELETE FROM tracking_bufferedevent WHERE id IN ({placeholders})",  # noqa: S608
            list(row_ids),
        )


def read_stream(client: redis.Redis, consumer: str, limit: int) -> tuple[list[RawEvent], list[str]]:
    """Entries for this consumer: first those a dead consumer left unacknowledged, then new."""
    _ensure_group(client)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    claimed: Any = client.xautoclaim(STREAM, GROUP, consumer, CLAIM_IDLE_MS, "0-0", count=limit)
    entries.extend(entry for entry in claimed[1] if entry[1])
    if len(entries) < limit:
        response: Any = client.xreadgroup(
            GROUP, consumer, {STREAM: ">"}, count=limit - len(entries)
        )
        for _stream, stream_entries in response or []:
            entries.extend(stream_entries)
    events, ids = [], []
    for entry_id, fields in entries:
        ids.append(entry_id.decode())
        event = _event_from_fields(fields)
        if event is not None:
            events.append(event)
    return events, ids


def acknowledge_stream(client: redis.Redis, stream_ids: Sequence[str]) -> None:
    """After commit: the entries are done; delete them so the stream does not grow."""
    if stream_ids:
        pipe = client.pipeline()
        pipe.xack(STREAM, GROUP, *stream_ids)
        pipe.xdel(STREAM, *stream_ids)
        pipe.execute()


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _event_from_fields(fields: dict[bytes, bytes]) -> RawEvent | None:
    try:
        values = {name: fields[name.encode()].decode("utf-8", "replace") for name in _FIELDS}
        return RawEvent(**{**values, "received_at": float(values["received_at"])})  # type: ignore[arg-type]
    except (KeyError, ValueError):
        logger.error("Dropping a malformed stream entry: %r", fields)
        return None
