"""tracking's Celery tasks: draining the event buffer, and the recounts after a Setup change."""

import time

from celery import shared_task

from tracking.ingestion import events_ingest
from tracking.recount import counters_recount_all, internal_recount_all

# One run drains batches for at most this long, so beat's next run finds the worker free.
DRAIN_SECONDS = 50.0


@shared_task(acks_late=True)
def ingest_events() -> int:
    """Drain the event buffer batch by batch; returns how many buffered events were read."""
    total = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        read = events_ingest().read
        total += read
        if read == 0:
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
