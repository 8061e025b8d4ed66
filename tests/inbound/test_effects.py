"""What happens when mail comes back: bounces, complaints, auto-replies, replies, and the rest."""

import io
import sys
from datetime import timedelta
from email.utils import format_datetime

from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from crm.models import (
    Contact,
    EmailMessage,
    EmailSuppression,
    PrivacyChange,
    Task,
)
from crm.sending import email_send
from crm.timeline import timeline
from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from tests.inbound.conftest import dsn


def test_a_hard_bounce_by_verp_marks_the_copy_the_email_and_the_person(sent) -> None:
    relation, copy = sent
    raw = dsn(
        to=copy.from_email,
        recipient="ada@example.com",
        status="5.1.1",
        diagnostic="550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown",
    )

    message = inbound_mail_process(raw=raw, source="pipe")

    assert (message.kind, message.status, message.relation) == ("bounce", "processed", relation)
    relation.refresh_from_db()
    assert (relation.bounce_category, relation.bounce_status, relation.delivery_status) == (
        "hard",
        "5.1.1",
        "bounced",
    )
    assert relation.email.is_bounced
    ada = Contact.objects.get(email="ada@example.com")
    assert ada.email_bounced_at is not None and "5.1.1" in ada.email_bounced_reason
    assert EmailSuppression.objects.get().reason == "hard_bounce"
    assert next(text for text, _ in timeline(ada).entries[0].badges) == "Bounced (hard)"


def test_a_vague_bounce_is_matched_by_the_token_in_the_quoted_headers(sent, settings) -> None:
    relation, copy = sent
    raw = dsn(
        to="postmaster@openrate.test",
        recipient="ada@example.com",
        status="5.1.1",
        diagnostic="550 user unknown",
        original=f"X-Openrate-Token: {copy.extra_headers['X-Openrate-Token']}\r\n",
    )

    assert inbound_mail_process(raw=raw, source="pipe").relation == relation


def test_soft_bounces_suppress_only_when_setups_limit_is_reached(
    sent, make_contact, rep, django_capture_on_commit_callbacks
) -> None:
    for attempt in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            email_send(
                sender=rep, to=["full@example.com"], subject=f"Try {attempt}", html_body="<p>x</p>"
            )
        copy = mail.outbox[-1]
        inbound_mail_process(
            raw=dsn(
                to=copy.from_email,
                recipient="full@example.com",
                status="4.2.2",
                diagnostic=f"452 4.2.2 Mailbox full (try {attempt})",
            ),
            source="pipe",
        )
        assert EmailSuppression.objects.exists() == (attempt == 2)
    assert "3 soft bounces in 30 days" in EmailSuppression.objects.get().detail


def test_list_email_skips_a_suppressed_address_and_a_single_email_lifts_it(
    sent, rep, django_capture_on_commit_callbacks
) -> None:
    _relation, copy = sent
    inbound_mail_process(
        raw=dsn(
            to=copy.from_email,
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 user unknown",
        ),
        source="pipe",
    )
    ada = Contact.objects.get(email="ada@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        listed = email_send(
            sender=rep, to=[ada], subject="News", html_body="<p>x</p>", source="list"
        )
    assert (
        listed.relations.get(address="ada@example.com").refusal_reason == "Suppressed: Hard bounce"
    )

    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[ada], subject="Fixed?", html_body="<p>x</p>")
    ada.refresh_from_db()
    assert ada.email_bounced_at is None and not EmailSuppression.objects.exists()


def test_a_complaint_opts_the_person_out_and_shows_on_the_timeline(sent) -> None:
    relation, _copy = sent
    raw = (
        "From: feedback@mail.example.net\r\nTo: abuse@openrate.test\r\nSubject: complaint\r\n"
        "MIME-Version: 1.0\r\nMessage-ID: <arf-1@mail.example.net>\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
        "Original-Rcpt-To: ada@example.com\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{relation.message_id}>\r\nTo: ada@example.com\r\nSubject: Pricing\r\n--b--\r\n"
    ).encode()

    message = inbound_mail_process(raw=raw, source="pipe")

    assert (message.kind, message.relation) == ("complaint", relation)
    ada = Contact.objects.get(email="ada@example.com")
    assert ada.has_opted_out_of_email
    change = PrivacyChange.objects.get()
    assert (change.label, change.source) == ("Email Opt Out", "spam complaint (abuse)")
    assert change in [e.obj for e in timeline(ada).entries]
    assert EmailSuppression.objects.get().reason == "complaint"


