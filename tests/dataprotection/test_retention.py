"""Setup's retention of email bodies and inbound raw messages, enforced nightly in chunks, each
run recorded with its counts."""

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from capture.models import CapturedAttachment
from crm.models import EmailMessage, OrgSettings
from dataprotection import retention
from dataprotection.models import RetentionRun
from dataprotection.retention import (
    captured_attachments_remove,
    captured_bodies_remove,
    email_bodies_remove,
    inbound_raw_remove,
    retention_enforce,
)
from dataprotection.tasks import retention_enforce as retention_enforce_task
from inbound.models import InboundMessage

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
OLD = datetime(2024, 1, 10, 9, tzinfo=UTC)  # past 24 months
RECENT = datetime(2025, 1, 10, 9, tzinfo=UTC)  # within 24 months


def _email(*, at: datetime, dated: bool = True, **fields: Any) -> EmailMessage:
    """An email stored at `at`; with `dated`, its message date is `at` too."""
    with time_machine.travel(at, tick=False):
        return EmailMessage.objects.create(
            **{
                "subject": "Pricing",
                "html_body": "<p>Hello Ada</p>",
                "text_body": "Hello Ada",
                "from_address": "rita@openrate.example",
                "to_addresses": "ada@example.com",
                "message_date": at if dated else None,
                "status": EmailMessage.Status.SENT,
                "times_opened": 3,
                **fields,
            }
        )


def _inbound(n: int, *, at: datetime) -> InboundMessage:
    with time_machine.travel(at, tick=False):
        return InboundMessage.objects.create(
            fingerprint=f"{n:064d}",
            source=InboundMessage.Source.IMAP,
            kind="bounce",
            status=InboundMessage.Status.PROCESSED,
            subject="Undelivered Mail",
            raw=b"From: mailer-daemon@example.com\r\n\r\nGone",
        )


@pytest.fixture
def mail(db: None) -> dict[str, list[Any]]:
    """Five old emails (one dated only by when it was stored), two recent ones, one old email
    with no body; four old inbound messages and one recent."""
    return {
        "old": [_email(at=OLD) for _ in range(4)] + [_email(at=OLD, dated=False)],
        "recent": [_email(at=RECENT), _email(at=OLD, message_date=RECENT)],
        "no_body": [_email(at=OLD, html_body="", text_body="")],
        "old_inbound": [_inbound(n, at=datetime(2026, 3, 1, tzinfo=UTC)) for n in range(4)],
        "recent_inbound": [_inbound(9, at=datetime(2026, 6, 1, tzinfo=UTC))],
    }


def test_old_bodies_are_removed_in_chunks_and_the_rest_of_the_email_stays(mail) -> None:
    with time_machine.travel(NOW, tick=False):
        removed = email_bodies_remove(chunk=2)

    assert removed == 5
    for email in mail["old"]:
        email.refresh_from_db()
        assert (email.html_body, email.text_body, email.body_removed_at) == ("", "", NOW)
        assert (email.subject, email.to_addresses, email.times_opened) == (
            "Pricing",
            "ada@example.com",
            3,
        )
    for email in mail["recent"]:
        email.refresh_from_db()
        assert email.html_body and email.text_body and email.body_removed_at is None
    # Nothing was there to remove: it is not said to have been removed.
    assert EmailMessage.objects.get(pk=mail["no_body"][0].pk).body_removed_at is None


def test_a_second_run_finds_nothing_to_do(mail) -> None:
    with time_machine.travel(NOW, tick=False):
        assert email_bodies_remove(chunk=2) == 5
        assert email_bodies_remove(chunk=2) == 0
        assert inbound_raw_remove(chunk=3) == 4
        assert inbound_raw_remove(chunk=3) == 0


def test_setups_months_decide_what_is_old(mail) -> None:
    org = OrgSettings.load()
    org.email_body_retention_months = 120
    org.save()

    with time_machine.travel(NOW, tick=False):
        assert email_bodies_remove() == 0


