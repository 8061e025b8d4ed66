"""The event buffer between the tracking endpoints and ingestion.

A Redis Stream read through a consumer group when REDIS_URL is set; the BufferedEvent table in
embedded mode, and whenever Redis cannot take an event (the endpoint never fails because of it).
Both are drained by ingestion; entries are removed only after the batch that stored them commits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

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
# Reading the stream, entries are counted as this many events each (see read_stream).
EVENTS_PER_ENTRY = 20

_FIELDS = ("event_id", "kind", "token", "received_at", "ip", "user_agent", "method")
# An event id already waiting is the same hit written twice (a request the balancer retried on
# another web node carries its stamp, fastpath.stamped): once is enough, and a duplicate must
# not fail the other events of its write.
_INSERT = (
    "INSERT INTO tracking_bufferedevent "
    "(event_id, kind, token, received_at, ip, user_agent, method) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)
_TABLE_FIELDS = len(_FIELDS)


class RawEvent(NamedTuple):
    """One hit on a tracking endpoint, as the fast path saw it (a tuple: cheap to make).

    The fast path verified the token before writing the event, and passes on the ids it
    read from it, so ingestion need not verify it again. An event without them (0: one
    written by an older version, or read back from the database table, which keeps only the
    token) is verified at ingestion.
    """

    event_id: str
    kind: str  # "open" | "click"
    token: str
    received_at: float  # server time, seconds since the epoch
    ip: str
    user_agent: str
    method: str
    relation_id: int = 0
    link_id: int = 0


def redis_client() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    # Short timeouts: the endpoint would rather write to the database than wait.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


class EventWriter:
    """Writes events to Redis when configured and up, else to the database table, at once."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    def append(self, event: RawEvent) -> None:
        self.write([event])

    def write(self, events: Sequence[RawEvent]) -> None:
        """One Redis Stream entry for the lot; the database table if Redis refuses."""
        if events and not self.write_now(events):
            self._write_to_database(events)

    def write_now(self, events: Sequence[RawEvent]) -> bool:
        """One Redis Stream entry for the lot; False (nothing written) when Redis is not
        configured, refused within the last REDIS_COOL_OFF_SECONDS, or refuses now.

        After a refusal one caller at a time tries Redis again (it moves the cool-off on before
        it tries), so a Redis that is down makes one request in a cool-off wait for its timeout,
        not every request that arrives while it does."""
        if self.client is None:
            return False
        if self._redis_down_until:
            with self._lock:
                now = time.monotonic()
                if now < self._redis_down_until:
                    return False
                self._redis_down_until = now + REDIS_COOL_OFF_SECONDS  # this caller tries
        try:
            self.client.xadd(STREAM, {"batch": json.dumps(events)})
        except redis.RedisError:
            logger.warning(
                "Redis refused %d tracking events; buffering them in the database", len(events)
            )
            with self._lock:
                self._redis_down_until = time.monotonic() + REDIS_COOL_OFF_SECONDS
            return False
        if self._redis_down_until:
            with self._lock:
                self._redis_down_until = 0.0  # back
        return True

    @staticmethod
    def _write_to_database(events: Sequence[RawEvent]) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.executemany(_INSERT, [event[:_TABLE_FIELDS] for event in events])
        except Exception:
            # A connection the server dropped: reconnect once, then give up loudly.
            connection.close()
            with connection.cursor() as cursor:
                cursor.executemany(_INSERT, [event[:_TABLE_FIELDS] for event in events])


class BatchingEventWriter:
    """The fast path's writer: a request only appends to an in-process queue; a thread sends
    what has queued as one write (one Redis round trip per batch instead of one per request,
    which capped the endpoint at about 4,000 requests/s on two cores).

    The thread sleeps on an Event with no timeout until an append finds it clear, then gives
    the batch FLUSH_SECONDS to gather and sends it: an idle worker's thread never wakes, and a
    busy one sends at most one batch every FLUSH_SECONDS or so.

    The trade-off, chosen knowingly: a worker killed without warning (SIGKILL, power loss) loses
    the events of its last few milliseconds. A normal stop flushes them (atexit), and Redis being
    down only sends them to the database table instead.
    """

    FLUSH_SECONDS = 0.002

    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer
        self._queue: deque[RawEvent] = deque()
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        atexit.register(self.flush)

    def append(self, event: RawEvent) -> None:
        self._queue.append(event)
        # Started lazily, in the process that serves: a server that forks workers after
        # loading the app would otherwise leave the thread behind in the parent.
        if self._pid != os.getpid():
            self._start()
        # After the append: the thread clears the flag before it drains the queue, so an event
        # is either drained by the batch under way or finds the flag clear and wakes the next.
        # While a batch gathers the flag is set and this costs one attribute read.
        if not self._pending.is_set():
            self._pending.set()

    def flush(self) -> None:
        events = []
        queue = self._queue
        while queue:
            events.append(queue.popleft())
        if events:
            self.writer.write(events)

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            # A fresh Event: one inherited through fork may hold the parent thread's lock.
            self._pending = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._pending,), name="event-flusher", daemon=True
            )
            self._thread.start()
            self._pid = os.getpid()

    def _run(self, pending: threading.Event) -> None:
        while True:
            pending.wait()
            time.sleep(self.FLUSH_SECONDS)  # let the batch gather
            pending.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("Could not write tracking events")


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


def read_stream(
    client: redis.Redis, consumer: str, limit: int, block_ms: int = 0
) -> tuple[list[RawEvent], list[str]]:
    """Entries for this consumer: first those a dead consumer left unacknowledged, then new
    ones, waiting up to `block_ms` for them when there are none (0: not at all)."""
    _ensure_group(client)
    # An entry holds what one worker queued in a few milliseconds: a few to a few dozen events.
    limit = max(1, limit // EVENTS_PER_ENTRY)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    claimed: Any = client.xautoclaim(STREAM, GROUP, consumer, CLAIM_IDLE_MS, "0-0", count=limit)
    entries.extend(entry for entry in claimed[1] if entry[1])
    if len(entries) < limit:
        response: Any = client.xreadgroup(
            GROUP,
            consumer,
            {STREAM: ">"},
            count=limit - len(entries),
            # redis-py: None does not block, 0 would block for ever.
            block=block_ms if block_ms > 0 and not entries else None,
        )
        for _stream, stream_entries in response or []:
            entries.extend(stream_entries)
    events: list[RawEvent] = []
    ids = []
    for entry_id, fields in entries:
        ids.append(entry_id.decode())
        events.extend(_events_from_fields(fields))
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


def _events_from_fields(fields: dict[bytes, bytes]) -> list[RawEvent]:
    try:
        return [RawEvent(*row) for row in json.loads(fields[b"batch"])]
    except (KeyError, ValueError, TypeError):
        logger.error("Dropping a malformed stream entry: %r", fields)
        return []
