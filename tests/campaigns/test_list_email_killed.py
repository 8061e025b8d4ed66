"""A worker killed in the middle of a list email batch: at most one group of copies is left
Sending (unconfirmed, never sent again), the rest stay Pending and the run that takes the lease
next delivers them, each once; the list email completes only when none is Pending.

The kill is simulated in this process: the mail backend raises at the chosen message after
taking a savepoint, and the savepoint is rolled back, so the database is exactly what the
worker had written (committed) when it died. test_list_email_sigkill.py kills a real process.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.list_email import (
    BATCH_LEASE,
    BATCH_SIZE,
    UNDELIVERED_RECHECK,
    list_email_batch_send,
    list_email_progress,
)
from campaigns.models import ListEmail
from campaigns.tasks import resume_list_emails
from crm import jobs
from crm.delivery import CLAIM_GROUP, UNCONFIRMED
from crm.models import EmailMessage, EmailMessageRelation, OrgSettings
from tests.campaigns.conftest import copy_statuses
from tests.conftest import killed_while_handing_over

Relation = EmailMessageRelation
# The kill comes in the batch's second group, half-way through it.
KILLED_AT = CLAIM_GROUP + CLAIM_GROUP // 2


def _killed_batch(monkeypatch, list_email: ListEmail, *, at: int) -> list[str]:
    """Run the list email's next batch in a worker killed as it hands the mail backend its
    `at`th message; returns the addresses the backend had taken before."""
    return killed_while_handing_over(
        monkeypatch, lambda: list_email_batch_send(list_email_id=list_email.pk), at=at
    )


def _after_the_lease() -> timezone.datetime:
    return timezone.now() + BATCH_LEASE + timedelta(seconds=1)


def test_a_worker_killed_mid_batch_leaves_one_group_sending_and_the_rest_pending(
    queued_list_email, monkeypatch
) -> None:
    list_email = queued_list_email(BATCH_SIZE)

    sent = _killed_batch(monkeypatch, list_email, at=KILLED_AT)

    copies = copy_statuses(list_email)
    assert len(sent) == KILLED_AT - 1
    assert Counter(copies.values()) == {
        "sent": CLAIM_GROUP,  # the first group, recorded before the second was claimed
        "sending": CLAIM_GROUP,  # the group in hand: some of it went out
        "pending": BATCH_SIZE - 2 * CLAIM_GROUP,  # never claimed
    }
    assert {a for a, status in copies.items() if status == "sent"} == set(sent[:CLAIM_GROUP])
    assert set(sent[CLAIM_GROUP:]) < {a for a, status in copies.items() if status == "sending"}


def test_the_next_batch_sends_the_pending_copies_once_and_never_the_sending_ones(
    campaign, rep, queued_list_email, monkeypatch, client_for
) -> None:
    planned = campaign.statuses.create(label="Planned", sort_order=0)
    campaign.statuses.update(is_default=False)
    campaign.statuses.filter(pk=planned.pk).update(is_default=True)
    list_email = queued_list_email(BATCH_SIZE + 10)  # and a second batch of ten
    sent_before = _killed_batch(monkeypatch, list_email, at=KILLED_AT)
    left = copy_statuses(list_email)

    # The dead worker's lease has passed: the next run resumes its batch, then goes on.
    assert list_email_batch_send(list_email_id=list_email.pk, now=_after_the_lease()) is None

    sent_after = [message.to[0] for message in mail.outbox]
    pending = {a for a, status in left.items() if status == "pending"}
    unconfirmed = {a for a, status in left.items() if status == "sending"}
    new = {f"p{i}@example.com" for i in range(BATCH_SIZE, BATCH_SIZE + 10)}
    assert len(sent_after) == len(set(sent_after)) == len(pending) + 10
    assert set(sent_after) == pending | new
    received = Counter(sent_before + sent_after)
    assert set(received.values()) == {1}  # nobody twice
    everyone = set(campaign.members.values_list("contact__email", flat=True))
    assert everyone - received.keys() == unconfirmed - set(sent_before)
    copies = Relation.objects.filter(address__in=unconfirmed, relation_type="to")
    assert set(copies.values_list("delivery_status", "refusal_reason")) == {
        ("sending", UNCONFIRMED)
    }
    # The funnel counts every copy that went out, the dead worker's recorded group too.
    assert set(
        campaign.members.exclude(contact__email__in=unconfirmed).values_list(
            "status__label", flat=True
        )
    ) == {"Sent"}
    assert set(
        campaign.members.filter(contact__email__in=unconfirmed).values_list(
            "status__label", flat=True
        )
    ) == {"Planned"}
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
    progress = list_email_progress(list_email=list_email)
    assert (progress.sent, progress.unconfirmed, progress.remaining) == (
        BATCH_SIZE + 10 - CLAIM_GROUP,
        CLAIM_GROUP,
        0,
    )
    page = client_for(rep).get(list_email.get_absolute_url()).content.decode()
    assert f'id="count-unconfirmed">{CLAIM_GROUP}<' in page and 'data-done="true"' in page
    assert "they may or may not have gone out" in page
    unconfirmed_rows = client_for(rep).get(
        list_email.get_absolute_url(), {"state": "handed", "per_page": 100, "page": 1}
    )
    assert "Unconfirmed: the worker stopped while sending it" in unconfirmed_rows.content.decode()
    # Their emails are not left Queued (an email page that refreshes for ever): Unconfirmed.
    emails = EmailMessage.objects.filter(relations__in=copies)
    assert set(emails.values_list("delivery_status", flat=True)) == {"unconfirmed"}
    email_page = client_for(rep).get(emails.first().get_absolute_url()).content.decode()
    assert ">Unconfirmed</span>" in email_page and "refreshes until it is sent" not in email_page
    contact = Relation.objects.filter(pk__in=copies).first().contact
    timeline = client_for(rep).get(contact.get_absolute_url()).content.decode()
    assert "Unconfirmed: may or may not have gone out" in timeline


def test_beat_resumes_a_list_email_whose_last_batch_was_killed(
    queued_list_email, monkeypatch, time_machine
) -> None:
    time_machine.move_to("2026-03-02 15:00:00Z", tick=False)
    list_email = queued_list_email(3 * CLAIM_GROUP)
    sent_before = _killed_batch(monkeypatch, list_email, at=KILLED_AT)

    resume_list_emails.delay()  # within the lease: the dead worker may still be sending
    assert mail.outbox == []
    time_machine.move_to("2026-03-02 15:10:01Z", tick=False)
    resume_list_emails.delay()

    sent_after = [message.to[0] for message in mail.outbox]
    assert len(sent_after) == CLAIM_GROUP and not set(sent_after) & set(sent_before)
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
    assert list_email_progress(list_email=list_email).unconfirmed == CLAIM_GROUP


def test_a_list_email_is_not_completed_while_a_copy_is_pending(
    queued_list_email, smtp_server, monkeypatch
) -> None:
    list_email = queued_list_email(3)
    # The server defers the second copy; its retry waits in the broker (not run here).
    smtp_server.refuse = {"p1@example.com": "451 4.7.1 Try later"}
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, **kwargs: queued.append(name))
    start = timezone.now()

    list_email_batch_send(list_email_id=list_email.pk, now=start)
    list_email_batch_send(list_email_id=list_email.pk, now=start)  # nothing left to claim

    assert [rcpt[0] for rcpt, _ in smtp_server.messages] == ["p0@example.com"]
    assert queued.count(jobs.DELIVER_EMAIL) == 2  # the deferred copies' own retries
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.SENDING
    assert list_email.next_batch_at == start + UNDELIVERED_RECHECK
    smtp_server.refuse = {}
    later = start + UNDELIVERED_RECHECK
    assert (
        list_email_batch_send(list_email_id=list_email.pk, now=later - timedelta(seconds=1)) is None
    )
    assert len(smtp_server.messages) == 1  # not due yet

    list_email_batch_send(list_email_id=list_email.pk, now=later)

    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
    ]  # each once
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
    assert list_email_progress(list_email=list_email).sent == 3


@pytest.mark.parametrize(("rate", "new", "minutes"), [(120, 100, 1), (10, 0, 2)])
def test_the_copies_a_resumed_batch_sends_count_against_setups_per_minute_rate(
    queued_list_email, monkeypatch, rate, new, minutes
) -> None:
    """A stopped batch's Pending copies go out in the run that resumes it: with this run's new
    batch they make no more than Setup's per-minute rate, and the next batch waits for them."""
    _per_minute(120)
    list_email = queued_list_email(300)
    _killed_batch(monkeypatch, list_email, at=KILLED_AT)  # a batch of 120: 20 left Pending
    _per_minute(rate)  # Setup may change it meanwhile
    now = _after_the_lease()

    due = list_email_batch_send(list_email_id=list_email.pk, now=now)

    resumed = 120 - 2 * CLAIM_GROUP
    assert len(mail.outbox) == resumed + new
    assert due == now + timedelta(minutes=minutes)
    list_email.refresh_from_db()
    assert list_email.next_batch_at == due


def _per_minute(rate: int) -> None:
    org = OrgSettings.load()
    org.list_email_per_minute = rate
    org.save()
