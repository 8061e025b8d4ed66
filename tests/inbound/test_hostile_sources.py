"""Every inbound source fed the same hostile messages: the MTA pipe, the IMAP mailbox (a real
Dovecot, and the handler it calls for each fetched message) and each configured ESP webhook.
Each message is stored (Processed or Unmatched) or refused with a clear error: never lost,
never a 500 or a traceback. PostgreSQL refuses NUL and lone surrogates in text, so on it these
tests also check that text from outside is made storable before anything is written."""

import io
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import DataError

from crm.models import EmailMessage
from inbound.models import InboundMessage
from inbound.processing import MAX_RAW
from inbound.sources.imap import Handled
from inbound.storable import storable
from inbound.tasks import handle_fetched, poll_inbound_mailbox
from tests.inbound.conftest import POSTMARK, dsn, post_webhook
from tests.inbound.imap_server import (  # noqa: F401 (fixtures)
    dovecot_server_fixture,
    imap_mailbox_fixture,
)

STRANGER = b"From: someone@example.org\r\nTo: sales@openrate.test\r\n"
FIVE_MB = 5 * 1024 * 1024


def _messages(our_message_id: str) -> dict[str, bytes]:
    """The hostile set; the "proven" ones quote our Message-ID, so their effects run too."""
    quoted = f"Message-ID: <{our_message_id}>\r\n"
    reply = (
        f"From: Ada <ada@example.com>\r\nTo: rita@openrate.example\r\nIn-Reply-To: <{our_message_id}>\r\n"
        "Message-ID: <reply-SUFFIX@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
    ).encode()
    return {
        "nul in subject": STRANGER + b"Subject: Hi\x00there\r\n\r\nHello\r\n",
        "nul in body": STRANGER
        + b"Subject: Hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHel\x00lo\r\n",
        "nul in diagnostic": dsn(
            to="bounces@openrate.test",
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 no\x00such user",
        ),
        "invalid utf-8 and lone surrogates": (
            b"From: \xff\xfe <x\xc3@example.org>\r\nTo: sales@openrate.test\r\n"
            b"Subject: \xed\xa0\x80 caf\xe9 =?utf-8?b?gA==?=\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xff\xfe\xfd body\r\n"
        ),
        "empty": b"",
        "huge header": STRANGER + b"Subject: " + b"A" * 1_000_000 + b"\r\n\r\nbody\r\n",
        "no headers": b"\r\nJust a body, and not one header above it.\r\n",
        "truncated multipart": (
            b"From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@openrate.test\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ada@exa"
        ),
        "dsn with a garbage status": dsn(
            to="bounces@openrate.test",
            recipient="ada@example.com",
            status="9.999.9999.x\x7f",
            diagnostic="\x01\x02 ???",
        ),
        "binary junk": bytes(range(256)) * 64,
        "5 MB body": STRANGER
        + b"Subject: big\r\n\r\n"
        + (b"x" * 998 + b"\r\n") * (FIVE_MB // 1000),
        "proven reply with nul, invalid utf-8 and huge fields": reply.replace(b"SUFFIX", b"1")
        + b"From: "
        + b"a" * 300
        + b"@example.com\r\n"
        + b"Subject: Re: Pri\x00cing \xff "
        + b"B" * 5000
        + b"\r\n\r\nYes\x00 \xff\xfe please\r\n",
        "proven bounce with nul and invalid utf-8 in its diagnostic": dsn(
            to="bounces@openrate.test",
            recipient="ada@example.com",
            status="5.1.1",
            diagnostic="550 5.1.1 no NUL such user",
            original=quoted,
        ).replace(b"NUL", b"\x00\xff\xfe"),
    }


NAMES = list(_messages("x@openrate.test"))


@pytest.fixture
def hostile(sent) -> dict[str, bytes]:
    relation, _ = sent
    return _messages(relation.message_id)


def _assert_kept(raw_kept: bytes, name: str) -> InboundMessage:
    message = InboundMessage.objects.get()
    assert message.status in ("processed", "unmatched")
    assert bytes(message.raw) == raw_kept[:MAX_RAW]
    if name.startswith("proven"):
        assert message.status == "processed", message.note
    return message


def test_what_postgresql_refuses_in_text_is_made_storable_in_one_pass() -> None:
    assert storable(("a\x00b", ["\udcff"], {"k\x00": "v"}, 7, b"\x00")) == (
        "a\ufffdb",
        ["\ufffd"],
        {"k\ufffd": "v"},
        7,
        b"\x00",
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_pipe_stores_or_refuses_each_hostile_message(name, hostile, monkeypatch) -> None:
    raw = hostile[name]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()

    if name == "empty":
        with pytest.raises(CommandError, match="No message on standard input"):
            call_command("ingest_mail", stdout=out)
        assert not InboundMessage.objects.exists()
        return
    call_command("ingest_mail", stdout=out)

    message = _assert_kept(raw, name)
    assert out.getvalue().startswith(f"{message.kind} {message.status}")


@pytest.mark.parametrize("name", NAMES)
def test_the_imap_handler_stores_each_hostile_message(name, hostile) -> None:
    assert handle_fetched(hostile[name]) is Handled.KEPT

    _assert_kept(hostile[name], name)


def test_a_proven_hostile_reply_is_stored_with_its_text_made_storable(hostile) -> None:
    handle_fetched(hostile["proven reply with nul, invalid utf-8 and huge fields"])

    reply = EmailMessage.objects.get(incoming=True)
    assert "\x00" not in reply.subject + reply.text_body
    assert reply.subject.startswith("Re: Pri\ufffdcing") and len(reply.subject) <= 998
    assert reply.from_address == "ada@example.com"  # too long to be an address: the copy's


def test_a_message_whose_effects_the_database_refuses_is_kept_for_a_person(
    hostile, monkeypatch
) -> None:
    def refused(**kwargs: object) -> bool:
        raise DataError("value too long for type character varying(16)")

    monkeypatch.setattr("inbound.processing.bounce_record", refused)

    handle_fetched(hostile["proven bounce with nul and invalid utf-8 in its diagnostic"])

    message = InboundMessage.objects.get()
    assert message.status == "unmatched" and "database refused" in message.note


@pytest.mark.services
def test_the_imap_mailbox_stores_every_hostile_message_the_server_accepts(
    hostile, imap_mailbox, settings
) -> None:
    settings.INBOUND_IMAP_URL = imap_mailbox.url
    accepted = []
    for name, raw in hostile.items():
        try:
            imap_mailbox.append(raw)
        except AssertionError:  # the server refused it: it can never reach Openrate this way
            continue
        accepted.append(name)
    assert set(hostile) - set(accepted) == {"empty"}  # Dovecot saves no zero-byte message

    assert poll_inbound_mailbox() == len(accepted)

    served = {message.raw for message in imap_mailbox.messages()}
    assert {bytes(m.raw) for m in InboundMessage.objects.all()} == {r[:MAX_RAW] for r in served}
    assert InboundMessage.objects.count() == len(accepted)
    assert all("\\Seen" in message.flags for message in imap_mailbox.messages())


def _postmark_bounce(**fields) -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"openrate_token": "not-a-token"},
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 no such user",
        "Email": "ada@example.com",
        "BouncedAt": "2026-11-23T16:33:54Z",
        **fields,
    }


