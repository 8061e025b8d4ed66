"""Mail that comes back about a forgotten person is not applied and not kept (inbound.processing)."""

import re
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from crm.models import EmailMessage, EmailSuppression, Task
from dataprotection.forget import person_forget
from dataprotection.people import person_from
from inbound.esp import esp_payload_keep
from inbound.models import InboundMessage
from inbound.processing import FORGOTTEN_NOTE, inbound_mail_process
from inbound.review import ApplyRefused, inbound_message_apply
from inbound.tasks import poll_inbound_mailbox
from privacy.forgotten import forgotten_remember
from tests.inbound.conftest import arf, dsn
from tests.inbound.imap_server import (  # noqa: F401 (fixtures)
    dovecot_server_fixture,
    imap_mailbox_fixture,
)


def _forget(relation) -> None:
    person_forget(person=person_from("contact", relation.contact_id))


def _reply(relation, *, sender: str = "ada@example.com") -> bytes:
    date = format_datetime(timezone.now() + timedelta(minutes=1))
    return (
        f"From: Ada Lovelace <{sender}>\r\nTo: rita@openrate.example\r\nSubject: Re: Pricing\r\n"
        f"Message-ID: <answer-1@example.com>\r\nIn-Reply-To: <{relation.message_id}>\r\n"
        f"Date: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Call me on 555 0100, Ada\r\n"
    ).encode()


def _kept_nothing(message: InboundMessage) -> None:
    assert (message.status, message.note) == ("processed", FORGOTTEN_NOTE)
    assert (message.from_address, message.subject, message.message_id) == ("", "", "")
    assert bytes(message.raw) == b"" and message.report == {}
    assert message.relation is None and message.created_email is None


def test_a_forgotten_persons_reply_is_not_put_back_on_their_record(sent) -> None:
    relation, _ = sent
    raw = _reply(relation)
    _forget(relation)

    message = inbound_mail_process(raw=raw, source="imap")

    _kept_nothing(message)
    assert not EmailMessage.objects.filter(incoming=True).exists()
    assert not Task.objects.exists()
    relation.refresh_from_db()
    assert relation.replied_at is None
    # The same message again is the same arrival, processed once.
    assert inbound_mail_process(raw=raw, source="imap") == message
    assert InboundMessage.objects.count() == 1


def test_a_reply_from_a_forgotten_address_that_proves_nothing_is_not_kept_either(sent) -> None:
    """Without the thread's ids it would wait, raw, for an admin: not a forgotten person's."""
    relation, _ = sent
    _forget(relation)
    raw = _reply(relation, sender="ADA@example.com").replace(b"In-Reply-To", b"X-Was")

    _kept_nothing(inbound_mail_process(raw=raw, source="imap"))


def test_a_bounce_of_a_forgotten_persons_copy_suppresses_nothing(sent) -> None:
    relation, copy = sent
    _forget(relation)

    message = inbound_mail_process(
        raw=dsn(
            to=copy.from_email,
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown",
        ),
        source="pipe",
    )

    _kept_nothing(message)
    assert not EmailSuppression.objects.exists()
    relation.refresh_from_db()
    assert relation.delivery_status != "bounced"


def test_another_persons_reply_is_recorded_as_ever(sent, make_contact, rep) -> None:
    relation, _ = sent
    person_forget(person=person_from("contact", make_contact(email="bob@example.org").pk))

    message = inbound_mail_process(raw=_reply(relation), source="imap")

    assert message.created_email is not None and message.relation == relation


def test_a_bounce_and_a_complaint_without_proof_naming_a_forgotten_address_are_not_kept(
    sent,
) -> None:
    """With no proof they would wait, whole, for an admin to apply them."""
    relation, _ = sent
    _forget(relation)
    bounce = dsn(
        to="postmaster@openrate.test",
        recipient="Ada@Example.com",
        status="5.1.1",
        diagnostic="550 5.1.1 user unknown",
    )

    for raw in (bounce, arf(recipient="ada@example.com")):
        _kept_nothing(inbound_mail_process(raw=raw, source="pipe"))

    assert not EmailSuppression.objects.exists()


