import time

from celery import shared_task
from django.conf import settings

from tracking.imap import poll_mailbox
from tracking.models import InboundMessage
from tracking.services import counters_recount_all, events_ingest, inbound_mail_process

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
def poll_inbound_mailbox() -> int:
    """Read new mail from INBOUND_IMAP_URL; a message is marked read only once processed."""
    if not settings.INBOUND_IMAP_URL:
        return 0

    def handle(raw: bytes) -> bool:
        inbound_mail_process(raw=raw, source=InboundMessage.Source.IMAP)
        return True  # stored (matched or kept as unmatched) and committed

    result = poll_mailbox(
        settings.INBOUND_IMAP_URL, handle, failed_folder=settings.INBOUND_IMAP_FAILED_FOLDER
    )
    return result.processed


@shared_task(acks_late=True)
def recount_counters() -> int:
    """After Setup switches machine-open filtering: recount what was counted the other way."""
    return counters_recount_all()
