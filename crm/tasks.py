"""crm's Celery tasks: delivery with its retries, activity metrics, follow-ups and alerts, and
the login log's retention."""

from axes.handlers.proxy import AxesProxyHandler
from celery import Task, shared_task
from django.conf import settings

from crm.activity import (
    activity_metrics_recompute,
    activity_refresh,
    engagement_alerts_create,
    follow_ups_create,
)
from crm.delivery import (
    DeliveryDeferred,
    copies_unconfirm,
    email_deliver,
    email_delivery_give_up,
)
from crm.partitions import partitions_ensure
from crm.scheduling import scheduled_emails_send_due

# Backoff between tries when the mail server is unreachable: 30 s doubling to 15 min, ~1 h in all.
MAX_DELIVERY_RETRIES = 7


# A run's pool process killed mid-send (the OOM killer, a kill -9): Celery sends the task
# again (`retry_on_worker_lost`, counted against max_retries, so a task that kills its worker
# cannot loop), after this many seconds.
WORKER_LOST_RETRY_DELAY = 60


@shared_task(  # type: ignore[call-overload]  # the stubs predate retry_on_worker_lost (5.7)
    bind=True,
    max_retries=MAX_DELIVERY_RETRIES,
    acks_late=True,
    retry_on_worker_lost=True,
    default_retry_delay=WORKER_LOST_RETRY_DELAY,
)
def deliver_email(self: Task, email_id: int) -> None:
    if self.request.retries or (self.request.delivery_info or {}).get("redelivered"):
        # A run before this one stopped: its pool process was killed (retried by Celery), its
        # node was lost (the broker gave the unacknowledged message back), or the mail server
        # deferred it (that run put its copies back to Pending first). Copies still Sending
        # were left by a run that died mid-send: they may or may not have gone out, and are
        # marked unconfirmed, never sent again; the email gets its status once the rest go.
        # (A live run racing this one, a list email's end delivering the same copy, writes
        # its outcome and its email's over the mark.)
        copies_unconfirm(email_ids=[email_id])
    try:
        email_deliver(email_id=email_id)
    except DeliveryDeferred as error:
        if self.request.retries >= MAX_DELIVERY_RETRIES:
            email_delivery_give_up(email_id=email_id, reason=str(error))
            return
        raise self.retry(exc=error, countdown=min(30 * 2**self.request.retries, 900)) from error


@shared_task(acks_late=True)
def recompute_activity_metrics(
    contact_ids: list[int] | None = None,
    lead_ids: list[int] | None = None,
    account_ids: list[int] | None = None,
    opportunity_ids: list[int] | None = None,
) -> None:
    """Every record's metrics when called with no ids (beat, the admin), else just those."""
    activity_metrics_recompute(
        contact_ids=contact_ids,
        lead_ids=lead_ids,
        account_ids=account_ids,
        opportunity_ids=opportunity_ids,
    )


@shared_task(acks_late=True)
def refresh_activity(relation_ids: list[int]) -> None:
    activity_refresh(relation_ids=relation_ids)


@shared_task(acks_late=True)
def create_follow_ups() -> int:
    return follow_ups_create()


@shared_task(acks_late=True)
def create_engagement_alerts() -> int:
    return engagement_alerts_create()


@shared_task(acks_late=True)
def send_scheduled_emails() -> int:
    """Beat: send the scheduled emails whose time has come (each once: crm.scheduling)."""
    return scheduled_emails_send_due()


@shared_task(acks_late=True)
def prune_login_log() -> int:
    """Delete login log entries (django-axes' access logs) older than the retention."""
    return AxesProxyHandler.reset_logs(age_days=settings.LOGIN_LOG_RETENTION_DAYS)


@shared_task(acks_late=True)
def ensure_partitions() -> list[str]:
    """Beat, daily: this month's and the next months' partitions of the email log and the
    tracking events (PostgreSQL; nothing on SQLite)."""
    return partitions_ensure()
