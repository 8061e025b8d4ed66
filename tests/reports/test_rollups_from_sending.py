"""Sending, bounces, complaints, replies and ESP events log an event and add to the rollup."""

from types import SimpleNamespace

import pytest
import time_machine
from django.core import mail

from crm.delivery import DeliveryDeferred, email_deliver, email_delivery_give_up
from crm.models import EmailDailyStat, EmailEvent, EmailMessageRelation
from crm.sending import email_send
from crm.tokens import token_for
from inbound.effects import complaint_record
from inbound.esp import esp_event_process
from mailkit.tokens import Purpose
from tests.reports.conftest import History, day


def _row(day_number: int, sender_id: int, campaign_id: int = 0) -> EmailDailyStat:
    return EmailDailyStat.objects.get(
        day=day(day_number).date(), sender_key=sender_id, campaign_key=campaign_id
    )


def test_a_send_logs_queued_and_sent_per_recipient_on_the_send_day(history: History) -> None:
    launch = _row(1, history.rep.pk, history.campaign.pk)
    assert (launch.queued, launch.sent, launch.failed) == (2, 2, 0)
    assert _row(1, history.other_rep.pk).sent == 1
    assert list(
        EmailEvent.objects.filter(relation=history.ann)
        .order_by("occurred_at", "pk")
        .values_list("kind", flat=True)[:2]
    ) == ["queued", "sent"]


def test_a_refused_copy_is_a_failure_and_a_deferral_is_logged(
    rep, make_contact, smtp_server
) -> None:
    smtp_server.refuse = {
        "gone@example.com": "550 5.1.1 No such user",
        "later@example.com": "451 4.7.1 Try later",
    }
    gone = make_contact(email="gone@example.com")
    later = make_contact(email="later@example.com", last_name="Later")
    with time_machine.travel(day(1), tick=False):
        email = email_send(sender=rep, to=[gone, later], subject="Hi", html_body="<p>Hi</p>")
        with pytest.raises(DeliveryDeferred):
            email_deliver(email_id=email.pk)
    events = dict(
        EmailEvent.objects.exclude(kind="queued").values_list("relation__address", "kind")
    )
    assert events == {"gone@example.com": "failed", "later@example.com": "deferred"}
    assert "550 5.1.1" in EmailEvent.objects.get(kind="failed").detail
    row = _row(1, rep.pk)
    assert (row.queued, row.sent, row.failed, row.deferred) == (2, 0, 1, 1)

    with time_machine.travel(day(2), tick=False):
        email_delivery_give_up(email_id=email.pk, reason="The mail server kept deferring")
    assert _row(2, rep.pk).failed == 1
    assert not mail.outbox


def test_bounces_complaints_and_replies_count_on_their_day(history: History) -> None:
    assert _row(3, history.rep.pk, history.campaign.pk).bounced_hard == 1
    # Ann replied twice (days 3 and 4): one replied recipient, on the day of the first reply.
    assert _row(3, history.rep.pk, history.campaign.pk).replied == 1
    assert not EmailDailyStat.objects.filter(day=day(4).date(), replied__gt=0).exists()

    with time_machine.travel(day(6), tick=False):
        complaint_record(relation=history.cy_hello, address="cy@example.com", feedback_type="abuse")

    assert _row(6, history.other_rep.pk).complained == 1
    assert EmailEvent.objects.get(kind="complained").relation == history.cy_hello


def test_an_esp_delivered_event_counts_as_delivered(history: History) -> None:
    token = token_for(history.cy_hello.pk, Purpose.RETURN)  # what the ESP echoes back
    event = SimpleNamespace(
        metadata={"openrate_token": token},
        event_id="esp-1",
        event_type="delivered",
        recipient="cy@example.com",
        timestamp=day(2),
        mta_response="250 2.0.0 OK",
        description="",
        reject_reason=None,
        message_id="m1",
        esp_event={},
    )

    esp_event_process(event=event, esp_name="postmark")
    esp_event_process(event=event, esp_name="postmark")  # the ESP retries: counted once

    assert _row(2, history.other_rep.pk).delivered == 1
    assert EmailEvent.objects.get(kind="delivered").detail == "250 2.0.0 OK"
    assert EmailMessageRelation.objects.filter(events__kind="delivered").get() == history.cy_hello


def test_an_esp_unsubscribe_counts_once_however_often_the_esp_reports_it(
    history: History,
) -> None:
    token = token_for(history.cy_hello.pk, Purpose.RETURN)  # what the ESP echoes back
    for n in (1, 2):  # two reports with their own ids: the person opted out once
        esp_event_process(
            event=SimpleNamespace(
                metadata={"openrate_token": token},
                event_id=f"esp-unsubscribe-{n}",
                event_type="unsubscribed",
                recipient="cy@example.com",
                timestamp=day(3),
                mta_response="",
                description="",
                reject_reason=None,
                message_id="m1",
                esp_event={},
            ),
            esp_name="postmark",
        )

    history.cy_hello.contact.refresh_from_db()
    assert history.cy_hello.contact.has_opted_out_of_email
    assert EmailEvent.objects.filter(kind="unsubscribed").count() == 1
