"""reports' Celery task: pruning the email log past Setup's retention."""

from celery import shared_task

from reports.services import email_log_prune


@shared_task(acks_late=True)
def prune_email_log() -> int:
    return email_log_prune()
