"""A real worker process SIGKILLed in the middle of a list email batch: one group of copies is
left Sending, the next run sends the rest once, also when a deferral's retries race it."""

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from campaigns.list_email import BATCH_LEASE, BATCH_SIZE, list_email_batch_send
from campaigns.models import ListEmail
from crm.delivery import CLAIM_GROUP, email_deliver
from tests import conftest
from tests.campaigns.conftest import copy_statuses
from tests.conftest import REPO_ROOT, run_at_once

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = Path(__file__).with_name("killed_list_email.py")
KILLED_AT = CLAIM_GROUP + CLAIM_GROUP // 2  # half-way through the batch's second group


def _killed(list_email: ListEmail) -> list[str]:
    """Run the next batch in a process SIGKILLed as it hands over its KILLED_AT-th message;
    the addresses it had handed over before."""
    env = {
        **os.environ,
        "DATABASE_URL": conftest.test_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(list_email.pk), str(KILLED_AT)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sent = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "READY":
                break
            if line.startswith("SENT "):
                sent.append(line.split()[1])
        else:
            pytest.fail("the worker ended before it was killed: " + process.stdout.read()[-3000:])
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return sent


def _after_the_lease() -> timezone.datetime:
    return timezone.now() + BATCH_LEASE + timedelta(seconds=1)


def test_a_killed_worker_leaves_one_group_sending_and_the_next_run_sends_the_rest_once(
    queued_list_email,
) -> None:
    list_email = queued_list_email(BATCH_SIZE)

    sent_before = _killed(list_email)

    left = copy_statuses(list_email)
    assert len(sent_before) == KILLED_AT - 1
    assert Counter(left.values()) == {
        "sent": CLAIM_GROUP,
        "sending": CLAIM_GROUP,
        "pending": BATCH_SIZE - 2 * CLAIM_GROUP,
    }
    list_email_batch_send(list_email_id=list_email.pk, now=_after_the_lease())
    sent_after = [message.to[0] for message in mail.outbox]
    assert sorted(sent_after) == sorted(a for a, status in left.items() if status == "pending")
    assert not set(sent_after) & set(sent_before)
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED


def test_a_deferrals_retries_racing_the_resumed_batch_send_each_copy_once(
    queued_list_email,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    list_email = queued_list_email(BATCH_SIZE)
    sent_before = _killed(list_email)
    pending = [
        email_id
        for (email_id,) in list_email.recipients.filter(
            email__relations__delivery_status="pending"
        ).values_list("email_id")
    ]

    errors = run_at_once(
        lambda: list_email_batch_send(list_email_id=list_email.pk, now=_after_the_lease()),
        lambda: [email_deliver(email_id=email_id) for email_id in pending],
    )

    assert errors == []
    sent_after = [message.to[0] for message in mail.outbox]
    assert len(sent_after) == len(set(sent_after)) == len(pending)
    assert not set(sent_after) & set(sent_before)
    assert Counter(copy_statuses(list_email).values()) == {
        "sent": BATCH_SIZE - CLAIM_GROUP,
        "sending": CLAIM_GROUP,
    }
