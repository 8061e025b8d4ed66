"""Proof before effect: a bounce or complaint changes someone's status only when it proves it
answers our email (VERP address, X-Openrate-Token, a Message-ID of ours, or an authenticated
ESP webhook). Anyone can send mail naming an address; that alone is kept for an admin."""

import pytest

from crm.models import Contact, EmailSuppression, PrivacyChange
from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from inbound.review import ApplyRefused, inbound_message_apply
from tests.inbound.conftest import POSTMARK, arf, dsn, post_webhook

FORGED_DSN = dsn(
    to="bounces@openrate.test",
    recipient="ada@example.com",
    status="5.1.1",
    diagnostic="550 5.1.1 user unknown",
)
FORGED_ARF = arf(recipient="ada@example.com")


def _untouched(relation) -> None:
    relation.refresh_from_db()
    ada = Contact.objects.get(email="ada@example.com")
    assert relation.bounce_category == "" and relation.delivery_status != "bounced"
    assert not ada.has_opted_out_of_email and ada.email_bounced_at is None
    assert not EmailSuppression.objects.exists()
    assert not PrivacyChange.objects.exists()


def test_a_forged_dsn_suppresses_no_one_and_is_kept_unmatched_with_what_it_names(sent) -> None:
    relation, _ = sent

    message = inbound_mail_process(raw=FORGED_DSN, source="pipe")

    _untouched(relation)
    assert (message.kind, message.status, message.relation) == ("bounce", "unmatched", None)
    (named,) = message.report["recipients"]
    assert (named["address"], named["status"], named["hard"]) == ("ada@example.com", "5.1.1", True)
    assert "no proof" in message.note


def test_a_forged_arf_opts_no_one_out_and_is_kept_unmatched_with_what_it_names(sent) -> None:
    relation, _ = sent

    message = inbound_mail_process(raw=FORGED_ARF, source="imap")

    _untouched(relation)
    assert (message.kind, message.status) == ("complaint", "unmatched")
    assert message.addresses == ["ada@example.com"]
    assert message.report["feedback_type"] == "abuse"


def test_a_forged_apple_unsubscribe_opts_no_one_out(sent) -> None:
    relation, _ = sent
    raw = (
        b"From: ada@example.com\r\nTo: rita@openrate.example\r\nSubject: unsubscribe\r\n"
        b"X-Apple-Unsubscribe: true\r\n\r\nUnsubscribe me\r\n"
    )

    assert inbound_mail_process(raw=raw, source="imap").status == "unmatched"
    _untouched(relation)


def test_a_bounce_for_our_copy_cannot_bounce_another_address(sent, make_contact, rep) -> None:
    """Ada's own copy's Message-ID proves nothing about Bob, even on the same email."""
    relation, _ = sent
    bob = make_contact(first_name="Bob", email="bob@example.com")
    raw = dsn(
        to="bounces@openrate.test",
        recipient=bob.email,
        status="5.1.1",
        diagnostic="550 user unknown",
        original=f"Message-ID: <{relation.message_id}>\r\n",
    )

    message = inbound_mail_process(raw=raw, source="pipe")

    assert (message.status, message.relation) == ("unmatched", relation)
    _untouched(relation)


def test_a_dsn_quoting_our_message_id_still_bounces_and_suppresses(sent) -> None:
    relation, _ = sent
    raw = dsn(
        to="postmaster@openrate.test",
        recipient="ada@example.com",
        status="5.1.1",
        diagnostic="550 user unknown",
        original=f"Message-ID: <{relation.message_id}>\r\n",
    )

    message = inbound_mail_process(raw=raw, source="pipe")

    assert (message.status, message.relation) == ("processed", relation)
    relation.refresh_from_db()
    assert relation.bounce_category == "hard"
    assert EmailSuppression.objects.get().reason == "hard_bounce"


def test_an_arf_quoting_our_message_id_still_opts_out_and_suppresses(sent) -> None:
    relation, _ = sent

    message = inbound_mail_process(
        raw=arf(recipient="ada@example.com", original=f"Message-ID: <{relation.message_id}>\r\n"),
        source="pipe",
    )

    assert (message.status, message.relation) == ("processed", relation)
    assert Contact.objects.get(email="ada@example.com").has_opted_out_of_email
    assert EmailSuppression.objects.get().reason == "complaint"


def test_a_dsn_to_our_verp_address_still_bounces(sent) -> None:
    relation, copy = sent

    message = inbound_mail_process(
        raw=dsn(
            to=copy.from_email,
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 user unknown",
        ),
        source="pipe",
    )

    assert (message.status, message.relation) == ("processed", relation)
    assert EmailSuppression.objects.exists()


