"""A real Celery worker process, fed through Redis, recomputes metrics and creates follow-ups."""

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.utils import timezone

from crm.models import ActivityMetric, Contact, Task
from tests.conftest import celery_worker, skip_or_fail
from tests.crm.activity import email_to

# The worker is another process: it only sees committed rows.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker() -> Iterator[Celery]:
    redis_url = settings.REDIS_URL or "redis://127.0.0.1:6379/12"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        skip_or_fail(f"Redis is not reachable at {redis_url}")
    sender = Celery("test-sender", broker=redis_url, set_as_current=False)
    sender.control.purge()  # nothing left over from an earlier run
    with celery_worker(
        {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}, hostname="metrics-test"
    ):
        yield sender


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.3)


def test_a_worker_process_recomputes_metrics_and_creates_follow_ups(worker, make_contact) -> None:
    now = timezone.now()
    quiet = make_contact()
    busy = make_contact(first_name="Bob", email="bob@example.com")
    Contact.objects.update(created_at=now - timedelta(days=60))
    email_to(quiet, when=now - timedelta(days=20))
    email_to(busy, when=now - timedelta(days=2))

    worker.send_task("crm.tasks.recompute_activity_metrics")
    worker.send_task("crm.tasks.create_follow_ups")

    follow_ups = Task.objects.filter(kind=Task.Kind.FOLLOW_UP)
    _wait_for(follow_ups.exists)
    assert [task.subject for task in follow_ups] == [
        "No activity for 20 days: follow up with Ada Lovelace"
    ]
    assert ActivityMetric.objects.get(contact=busy).inactive_days == 2