@pytest.mark.usefixtures("sent")
def test_a_report_kept_before_the_forget_is_not_applied_after_it(admin_user) -> None:
    """Kept Unmatched, then its address forgotten (the forget finds such reports by the address
    in them; one it missed): applying it would write the address back."""
    message = inbound_mail_process(raw=arf(recipient="ada@example.com"), source="pipe")
    assert message.status == "unmatched"
    InboundMessage.objects.filter(pk=message.pk).update(raw=b"")  # as if the search missed it
    forgotten_remember(["ada@example.com"])

    with pytest.raises(ApplyRefused, match="forgotten person"):
        inbound_message_apply(message_id=message.pk, by=admin_user)

    message.refresh_from_db()
    assert (message.status, message.applied_at) == ("unmatched", None)
    assert not EmailSuppression.objects.exists()


def test_a_message_with_no_sender_is_not_taken_for_a_forgotten_copy(sent) -> None:
    """The forget blanks the copy's address: a blank From must not name it."""
    relation, _ = sent
    _forget(relation)
    raw = (
        "To: rita@openrate.example\r\nSubject: Re: Pricing\r\nMessage-ID: <anon-1@example.com>\r\n"
        f"In-Reply-To: <{relation.email.message_identifier}>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nWho is this?\r\n"
    ).encode()

    message = inbound_mail_process(raw=raw, source="imap")

    assert (message.status, message.relation) == ("unmatched", None)


@pytest.mark.services
def test_a_forgotten_persons_reply_is_deleted_from_the_inbound_mailbox(
    sent, imap_mailbox, settings
) -> None:
    relation, _ = sent
    settings.INBOUND_IMAP_URL = imap_mailbox.url
    imap_mailbox.append(_reply(relation))
    _forget(relation)

    assert poll_inbound_mailbox() == 1

    assert imap_mailbox.messages("INBOX") == []
    _kept_nothing(InboundMessage.objects.get())


@pytest.mark.usefixtures("sent")
def test_a_webhook_payload_no_one_could_read_that_names_a_forgotten_address_is_not_kept() -> None:
    """Kept raw for an admin, it would hold the address (and whatever the ESP said of them)."""
    forgotten_remember(["ada@example.com"])
    about_ada = b'{"event": "bounce?", "recipient": "Ada@Example.com", "reason": "mailbox full'
    about_bob = about_ada.replace(b"Ada@Example.com", b"bob@example.org")

    _kept_nothing(esp_payload_keep(esp_name="postmark", body=about_ada, error="truncated JSON"))
    kept = esp_payload_keep(esp_name="postmark", body=about_bob, error="truncated JSON")

    assert kept.status == "unmatched" and bytes(kept.raw) == about_bob


@pytest.mark.usefixtures("sent")
@pytest.mark.parametrize(
    "mention",
    [
        b"Please stop writing to 'Ada@example.com', she has left.",
        b"Unsubscribe her: https://lists.example.net/u?list=7&email=ada@example.com&x=1",
        b'{"recipient":"ADA@EXAMPLE.COM"}',
    ],
)
def test_a_message_without_proof_about_a_forgotten_person_is_not_kept(mention: bytes) -> None:
    """Someone else writing about them, with no thread ids: it would wait, whole, for an admin
    (the forget deletes such messages kept before it, found by the address in them)."""
    forgotten_remember(["ada@example.com"])
    raw = (
        b"From: Bob <bob@example.org>\r\nTo: rita@openrate.example\r\nSubject: Ada\r\n"
        b"Message-ID: <about-ada@example.org>\r\nContent-Type: text/plain\r\n\r\n"
        + mention
        + b"\r\n"
    )

    _kept_nothing(inbound_mail_process(raw=raw, source="imap"))
    about_eve = re.sub(rb"(?i)da@", b"eve@", raw)
    kept = inbound_mail_process(raw=about_eve, source="imap")
    assert kept.status == "unmatched" and b"eve@example.com" in bytes(kept.raw).lower()


@pytest.mark.usefixtures("sent")
@pytest.mark.parametrize(
    "other",
    [b"mada@example.com", b"ada.b@example.com", b"ada@example.com.au", b"x+ada@example.com"],
)
def test_a_message_about_another_address_that_contains_a_forgotten_one_is_kept(other) -> None:
    """Checked on every arrival, the test keeps to whole addresses: mada@ is not ada@."""
    forgotten_remember(["ada@example.com"])
    raw = (
        b"From: Bob <bob@example.org>\r\nTo: rita@openrate.example\r\nSubject: Hi\r\n"
        b"Message-ID: <other@example.org>\r\nContent-Type: text/plain\r\n\r\n"
        b"Please write to " + other + b" from now on.\r\n"
    )

    kept = inbound_mail_process(raw=raw, source="imap")

    assert kept.status == "unmatched" and other in bytes(kept.raw)
