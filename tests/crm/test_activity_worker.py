"""A real Celery worker process, fed through Redis, recomputes metrics and creates follow-ups."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.models import ActivityMetric, Contact, Task
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.crm.activity import email_to

# The worker is another process: it only sees committed rows.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def worker() -> Iterator[Celery]:
    redis_url = settings.REDIS_URL or "redis://127.0.0.1:6379/12"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        skip_or_fail(f"Redis is not reachable at {redis_url}")
    sender = Celery("test-sender", broker=redis_url, set_as_current=False)
    sender.control.purge()  # nothing left over from an earlier run
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--hostname=metrics-test@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield sender
    process.terminate()
    output, _ = process.communicate(timeout=20)
    print(output[-3000:])


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