def _answer(relation, *, body: str, extra: str = "") -> bytes:
    date = format_datetime(timezone.now() + timedelta(minutes=1))
    return (
        f"From: Ada Lovelace <ada@example.com>\r\nTo: rita@openrate.example\r\nSubject: Re: Pricing\r\n"
        f"Message-ID: <answer-{abs(hash(body))}@example.com>\r\nIn-Reply-To: <{relation.message_id}>\r\n"
        f"Date: {date}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def test_a_reply_is_threaded_marks_the_copy_replied_and_tells_the_sender(sent, rep) -> None:
    relation, _ = sent

    message = inbound_mail_process(
        raw=_answer(relation, body="Sounds good, call me."), source="imap"
    )

    reply = message.created_email
    assert (reply.incoming, reply.is_auto_reply, reply.reply_to_message) == (
        True,
        False,
        relation.email,
    )
    assert reply.thread_identifier == relation.email.thread_identifier
    assert "call me" in reply.text_body
    relation.refresh_from_db()
    assert relation.replied_at is not None
    task = Task.objects.get()
    assert (task.owner, task.who_contact) == (rep, relation.contact)
    assert task.subject == "Ada Lovelace replied: Re: Pricing"
    entries = timeline(relation.contact).entries
    assert entries[0].obj == reply and ("Received", "info") in entries[0].badges
    assert ("Replied", "success") in entries[1].badges


def test_an_auto_reply_is_recorded_as_such_and_never_counts_as_a_reply(sent) -> None:
    relation, _ = sent

    message = inbound_mail_process(
        raw=_answer(
            relation,
            body="I am out of the office until Monday.",
            extra="Auto-Submitted: auto-replied\r\n",
        ),
        source="imap",
    )

    assert message.kind == "auto_reply"
    assert message.created_email.is_auto_reply
    assert timeline(relation.contact).entries[0].badges == [("Auto-reply", "secondary")]
    relation.refresh_from_db()
    assert relation.replied_at is None
    assert not Task.objects.exists()


def test_a_message_that_matches_nothing_is_kept_and_reported(db) -> None:
    raw = b"From: someone@example.org\r\nTo: sales@openrate.test\r\nSubject: Hello\r\n\r\nA new enquiry.\r\n"

    message = inbound_mail_process(raw=raw, source="pipe")

    assert (message.status, message.kind) == ("unmatched", "other")
    assert bytes(message.raw) == raw
    assert message.note


def test_the_same_message_twice_is_processed_once(sent) -> None:
    relation, _ = sent
    raw = _answer(relation, body="Yes please.")

    first = inbound_mail_process(raw=raw, source="imap")
    second = inbound_mail_process(raw=raw, source="imap")

    assert first.pk == second.pk
    assert EmailMessage.objects.filter(incoming=True).count() == 1
    assert Task.objects.count() == 1


def test_ingest_mail_reads_one_message_from_standard_input(sent, monkeypatch) -> None:
    _relation, copy = sent
    raw = dsn(
        to=copy.from_email,
        recipient="ada@example.com",
        status="5.1.1",
        diagnostic="550 no such user",
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()

    call_command("ingest_mail", stdout=out)

    assert out.getvalue().startswith("bounce processed: hard bounce ada@example.com")
    assert InboundMessage.objects.get().source == "pipe"


def test_the_composer_warns_about_a_bounced_address(sent, client_for, rep) -> None:
    relation, copy = sent
    inbound_mail_process(
        raw=dsn(
            to=copy.from_email,
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 user unknown",
        ),
        source="pipe",
    )

    page = client_for(rep).get(f"/contacts/{relation.contact_id}/email/")

    assert b"ada@example.com bounced</strong>" in page.content


def test_changing_the_address_clears_the_bounce_alert(sent, client_for, rep) -> None:
    relation, copy = sent
    inbound_mail_process(
        raw=dsn(
            to=copy.from_email,
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 user unknown",
        ),
        source="pipe",
    )

    client_for(rep).post(
        f"/contacts/{relation.contact_id}/edit/",
        {"last_name": "Lovelace", "email": "ada@new.example"},
    )

    ada = Contact.objects.get(pk=relation.contact_id)
    assert ada.email == "ada@new.example" and ada.email_bounced_at is None
