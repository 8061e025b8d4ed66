import time

from celery import shared_task

from tracking.services import events_ingest

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
