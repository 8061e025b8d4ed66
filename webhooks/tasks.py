"""webhooks's Celery tasks: collecting new events into deliveries, and sending those due.

Retries are not Celery's: each delivery's next attempt is a column the dispatcher reads, so a
retry survives a restart and the delivery log shows it."""

import time

from celery import shared_task

from webhooks.dispatch import deliveries_dispatch
from webhooks.events import events_collect

# One dispatch run sends batches for at most this long, so beat's next run finds the worker free.
DRAIN_SECONDS = 50.0


@shared_task(acks_late=True)
def collect_events() -> int:
    """New email log, open / click and record events into deliveries; returns how many."""
    return events_collect()


@shared_task(acks_late=True)
def dispatch_deliveries() -> int:
    """Send due deliveries batch by batch; returns how many attempts were made."""
    total = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        sent = deliveries_dispatch()
        total += sent
        if sent == 0:
            break
    return total
