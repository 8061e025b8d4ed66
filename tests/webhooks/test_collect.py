"""New events become one delivery per endpoint that wants them: machine events only when asked
and labelled, internal events never, records created and updated, and nothing twice."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from crm.models import Contact
from tests.crm.activity import email_to
from tracking.models import TrackingEvent
from webhooks.events import events_collect
from webhooks.models import Cursor, Delivery

pytestmark = pytest.mark.django_db


def _open(relation, *, label: str = "human", internal: bool = False) -> TrackingEvent:
    return TrackingEvent.objects.create(
        event_id=uuid.uuid4(),
        kind="open",
        relation=relation,
        occurred_at=timezone.now(),
        label=label,
        reason="test",
        method="GET",
        internal=internal,
    )


@pytest.fixture
def relation(make_contact):
    return email_to(make_contact(), when=timezone.now())


def _types(endpoint) -> list[str]:
    return sorted(Delivery.objects.filter(endpoint=endpoint).values_list("event_type", flat=True))


def test_history_before_the_first_collection_is_not_sent(make_endpoint, log_event) -> None:
    log_event("sent")
    make_endpoint()
    events_collect()
    assert not Delivery.objects.exists()
    log_event("sent")
    events_collect()
    assert Delivery.objects.count() == 1


def test_each_endpoint_gets_only_the_kinds_it_ticked(make_endpoint, log_event) -> None:
    sent_only = make_endpoint(events=["email.sent"])
    bounces = make_endpoint(name="Bounces", events=["email.bounced", "email.delivered"])
    events_collect()
    for kind in ("sent", "delivered", "bounced", "queued", "deferred"):
        log_event(kind)
    events_collect()
    assert _types(sent_only) == ["email.sent"]
    assert _types(bounces) == ["email.bounced", "email.delivered"]


def test_collecting_again_makes_no_second_delivery(make_endpoint, log_event) -> None:
    make_endpoint()
    events_collect()
    log_event("sent")
    events_collect()
    Cursor.objects.update(last_id=0)
    events_collect()
    assert Delivery.objects.count() == 1


def test_machine_opens_go_only_to_endpoints_that_ask_and_are_labelled(
    make_endpoint, relation
) -> None:
    people = make_endpoint(events=["email.opened"])
    everything = make_endpoint(name="All", events=["email.opened"], include_machine=True)
    events_collect()
    _open(relation, label="human")
    _open(relation, label="apple_mpp")
    events_collect()
    [human] = Delivery.objects.filter(endpoint=people)
    assert human.payload["data"]["machine"] is False
    assert human.payload["data"]["label"] == "human"
    labels = {
        d.payload["data"]["label"]: d.payload["data"]["machine"]
        for d in Delivery.objects.filter(endpoint=everything)
    }
    assert labels == {"human": False, "apple_mpp": True}


def test_internal_events_are_never_sent(make_endpoint, relation) -> None:
    make_endpoint(events=["email.opened"], include_machine=True)
    events_collect()
    _open(relation, internal=True)
    _open(relation, label="bot", internal=True)
    events_collect()
    assert not Delivery.objects.exists()


def test_a_disabled_endpoint_gets_no_new_delivery(make_endpoint, log_event) -> None:
    make_endpoint(is_active=False)
    events_collect()
    log_event("sent")
    events_collect()
    assert not Delivery.objects.exists()


def test_records_created_and_updated_are_sent_a_bulk_update_is_not(
    make_endpoint, make_contact, make_account
) -> None:
    endpoint = make_endpoint(events=["record.created", "record.updated"])
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        events_collect()
        clock.shift(timedelta(seconds=1))
        contact = make_contact(email="new@example.com")
        account = make_account()
        clock.shift(timedelta(minutes=1))
        events_collect()
        contact.title = "CTO"
        contact.save()
        clock.shift(timedelta(minutes=1))
        events_collect()
        Contact.objects.filter(pk=contact.pk).update(title="CEO")  # updated_at left as it was
        clock.shift(timedelta(minutes=1))
        events_collect()
    deliveries = list(Delivery.objects.filter(endpoint=endpoint).order_by("pk"))
    # A bulk update that leaves updated_at as it was sends nothing (see webhooks.events).
    assert [d.event_type for d in deliveries] == [
        "account.created",
        "contact.created",
        "contact.updated",
    ]
    created = next(d for d in deliveries if d.event_type == "contact.created")
    assert created.payload["data"] == {
        "object": "contact",
        "id": contact.pk,
        "owner_id": contact.owner_id,
        "created_at": created.payload["data"]["created_at"],
        "updated_at": created.payload["data"]["updated_at"],
        "email": "new@example.com",
    }
    assert created.address == "new@example.com"
    assert deliveries[0].payload["data"]["id"] == account.pk


def test_only_record_endpoints_get_record_events(make_endpoint, make_contact) -> None:
    make_endpoint(events=["email.sent"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        events_collect()
        clock.shift(timedelta(seconds=1))
        make_contact()
        clock.shift(timedelta(minutes=1))
        events_collect()
    assert not Delivery.objects.exists()
