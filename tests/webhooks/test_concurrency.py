"""Two dispatchers at once never send one delivery twice; two collectors never make one twice."""

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import run_at_once
from webhooks.dispatch import deliveries_dispatch
from webhooks.events import events_collect
from webhooks.models import Delivery

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = 120


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time: there is no race to test.
        pytest.skip("concurrent writers need PostgreSQL")


def _drain() -> None:
    while deliveries_dispatch():
        pass


def test_two_dispatchers_at_once_send_each_delivery_once(
    make_endpoint, receiver, private_allowed
) -> None:
    endpoint = make_endpoint(receiver)
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            endpoint=endpoint,
            event_key=f"test:{n}",
            event_type="webhook.test",
            payload={"n": n},
            next_attempt_at=now,
        )
        for n in range(DELIVERIES)
    )
    errors = run_at_once(_drain, _drain)
    assert errors == []
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(ids) == DELIVERIES
    assert len(set(ids)) == DELIVERIES
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == DELIVERIES


def test_two_collectors_at_once_make_each_delivery_once(make_endpoint, log_event) -> None:
    make_endpoint()
    events_collect()
    for _ in range(30):
        log_event("sent")
    errors = run_at_once(events_collect, events_collect)
    assert errors == []
    assert Delivery.objects.count() == 30
