"""inbound's Celery task: polling the IMAP mailbox that bounces and replies arrive in."""

from celery import shared_task
from django.conf import settings

from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from inbound.sources.imap import poll_mailbox


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
