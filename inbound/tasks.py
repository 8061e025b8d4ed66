"""inbound's Celery task: polling the IMAP mailbox that bounces and replies arrive in."""

from celery import shared_task
from django.conf import settings

from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process, kept_nothing
from inbound.sources.imap import Handled, poll_mailbox


@shared_task(acks_late=True)
def poll_inbound_mailbox() -> int:
    """Read new mail from INBOUND_IMAP_URL; a message is marked read only once processed."""
    if not settings.INBOUND_IMAP_URL:
        return 0
    result = poll_mailbox(
        settings.INBOUND_IMAP_URL, handle_fetched, failed_folder=settings.INBOUND_IMAP_FAILED_FOLDER
    )
    return result.processed + result.erased


def handle_fetched(raw: bytes) -> Handled:
    """A message fetched from the mailbox, once stored (Processed or Unmatched): kept in the
    mailbox, or erased from it when it is about a forgotten person (nothing of it is kept)."""
    message = inbound_mail_process(raw=raw, source=InboundMessage.Source.IMAP)
    return Handled.ERASED if kept_nothing(message) else Handled.KEPT
