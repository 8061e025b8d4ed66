"""Every step is sent or created once: with two beat runs at once, and with a worker killed in
the middle of a step (PostgreSQL: row locks, SKIP LOCKED and real processes)."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from automation.advance import enrolments_advance, undelivered_deliver
from automation.enrolment import people_enrol
from automation.models import Enrolment, StepRun
from crm.models import Contact, EmailMessage, EmailMessageRelation, Task
from tests import conftest
from tests.conftest import REPO_ROOT, run_at_once

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = Path(__file__).with_name("killed_advance.py")


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers and a killed process need PostgreSQL")


def test_two_runs_at_once_send_each_step_once(make_sequence, rep) -> None:
    sequence = make_sequence("email", ("task", "call"))
    people = Contact.objects.bulk_create(
        Contact(first_name=f"P{n}", last_name="X", email=f"p{n}@example.com", owner=rep)
        for n in range(450)
    )
    people_enrol(sequence=sequence, people=people, by=rep)

    errors = run_at_once(enrolments_advance, enrolments_advance)

    assert errors == []
    sent = EmailMessage.objects.filter(source=EmailMessage.Source.AUTOMATION)
    assert sent.count() == 450
    assert (
        EmailMessageRelation.objects.filter(
            email__in=sent, relation_type="to", delivery_status="sent"
        ).count()
        == 450
    )
    assert len({m.to[0] for m in mail.outbox}) == len(mail.outbox) == 450
    assert Task.objects.filter(subtype=Task.Subtype.CALL).count() == 450
    assert StepRun.objects.count() == 900
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.Status.FINISHED}


def _killed_at(point: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": conftest.test_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), point],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "READY", line + process.stdout.read()[-3000:]
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    # PostgreSQL rolls the dead session's transaction back once it sees the socket closed:
    # wait for that, or the next run would skip its still-locked rows.
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
            )
            (open_transactions,) = cursor.fetchone()
        if not open_transactions:
            return
        time.sleep(0.1)


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_a_worker_killed_mid_step_leaves_one_email(point, make_sequence, make_contact, rep):
    sequence = make_sequence("email", ("wait", 3), "email")
    ada = make_contact(email="ada@example.com")
    (enrolment,), _ = people_enrol(sequence=sequence, people=[ada], by=rep)

    _killed_at(point)
    # The next beat run, and the sweep once the dead worker's copies are overdue.
    enrolments_advance()
    undelivered_deliver(now=timezone.now() + timedelta(minutes=10))

    emails = EmailMessage.objects.filter(source=EmailMessage.Source.AUTOMATION)
    assert emails.count() == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert (
        EmailMessageRelation.objects.get(email__in=emails, relation_type="to").delivery_status
        == "sent"
    )
    enrolment.refresh_from_db()
    assert enrolment.current_step.position == 2
    assert enrolment.runs.count() == 1
