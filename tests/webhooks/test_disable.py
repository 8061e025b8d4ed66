"""An endpoint whose deliveries all fail for a day is disabled, and its owner gets a task."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from crm.models import Task
from webhooks.dispatch import deliveries_dispatch
from webhooks.events import events_collect
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(make_endpoint, receiver, private_allowed):
    receiver.answers = [503]
    return make_endpoint(receiver)


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        events_collect()
        yield traveller


def _fail_for(hours: int, log_event, clock) -> None:
    """A new event every half hour, and the due deliveries sent (the receiver says 503)."""
    end = timezone.now() + timedelta(hours=hours)
    while timezone.now() < end:
        log_event("sent")
        events_collect()
        deliveries_dispatch()
        clock.shift(timedelta(minutes=30))


def test_a_day_of_failures_disables_the_endpoint_and_tells_its_owner(
    endpoint, receiver, log_event, admin_user, clock
) -> None:
    _fail_for(23, log_event, clock)
    endpoint.refresh_from_db()
    assert endpoint.is_active
    _fail_for(2, log_event, clock)
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_reason.startswith("every delivery failed for 24 hours")
    assert "503" in endpoint.disabled_reason
    [task] = Task.objects.filter(owner=admin_user)
    assert task.subject.startswith("Webhook endpoint CRM sync was disabled: every delivery")
    sent = len(receiver.received)
    _fail_for(1, log_event, clock)
    assert len(receiver.received) == sent
    assert Task.objects.count() == 1


def test_a_success_restarts_the_day(endpoint, receiver, log_event, clock) -> None:
    _fail_for(20, log_event, clock)
    receiver.answers = [200] * (len(receiver.received) + 1)
    clock.shift(timedelta(hours=1))
    deliveries_dispatch()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
    receiver.answers = [503]
    _fail_for(20, log_event, clock)
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert not Task.objects.exists()


def test_a_disabled_endpoint_sends_nothing_until_enabled(endpoint, receiver, log_event) -> None:
    events_collect()
    log_event("sent")
    events_collect()
    Endpoint.objects.update(is_active=False)
    deliveries_dispatch()
    assert receiver.received == []
    assert Delivery.objects.get().status == Delivery.Status.PENDING
