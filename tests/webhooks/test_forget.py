"""A forget reaches webhook deliveries: those naming the address are deleted, sent or not."""

import pytest

from webhooks.dispatch import deliveries_dispatch
from webhooks.events import events_collect, forget_addresses
from webhooks.models import Attempt, Delivery

pytestmark = pytest.mark.django_db


def test_it_deletes_the_deliveries_naming_the_addresses(
    make_endpoint, receiver, private_allowed, log_event, make_contact
) -> None:
    make_endpoint(receiver)
    events_collect()
    log_event("sent")
    events_collect()
    deliveries_dispatch()
    log_event("sent")
    events_collect()
    kept = Delivery.objects.create(
        endpoint=Delivery.objects.first().endpoint,
        event_key="other",
        event_type="email.sent",
        payload={},
        address="grace@example.com",
    )
    assert forget_addresses(["ADA@example.com "]) == 2
    assert list(Delivery.objects.all()) == [kept]
    assert not Attempt.objects.exists()
    assert forget_addresses([]) == 0
