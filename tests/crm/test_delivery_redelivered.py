"""A single email's delivery run after one that died mid-send (the broker gave the message back,
or Celery sent the task again when its pool process was killed): the copy the dead run left
Sending is marked unconfirmed, never sent again, and the email gets its status instead of
staying Queued with its page refreshing for ever."""

import pytest
from django.core import mail

from crm.delivery import UNCONFIRMED, email_deliver
from crm.models import EmailMessage
from crm.sending import email_send
from crm.tasks import deliver_email
from tests.conftest import killed_while_handing_over


@pytest.fixture
def stopped_email(rep, settings):
    """An email to three whose worker died while sending the second copy: the first was
    recorded Sent, the second is Sending, the third still Pending."""
    email = _email_to_three(rep, settings)
    email.relations.filter(address="a@example.com").update(delivery_status="sent")
    email.relations.filter(address="b@example.com").update(delivery_status="sending")
    return email


def _email_to_three(rep, settings) -> EmailMessage:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return email_send(
        sender=rep,
        to=["a@example.com", "b@example.com", "c@example.com"],
        subject="Hi",
        html_body="<p>Hi</p>",
    )


def _run(email: EmailMessage, **request: object) -> None:
    deliver_email.push_request(**request)
    try:
        deliver_email.run(email.pk)
    finally:
        deliver_email.pop_request()


@pytest.mark.parametrize(
    "after",
    [
        {"delivery_info": {"redelivered": True}},  # its node lost: the broker gave it back
        {"retries": 1},  # its pool process killed: Celery sent it again
    ],
)
def test_a_run_after_one_that_died_marks_its_copy_unconfirmed_and_sends_the_rest(
    stopped_email, client_for, rep, after
) -> None:
    _run(stopped_email, **after)

    assert [m.to for m in mail.outbox] == [["c@example.com"]]  # b is never sent again
    copies = dict(stopped_email.relations.values_list("address", "refusal_reason"))
    assert copies["b@example.com"] == UNCONFIRMED
    stopped_email.refresh_from_db()
    assert stopped_email.delivery_status == EmailMessage.Delivery.PARTIAL
    assert stopped_email.failure_reason == f"b@example.com: {UNCONFIRMED}"
    page = client_for(rep).get(stopped_email.get_absolute_url()).content.decode()
    assert "refreshes until it is sent" not in page and "Partly sent" in page


def test_a_first_delivery_leaves_a_copy_another_run_is_sending_alone(stopped_email) -> None:
    _run(stopped_email, retries=0, delivery_info={})  # a run that may still be sending b

    assert [m.to for m in mail.outbox] == [["c@example.com"]]
    b = stopped_email.relations.get(address="b@example.com")
    assert (b.delivery_status, b.refusal_reason) == ("sending", "")
    stopped_email.refresh_from_db()
    assert stopped_email.delivery_status == EmailMessage.Delivery.QUEUED  # still in hand


def test_a_killed_pool_process_gets_its_task_sent_again_a_bounded_number_of_times() -> None:
    """Celery acknowledges a task whose pool process was killed unless told otherwise; this one
    is sent again (and counted against its retries, so it cannot loop)."""
    from crm.tasks import MAX_DELIVERY_RETRIES, WORKER_LOST_RETRY_DELAY

    assert deliver_email.retry_on_worker_lost is True
    assert deliver_email.max_retries == MAX_DELIVERY_RETRIES
    assert deliver_email.default_retry_delay == WORKER_LOST_RETRY_DELAY


def test_a_run_killed_mid_email_leaves_only_the_copy_in_hand_sending(
    rep, settings, monkeypatch
) -> None:
    """Each copy's outcome is committed as soon as it is sent: a run killed as it hands over
    the second of three leaves the first Sent, the second Sending, the third Pending; the run
    after marks only the second unconfirmed."""
    email = _email_to_three(rep, settings)

    killed_while_handing_over(monkeypatch, lambda: email_deliver(email_id=email.pk), at=2)

    assert dict(
        email.relations.filter(relation_type="to").values_list("address", "delivery_status")
    ) == {
        "a@example.com": "sent",
        "b@example.com": "sending",
        "c@example.com": "pending",
    }
    _run(email, retries=1)
    assert [m.to for m in mail.outbox] == [["c@example.com"]]
    email.refresh_from_db()
    assert email.delivery_status == EmailMessage.Delivery.PARTIAL
    assert email.failure_reason == f"b@example.com: {UNCONFIRMED}"
