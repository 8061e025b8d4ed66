"""capture's Celery tasks: beat's fan-out, one mailbox's sync, and the activity refresh."""

from celery import shared_task

from capture.models import Mailbox
from capture.sync import SYNC_MAILBOX, mailbox_sync
from crm import jobs
from crm.activity import activity_metrics_recompute, follow_ups_close


@shared_task(acks_late=True)
def sync_mailboxes() -> int:
    """One sync job per connected mailbox that is not paused (each takes its own lock)."""
    ids = list(Mailbox.objects.filter(paused_at__isnull=True).values_list("pk", flat=True))
    for mailbox_id in ids:
        jobs.send_now(SYNC_MAILBOX, (mailbox_id,))
    return len(ids)


@shared_task(acks_late=True)
def sync_mailbox(mailbox_id: int) -> int:
    return mailbox_sync(mailbox_id=mailbox_id).captured


@shared_task(acks_late=True)
def refresh_activity(contact_ids: list[int], lead_ids: list[int]) -> int:
    """After a capture: these people's metrics, then their follow-ups that are no longer due."""
    activity_metrics_recompute(contact_ids=contact_ids, lead_ids=lead_ids)
    return follow_ups_close(contact_ids=contact_ids, lead_ids=lead_ids)
