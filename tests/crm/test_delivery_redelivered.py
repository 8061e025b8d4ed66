"""A single email's delivery task given back by the broker (acks_late: the worker that had it was
killed mid-send): the copy that worker left Sending is marked unconfirmed, never sent again,
and the email gets its status instead of staying Queued with its page refreshing for ever."""

import pytest
from django.core import mail

from crm.delivery import UNCONFIRMED
from crm.models import EmailMessage
from crm.sending import email_send
from crm.tasks import deliver_email


@pytest.fixture
def stopped_email(rep, settings):
    """An email to three whose worker died while sending the second copy: the first was
    recorded Sent, the second is Sending, the third still Pending."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    email = email_send(
        sender=rep,
        to=["a@example.com", "b@example.com", "c@example.com"],
        subject="Hi",
        html_body="<p>Hi</p>",
    )
    email.relations.filter(address="a@example.com").update(delivery_status="sent")
    email.relations.filter(address="b@example.com").update(delivery_status="sending")
    return email


def _run(email: EmailMessage, **delivery_info: object) -> None:
    deliver_email.push_request(delivery_info=delivery_info)
    try:
        deliver_email.run(email.pk)
    finally:
        deliver_email.pop_request()


def test_a_redelivered_task_marks_the_stopped_runs_copy_unconfirmed_and_sends_the_rest(
    stopped_email, client_for, rep
) -> None:
    _run(stopped_email, redelivered=True)

    assert [m.to for m in mail.outbox] == [["c@example.com"]]  # b is never sent again
    copies = dict(stopped_email.relations.values_list("address", "refusal_reason"))
    assert copies["b@example.com"] == UNCONFIRMED
    stopped_email.refresh_from_db()
    assert stopped_email.delivery_status == EmailMessage.Delivery.PARTIAL
    assert stopped_email.failure_reason == f"b@example.com: {UNCONFIRMED}"
    page = client_for(rep).get(stopped_email.get_absolute_url()).content.decode()
    assert "refreshes until it is sent" not in page and "Partly sent" in page


def test_a_first_delivery_leaves_a_copy_another_run_is_sending_alone(stopped_email) -> None:
    _run(stopped_email)  # not redelivered: a run that may still be sending b holds it

    assert [m.to for m in mail.outbox] == [["c@example.com"]]
    b = stopped_email.relations.get(address="b@example.com")
    assert (b.delivery_status, b.refusal_reason) == ("sending", "")
    stopped_email.refresh_from_db()
    assert stopped_email.delivery_status == EmailMessage.Delivery.QUEUED  # still in hand
