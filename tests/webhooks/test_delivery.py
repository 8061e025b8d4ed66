"""A delivery reaches a receiver signed, is retried after a 500, and arrives once after a 200."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from webhooks import network
from webhooks.dispatch import deliveries_dispatch
from webhooks.events import events_collect
from webhooks.models import Attempt, Delivery, Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(make_endpoint, receiver, private_allowed):
    return make_endpoint(receiver)


def test_it_sends_an_email_event_signed_with_the_endpoints_secret(
    endpoint, receiver, log_event
) -> None:
    events_collect()
    event = log_event("sent")
    events_collect()
    deliveries_dispatch()
    [request] = receiver.received
    assert request.signature_valid
    assert request.headers["webhook-id"] == Delivery.objects.get().message_id
    assert request.payload["type"] == "email.sent"
    assert request.payload["data"]["event_id"] == event.pk
    assert request.payload["data"]["address"] == "ada@example.com"


def test_a_wrong_secret_fails_the_receivers_check(endpoint, receiver, log_event) -> None:
    events_collect()
    log_event("sent")
    events_collect()
    receiver.secret = "whsec_" + "A" * 32
    deliveries_dispatch()
    assert [request.signature_valid for request in receiver.received] == [False]


def test_it_retries_after_500s_and_the_event_arrives_once_after_the_200(
    endpoint, receiver, log_event
) -> None:
    receiver.answers = [500, 500, 200]
    events_collect()
    log_event("sent")
    events_collect()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        deliveries_dispatch()
        deliveries_dispatch()  # not due yet: 30 s backoff
        assert len(receiver.received) == 1
        clock.shift(timedelta(seconds=31))
        deliveries_dispatch()
        clock.shift(timedelta(seconds=61))
        deliveries_dispatch()
        clock.shift(timedelta(hours=2))
        deliveries_dispatch()
        events_collect()
        deliveries_dispatch()
    assert [request.status for request in receiver.received] == [500, 500, 200]
    assert len({request.headers["webhook-id"] for request in receiver.received}) == 1
    assert all(request.signature_valid for request in receiver.received)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert delivery.attempts == 3
    attempts = list(Attempt.objects.filter(delivery=delivery))
    assert [attempt.status_code for attempt in attempts] == [500, 500, 200]
    assert all(attempt.response_ms is not None for attempt in attempts)
    assert attempts[0].error == "The endpoint answered 500."
    assert attempts[2].response_start == "ok"


def test_it_gives_up_a_day_after_the_first_attempt(endpoint, receiver, log_event) -> None:
    receiver.answers = [500]
    events_collect()
    log_event("sent")
    events_collect()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(20):
            deliveries_dispatch()
            clock.shift(timedelta(hours=1))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.next_attempt_at is None
    last = Attempt.objects.filter(delivery=delivery).latest("attempted_at")
    assert last.attempted_at - delivery.first_attempt_at <= timedelta(hours=24)
    assert len(receiver.received) == delivery.attempts


def test_a_redirect_is_not_followed(endpoint, receiver, log_event) -> None:
    receiver.answers = [302]
    events_collect()
    log_event("sent")
    events_collect()
    deliveries_dispatch()
    attempt = Attempt.objects.get()
    assert attempt.status_code == 302
    assert attempt.error == "Redirects are not followed."
    assert Delivery.objects.get().status == Delivery.Status.PENDING


def test_an_endpoint_deleted_while_sending_loses_its_attempt_quietly(
    endpoint, receiver, log_event, monkeypatch
) -> None:
    events_collect()
    log_event("sent")
    events_collect()
    real = network.post

    def post_then_delete(*args, **kwargs):
        answer = real(*args, **kwargs)
        Endpoint.objects.all().delete()
        return answer

    monkeypatch.setattr(network, "post", post_then_delete)
    assert deliveries_dispatch() == 1
    assert not Attempt.objects.exists()
