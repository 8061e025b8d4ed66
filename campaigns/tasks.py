"""campaigns' Celery tasks: list email batches and their resumption, influence recomputes."""

from celery import shared_task

from campaigns.influence import influence_recompute
from campaigns.list_email import list_email_batch_send, list_emails_due


@shared_task(acks_late=True)
def send_list_email_batch(list_email_id: int) -> None:
    """One batch; the next is queued when due now or within the rate (beat resumes the rest)."""
    due = list_email_batch_send(list_email_id=list_email_id)
    if due is not None:
        send_list_email_batch.apply_async((list_email_id,), eta=due)


@shared_task(acks_late=True)
def resume_list_emails() -> None:
    """Beat: list emails whose next batch is due (after the daily limit reset, or a lost task)."""
    for list_email_id in list_emails_due():
        send_list_email_batch.delay(list_email_id)


@shared_task(acks_late=True)
def recompute_influence(opportunity_ids: list[int] | None = None) -> None:
    """Every opportunity's influence when called with no ids (nightly), else just those."""
    influence_recompute(opportunity_ids=opportunity_ids)