def test_captured_email_keeps_its_body_for_setups_captured_months(db: None) -> None:
    """Captured email follows "Keep captured email bodies" alone: 36 months keeps a 29-month-old
    capture that the 24 months of sent email would remove, and the other way round."""
    org = OrgSettings.load()
    org.email_body_retention_months = 24
    org.captured_body_retention_months = 36
    org.save()
    captured = _email(at=OLD, source=EmailMessage.Source.CAPTURED)
    kept = CapturedAttachment.objects.create(
        email=captured, name="terms.pdf", size=4, content=b"%PDF"
    )
    sent = _email(at=OLD)

    with time_machine.travel(NOW, tick=False):
        assert email_bodies_remove() == 1
        assert captured_bodies_remove() == 0
    captured.refresh_from_db()
    assert captured.html_body and captured.body_removed_at is None

    org.captured_body_retention_months = 12
    org.save()
    with time_machine.travel(NOW, tick=False):
        assert captured_bodies_remove(chunk=1) == 1
    captured.refresh_from_db()
    sent.refresh_from_db()
    assert (captured.html_body, captured.text_body, captured.subject) == ("", "", "Pricing")
    assert captured.body_removed_at == NOW == sent.body_removed_at
    # Its attachment's contents go with the body; the name and size stay.
    assert captured_attachments_remove(chunk=1) == 1
    kept.refresh_from_db()
    assert (kept.content, kept.name, kept.size) == (None, "terms.pdf", 4)


def test_old_inbound_raw_messages_are_emptied_and_the_row_stays(mail) -> None:
    # Setup keeps them 90 days: on June 15th, March 1st is past it, June 1st is not.
    with time_machine.travel(NOW, tick=False):
        emptied = inbound_raw_remove(chunk=3)

    assert emptied == 4
    for message in mail["old_inbound"]:
        message.refresh_from_db()
        assert bytes(message.raw) == b""
        assert (message.kind, message.status, message.subject) == (
            "bounce",
            InboundMessage.Status.PROCESSED,
            "Undelivered Mail",
        )
    recent = InboundMessage.objects.get(pk=mail["recent_inbound"][0].pk)
    assert bytes(recent.raw).startswith(b"From:")


def test_the_nightly_task_runs_every_retention_and_records_the_run(mail) -> None:
    with time_machine.travel(NOW, tick=False):
        counts = retention_enforce_task.delay().get()

    run = RetentionRun.objects.get()
    assert (
        counts
        == run.counts
        == {
            "email_bodies": 5,
            "captured_bodies": 0,
            "captured_attachments": 0,
            "inbound_raw": 4,
            "email_log_events": 0,
        }
    )
    assert run.finished_at == NOW and run.error == ""


def test_a_kind_that_fails_is_recorded_in_words_and_the_others_still_run(
    mail, monkeypatch, caplog
) -> None:
    def broken(**_: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(retention, "inbound_raw_remove", broken)

    with time_machine.travel(NOW, tick=False):
        run = retention_enforce(chunk=2)

    run.refresh_from_db()
    assert run.counts == {
        "email_bodies": 5,
        "captured_bodies": 0,
        "captured_attachments": 0,
        "email_log_events": 0,
    }
    assert run.error == "Inbound raw messages emptied: failed (RuntimeError: disk full)"
    assert "email_bodies=5" in caplog.text and "1 failed" in caplog.text


def test_beat_runs_it_every_night() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["retention-enforce"]
    assert entry["task"] == "dataprotection.tasks.retention_enforce"


def test_the_email_page_says_when_the_body_was_removed(client_for, rep) -> None:
    email = _email(at=OLD, sender=rep)
    url = reverse("tracking:email_detail", args=[email.pk])
    client = client_for(rep)
    assert b"under the retention policy" not in client.get(url).content

    with time_machine.travel(NOW, tick=False):
        email_bodies_remove()

    page = client.get(url).content.decode()
    assert "The body was removed on Jun 15, 2026 under the retention policy." in page
    assert "srcdoc" not in page
