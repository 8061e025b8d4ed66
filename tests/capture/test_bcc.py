"""The Bcc address: mail to it arrives by inbound's routes and is captured as the user's own
outgoing email; from anyone else, or with a wrong secret, it is refused and kept Unmatched."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage as Message

import pytest

from capture.addresses import capture_address, user_id_of
from crm.models import EmailMessage, EmailMessageRelation
from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from tests.capture.conftest import mail

pytestmark = pytest.mark.django_db


def _bcc(raw: bytes, address: str) -> bytes:
    # What the MTA adds for the envelope recipient of a Bcc copy.
    return f"Delivered-To: {address}\r\n".encode() + raw


def test_mail_bccd_to_the_users_address_is_captured_as_their_outgoing_email(rep, make_contact):
    ada = make_contact(email="ada@example.com")
    raw, message_id = mail(
        sender="Rita <rita@openrate.example>", to=["Ada <ada@example.com>"], subject="Agenda"
    )

    stored = inbound_mail_process(raw=_bcc(raw, capture_address(rep.pk)), source="pipe")

    assert stored.status == InboundMessage.Status.PROCESSED
    assert stored.note == "captured for rita (Bcc)"
    email = EmailMessage.objects.get(message_identifier=message_id)
    assert (email.source, email.incoming, email.sender, email.captured_for) == (
        "captured",
        False,
        rep,
        rep,
    )
    assert email.relations.get(contact=ada).relation_type == "to"


def test_the_same_message_bccd_twice_is_captured_once(rep, make_contact):
    make_contact(email="ada@example.com")
    raw, message_id = mail(sender="rita@openrate.example", to=["ada@example.com"], subject="A")
    address = capture_address(rep.pk)

    inbound_mail_process(raw=_bcc(raw, address), source="pipe")
    inbound_mail_process(raw=_bcc(raw, address) + b"\r\n", source="imap")

    assert EmailMessage.objects.filter(message_identifier=message_id).count() == 1


def test_mail_to_the_address_from_someone_else_is_refused_and_kept_unmatched(
    rep, other_rep, make_contact
):
    ada = make_contact(email="ada@example.com")
    raw, message_id = mail(sender="otto@openrate.example", to=["ada@example.com"], subject="X")

    stored = inbound_mail_process(raw=_bcc(raw, capture_address(rep.pk)), source="pipe")

    assert stored.status == InboundMessage.Status.UNMATCHED
    assert "otto@openrate.example is not one of their addresses: refused" in stored.note
    assert not EmailMessage.objects.filter(message_identifier=message_id).exists()
    assert not EmailMessageRelation.objects.filter(contact=ada).exists()


def test_an_address_with_a_wrong_secret_names_no_user(rep, make_contact):
    make_contact(email="ada@example.com")
    local, domain = capture_address(rep.pk).split("@")
    forged = f"{local[:-1]}{'1' if local[-1] == '0' else '0'}@{domain}"
    assert user_id_of(forged) is None
    raw, message_id = mail(sender="rita@openrate.example", to=["ada@example.com"], subject="Y")

    stored = inbound_mail_process(raw=_bcc(raw, forged), source="pipe")

    assert stored.status == InboundMessage.Status.UNMATCHED and "names no user" in stored.note
    assert not EmailMessage.objects.filter(message_identifier=message_id).exists()


def test_the_address_names_its_user_only(rep, other_rep):
    assert user_id_of(capture_address(rep.pk)) == rep.pk
    assert capture_address(rep.pk) != capture_address(other_rep.pk)
    assert user_id_of("bounces+abc@in.openrate.example") is None


def test_a_customers_email_forwarded_as_an_attachment_is_captured_as_received(rep, make_contact):
    ada = make_contact(email="ada@example.com")
    original, original_id = mail(
        sender="Ada <ada@example.com>", to=["rita@openrate.example"], subject="Contract"
    )
    forward = Message()
    forward["From"] = "rita@openrate.example"
    forward["To"] = capture_address(rep.pk)
    forward["Subject"] = "Fwd: Contract"
    forward["Message-ID"] = "<fwd1@mail.example>"
    forward.set_content("FYI")
    forward.add_attachment(message_from_bytes(original, policy=email_policy.default))

    stored = inbound_mail_process(raw=forward.as_bytes(), source="pipe")

    assert stored.status == InboundMessage.Status.PROCESSED
    email = EmailMessage.objects.get(message_identifier=original_id)
    assert (email.incoming, email.subject, email.captured_for) == (True, "Contract", rep)
    assert email.relations.get(relation_type="from").contact == ada
    assert not EmailMessage.objects.filter(message_identifier="fwd1@mail.example").exists()
