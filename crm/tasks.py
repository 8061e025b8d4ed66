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


@shared_task(bind=True, max_retries=MAX_DELIVERY_RETRIES, acks_late=True)
def deliver_email(self: Task, email_id: int) -> None:
    if (self.request.delivery_info or {}).get("redelivered"):
        # The broker gave this message back because the run it went to never acknowledged it
        # (acks_late: its worker was killed, or lost, mid-send): that run's copies still
        # Sending may or may not have gone out. They are marked unconfirmed and never sent
        # again; the email gets its status once the rest are delivered.
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
