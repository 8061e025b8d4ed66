"""Send later on PostgreSQL: two beat runs at once send a due email once; a cancel racing the
send either wins (nothing sent) or loses (sent, and the cancel says so); a worker dying
mid-send leaves the email to the next run, which sends it once."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from crm import scheduling
from crm.models import EmailMessage, ScheduledEmail
from crm.scheduling import (
    scheduled_email_cancel,
    scheduled_email_create,
    scheduled_emails_send_due,
)
from tests.conftest import run_at_once

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")


def _due_emails(rep, make_contact, count: int) -> list[ScheduledEmail]:
    with time_machine.travel(timezone.now() - timedelta(hours=1)):
        return [
            scheduled_email_create(
                sender=rep,
                to=[f"p{n}@example.com"],
                subject=f"Email {n}",
                html_body="<p>Hi</p>",
                send_at=timezone.now() + timedelta(minutes=5),
                person=make_contact(email=f"p{n}@example.com"),
            )
            for n in range(count)
        ]


def test_two_beat_runs_at_once_send_each_due_email_once(rep, make_contact) -> None:
    _due_emails(rep, make_contact, 5)

    errors = run_at_once(scheduled_emails_send_due, scheduled_emails_send_due)

    assert errors == []
    assert EmailMessage.objects.count() == 5
    assert sorted(EmailMessage.objects.values_list("subject", flat=True)) == [
        f"Email {n}" for n in range(5)
    ]
    assert set(ScheduledEmail.objects.values_list("status", flat=True)) == {"sent"}


def test_a_cancel_racing_the_send_either_wins_or_is_told_it_went(rep, make_contact) -> None:
    (scheduled,) = _due_emails(rep, make_contact, 1)
    cancelled: list[bool] = []

    errors = run_at_once(
        scheduled_emails_send_due,
        lambda: cancelled.append(scheduled_email_cancel(scheduled=scheduled)),
    )

    assert errors == []
    scheduled.refresh_from_db()
    if cancelled == [True]:
        assert scheduled.status == "cancelled" and not EmailMessage.objects.exists()
    else:
        assert scheduled.status == "sent" and EmailMessage.objects.count() == 1


def test_a_worker_dying_mid_send_leaves_it_for_the_next_run_which_sends_it_once(
    rep, make_contact, monkeypatch
) -> None:
    (scheduled,) = _due_emails(rep, make_contact, 1)
    real_send = scheduling.email_send

    def dies_after_recording(**kwargs):  # the email is written, then the process is gone
        real_send(**kwargs)
        raise SystemExit("worker killed")

    monkeypatch.setattr(scheduling, "email_send", dies_after_recording)
    with pytest.raises(SystemExit):
        scheduled_emails_send_due()
    scheduled.refresh_from_db()
    assert scheduled.status == "scheduled" and not EmailMessage.objects.exists()

    monkeypatch.setattr(scheduling, "email_send", real_send)
    assert scheduled_emails_send_due() == 1
    assert scheduled_emails_send_due() == 0
    assert EmailMessage.objects.count() == 1
