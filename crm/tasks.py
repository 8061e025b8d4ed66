from celery import Task, shared_task

from crm.services import DeliveryDeferred, email_deliver, email_delivery_give_up

# Backoff between tries when the mail server is unreachable: 30 s doubling to 15 min, ~1 h in all.
MAX_DELIVERY_RETRIES = 7


@shared_task(bind=True, max_retries=MAX_DELIVERY_RETRIES, acks_late=True)
def deliver_email(self: Task, email_id: int) -> None:
    try:
        email_deliver(email_id=email_id)
    except DeliveryDeferred as error:
        if self.request.retries >= MAX_DELIVERY_RETRIES:
            email_delivery_give_up(email_id=email_id, reason=str(error))
            return
        raise self.retry(exc=error, countdown=min(30 * 2**self.request.retries, 900)) from error