def test_an_arf_quoting_our_token_still_opts_out(sent) -> None:
    relation, copy = sent
    token = copy.extra_headers["X-Openrate-Token"]

    message = inbound_mail_process(
        raw=arf(recipient="ada@example.com", original=f"X-Openrate-Token: {token}\r\n"),
        source="pipe",
    )

    assert (message.status, message.relation) == ("processed", relation)
    assert Contact.objects.get(email="ada@example.com").has_opted_out_of_email


def test_an_authenticated_esp_complaint_naming_an_address_still_opts_out(
    sent, client, mount_esps
) -> None:
    mount_esps(ANYMAIL=POSTMARK)
    complaint = {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Email": "ada@example.com",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "BouncedAt": "2026-11-23T16:33:54Z",
    }

    response = post_webhook(client, "/anymail/postmark/tracking/", complaint)

    assert response.status_code == 200
    assert Contact.objects.get(email="ada@example.com").has_opted_out_of_email


def test_applying_a_forged_dsn_bounces_the_latest_copy_and_records_who(sent, admin_user) -> None:
    relation, _ = sent
    message = inbound_mail_process(raw=FORGED_DSN, source="pipe")

    applied = inbound_message_apply(message_id=message.pk, by=admin_user)

    assert (applied.status, applied.applied_by) == ("processed", admin_user)
    assert applied.applied_at is not None and "applied by ada" in applied.note
    relation.refresh_from_db()
    assert (relation.bounce_category, relation.bounce_status) == ("hard", "5.1.1")
    assert EmailSuppression.objects.get(address="ada@example.com").reason == "hard_bounce"


def test_applying_a_forged_arf_opts_out_and_suppresses_as_the_admin(sent, admin_user) -> None:
    message = inbound_mail_process(raw=FORGED_ARF, source="pipe")

    inbound_message_apply(message_id=message.pk, by=admin_user)

    assert Contact.objects.get(email="ada@example.com").has_opted_out_of_email
    assert PrivacyChange.objects.get().changed_by == admin_user
    assert EmailSuppression.objects.get().reason == "complaint"


def test_a_message_is_applied_once(sent, admin_user) -> None:
    message = inbound_mail_process(raw=FORGED_ARF, source="pipe")
    inbound_message_apply(message_id=message.pk, by=admin_user)

    with pytest.raises(ApplyRefused):
        inbound_message_apply(message_id=message.pk, by=admin_user)

    assert PrivacyChange.objects.count() == 1


def test_a_message_that_reports_no_bounce_or_complaint_cannot_be_applied(db, admin_user) -> None:
    message = inbound_mail_process(
        raw=b"From: x@example.org\r\nTo: sales@openrate.test\r\nSubject: Hi\r\n\r\nHello\r\n",
        source="pipe",
    )

    with pytest.raises(ApplyRefused):
        inbound_message_apply(message_id=message.pk, by=admin_user)

    message.refresh_from_db()
    assert (message.status, message.applied_at) == ("unmatched", None)


def test_a_refused_apply_leaves_the_message_in_the_queue(sent, admin_user) -> None:
    message = inbound_mail_process(raw=FORGED_DSN, source="pipe")
    InboundMessage.objects.filter(pk=message.pk).update(report={"recipients": []})

    with pytest.raises(ApplyRefused):
        inbound_message_apply(message_id=message.pk, by=admin_user)

    message.refresh_from_db()
    assert (message.status, message.applied_at, message.applied_by) == ("unmatched", None, None)


def test_a_replys_own_message_id_is_no_proof_for_a_bounce_of_the_rep(sent, rep) -> None:
    """Ada's reply is stored with the Message-ID she chose and a row for the rep: a DSN quoting
    that id, "from" the rep, must not suppress the rep's address or opt anyone out."""
    relation, _ = sent
    reply = (
        f"From: Ada <ada@example.com>\r\nTo: {rep.email}\r\nSubject: Re: Pricing\r\n"
        f"Message-ID: <chosen-by-ada@attacker.example>\r\nIn-Reply-To: <{relation.message_id}>\r\n"
        "Content-Type: text/plain\r\n\r\nSounds good.\r\n"
    ).encode()
    assert inbound_mail_process(raw=reply, source="imap").kind == "reply"
    forged = dsn(
        to="bounces@openrate.test",
        recipient=rep.email,
        status="5.1.1",
        diagnostic="550 5.1.1 user unknown",
        original="Message-ID: <chosen-by-ada@attacker.example>\r\n",
    ).replace(b"From: MAILER-DAEMON@mx.example.com", f"From: {rep.email}".encode())

    message = inbound_mail_process(raw=forged, source="pipe")

    assert (message.status, message.relation) == ("unmatched", None)
    assert not EmailSuppression.objects.filter(address=rep.email.lower()).exists()
