"""tracking's Celery tasks: draining the event buffer, and the recounts after a Setup change."""

import time

from celery import shared_task

from tracking import buffer
from tracking.ingestion import events_ingest
from tracking.recount import counters_recount_all, internal_recount_all

# One run drains batches for at most this long, so beat's next run finds the worker free.
DRAIN_SECONDS = 50.0
# A run that finds the Redis stream empty waits on it in slices this long (under the client's
# 0.5 s socket timeout), so an event arriving meanwhile is stored at once.
WAIT_SLICE_MS = 250


@shared_task(acks_late=True)
def ingest_events(wait_seconds: float = 0.0) -> int:
    """Drain the event buffer batch by batch; returns how many buffered events were read.

    With `wait_seconds` (beat passes its interval) the run goes on for that long even when the
    buffer is empty, blocked on the Redis stream until events arrive: the ingestion worker is
    then always reading, and an event waits about a batch's time to be stored instead of up to
    beat's interval. Without Redis (the database table buffers events) it does not wait.
    """
    total = 0
    started = time.monotonic()
    deadline = started + DRAIN_SECONDS
    wait_until = started + min(wait_seconds, DRAIN_SECONDS)
    if buffer.redis_client() is None:
        wait_until = started
    while time.monotonic() < deadline:
        waiting = time.monotonic() < wait_until
        read = events_ingest(block_ms=WAIT_SLICE_MS if waiting else 0).read
        total += read
        if read == 0 and not waiting:
            break
    return total


@shared_task(acks_late=True)
def recount_counters() -> int:
    """After Setup switches machine-open filtering: recount what was counted the other way."""
    return counters_recount_all()


@shared_task(acks_late=True)
def recount_internal() -> int:
    """After Setup changes its internal addresses or IP ranges: mark the events again, and
    recount the counters, links and rollups."""
    return internal_recount_all()