TRACKING_PAYLOADS: dict[str, dict | list | bytes] = {
    "nul in every field": _postmark_bounce(
        Email="ada\x00@example.com", Details="550\x00 no", Description="\x00", MessageID="\x00"
    ),
    "lone surrogates": b'{"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, '
    b'"Email": "\\udcff@example.com", "Details": "\\ud800 550", "Metadata": {}}',
    "empty body": b"",
    "binary junk": bytes(range(256)) * 16,
    "not json": b"RecordType=Bounce&Email=ada@example.com",
    "a json list": [1, 2, 3],
    "an unknown record type": {"RecordType": "Nonsense", "ID": 8},
    "metadata that is no dict": _postmark_bounce(ID=9, Metadata="openrate_token"),
    "a garbage date": _postmark_bounce(ID=10, BouncedAt="2026-13-45T99:99:99Z"),
    "a huge diagnostic": _postmark_bounce(ID=11, Details="5" * 1_000_000),
    "our token with nul in the diagnostic": _postmark_bounce(ID=12, Details="550 no\x00 user"),
    "5 MB body": _postmark_bounce(ID=13, Details="x" * FIVE_MB),
}


@pytest.mark.parametrize("name", list(TRACKING_PAYLOADS))
def test_the_esp_tracking_webhook_stores_or_refuses_each_hostile_payload(
    name, sent, client, mount_esps
) -> None:
    _relation, copy = sent
    mount_esps(ANYMAIL=POSTMARK)
    payload = TRACKING_PAYLOADS[name]
    if name.startswith("our token"):
        payload = {**payload, "Metadata": copy.metadata}  # type: ignore[dict-item]

    response = post_webhook(client, "/anymail/postmark/tracking/", payload)

    if response.status_code == 400:  # refused, saying why (a body over Django's upload limit)
        assert name == "5 MB body"
        assert not InboundMessage.objects.exists()
        return
    assert response.status_code == 200
    assert InboundMessage.objects.get().status in ("processed", "unmatched")


@pytest.mark.parametrize("name", NAMES)
def test_the_esp_inbound_webhook_stores_or_refuses_each_hostile_message(
    name, hostile, client, mount_esps
) -> None:
    mount_esps(ANYMAIL=POSTMARK)
    # Postmark's inbound JSON; bytes that are no UTF-8 arrive as lone surrogates ("\\udcff").
    payload = {
        "MessageID": f"inbound-{name}",
        "RawEmail": hostile[name].decode(errors="surrogateescape"),
    }

    response = post_webhook(client, "/anymail/postmark/inbound/", payload)

    if response.status_code == 400:
        assert name == "5 MB body"
        assert not InboundMessage.objects.exists()
        return
    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert (message.source, message.status in ("processed", "unmatched")) == ("webhook", True)
