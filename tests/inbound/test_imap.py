import imaplib
import logging
import ssl

import pytest

from inbound.sources.imap import Handled, ImapTarget, PollResult, parse_imap_url, poll_mailbox
from tests.inbound.imap_server import (  # noqa: F401 (fixtures)
    ImapMailbox,
    dovecot,
    dovecot_server_fixture,
    imap_mailbox_fixture,
)

# The default failed folder, "Openrate/Failed", under Dovecot's maildir hierarchy delimiter.
FAILED = "Openrate.Failed"


def raw_message(subject: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: bounces@openrate.example\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject}@mx.example.net>\r\n"
        "\r\n"
        f"About {subject}.\r\n"
    ).encode()


@pytest.mark.services
def test_a_handled_message_is_marked_seen_and_not_fetched_again(imap_mailbox: ImapMailbox) -> None:
    uid = imap_mailbox.append(raw_message("bounce"))
    handled: list[bytes] = []

    def handle(raw: bytes) -> bool:
        handled.append(raw)
        return True

    assert poll_mailbox(imap_mailbox.url, handle) == PollResult(processed=1, failed=0)
    assert poll_mailbox(imap_mailbox.url, handle) == PollResult(processed=0, failed=0)
    assert handled == [raw_message("bounce")]
    assert "\\Seen" in imap_mailbox.flags(uid)


@pytest.mark.services
def test_a_declined_message_is_moved_to_the_failed_folder(imap_mailbox: ImapMailbox) -> None:
    imap_mailbox.append(raw_message("puzzling"))

    result = poll_mailbox(imap_mailbox.url, lambda raw: False)

    assert result == PollResult(processed=0, failed=1)
    assert imap_mailbox.messages("INBOX") == []
    (kept,) = imap_mailbox.messages(FAILED)
    assert kept.raw == raw_message("puzzling")
    assert not kept.flags & {"\\Seen", "\\Deleted"}


@pytest.mark.services
def test_a_message_not_to_be_kept_is_deleted_and_the_rest_kept(imap_mailbox: ImapMailbox) -> None:
    imap_mailbox.append(raw_message("forgotten"))
    kept = imap_mailbox.append(raw_message("kept"))

    result = poll_mailbox(
        imap_mailbox.url,
        lambda raw: Handled.ERASED if b"forgotten" in raw else Handled.KEPT,
    )

    assert result == PollResult(processed=1, failed=0, erased=1)
    assert [(m.uid, m.raw) for m in imap_mailbox.messages("INBOX")] == [(kept, raw_message("kept"))]
    assert "\\Seen" in imap_mailbox.flags(kept)  # nothing moved: no failed folder made


@pytest.mark.services
def test_a_handler_that_raises_is_logged_and_the_next_message_is_still_handled(
    imap_mailbox: ImapMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    imap_mailbox.append(raw_message("broken"))
    fine = imap_mailbox.append(raw_message("fine"))

    def handle(raw: bytes) -> bool:
        if b"broken" in raw:
            raise RuntimeError("cannot parse this one")
        return True

    with caplog.at_level(logging.WARNING, logger="inbound.sources.imap"):
        result = poll_mailbox(imap_mailbox.url, handle)

    assert result == PollResult(processed=1, failed=1)
    assert [m.raw for m in imap_mailbox.messages(FAILED)] == [raw_message("broken")]
    (left,) = imap_mailbox.messages("INBOX")
    assert (left.uid, "\\Seen" in left.flags) == (fine, True)
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert logged.exc_info is not None
    assert "cannot parse this one" in str(logged.exc_info[1])


@pytest.mark.services
def test_already_seen_messages_are_left_alone(imap_mailbox: ImapMailbox) -> None:
    uid = imap_mailbox.append(raw_message("read by a person"), seen=True)
    handled: list[bytes] = []

    def handle(raw: bytes) -> bool:
        handled.append(raw)
        return False

    assert poll_mailbox(imap_mailbox.url, handle) == PollResult(processed=0, failed=0)
    assert handled == []
    assert [m.uid for m in imap_mailbox.messages("INBOX")] == [uid]
    assert FAILED not in imap_mailbox.folders()


@pytest.mark.services
def test_fetching_does_not_mark_a_message_seen_before_the_handler_returns(
    imap_mailbox: ImapMailbox,
) -> None:
    uid = imap_mailbox.append(raw_message("bounce"))
    flags_while_handling: list[frozenset[str]] = []

    def handle(raw: bytes) -> bool:
        flags_while_handling.append(imap_mailbox.flags(uid))  # from a second connection
        return True

    poll_mailbox(imap_mailbox.url, handle)

    assert len(flags_while_handling) == 1
    assert "\\Seen" not in flags_while_handling[0]
    assert "\\Seen" in imap_mailbox.flags(uid)


@pytest.mark.services
def test_it_handles_at_most_limit_messages_oldest_first(imap_mailbox: ImapMailbox) -> None:
    for n in range(3):
        imap_mailbox.append(raw_message(f"bounce-{n}"))
    handled: list[bytes] = []

    def handle(raw: bytes) -> bool:
        handled.append(raw)
        return True

    assert poll_mailbox(imap_mailbox.url, handle, limit=2) == PollResult(processed=2, failed=0)
    assert handled == [raw_message("bounce-0"), raw_message("bounce-1")]
    assert poll_mailbox(imap_mailbox.url, handle, limit=2) == PollResult(processed=1, failed=0)
    assert handled[2:] == [raw_message("bounce-2")]


@pytest.mark.services
def test_an_existing_failed_folder_is_reused(imap_mailbox: ImapMailbox) -> None:
    imap_mailbox.append(raw_message("first"))
    poll_mailbox(imap_mailbox.url, lambda raw: False)
    imap_mailbox.append(raw_message("second"))

    assert poll_mailbox(imap_mailbox.url, lambda raw: False) == PollResult(processed=0, failed=1)
    assert [m.raw for m in imap_mailbox.messages(FAILED)] == [
        raw_message("first"),
        raw_message("second"),
    ]
    assert imap_mailbox.folders().count(FAILED) == 1


@pytest.mark.services
@pytest.mark.parametrize(
    "capability",
    [
        pytest.param("IMAP4rev1 LITERAL+ UIDPLUS", id="copy-and-uid-expunge"),
        pytest.param("IMAP4rev1 LITERAL+", id="copy-and-expunge"),
    ],
)
def test_a_declined_message_is_moved_by_copying_on_a_server_without_move(capability: str) -> None:
    with dovecot(capability=capability) as running:
        server = running.mailbox()
        conn = server.connect()
        advertised = conn.capability()[1][0].decode().split()
        conn.logout()
        assert "MOVE" not in advertised
        server.append(raw_message("puzzling"))
        fine = server.append(raw_message("fine"))

        result = poll_mailbox(server.url, lambda raw: b"fine" in raw)

        assert result == PollResult(processed=1, failed=1)
        assert [m.raw for m in server.messages(FAILED)] == [raw_message("puzzling")]
        assert [m.uid for m in server.messages("INBOX")] == [fine]


@pytest.mark.services
def test_imaps_trusts_only_what_its_ssl_context_trusts() -> None:
    with dovecot(tls=True) as running:
        server = running.mailbox()
        server.append(raw_message("bounce"))

        with pytest.raises(ssl.SSLCertVerificationError):
            poll_mailbox(server.url, lambda raw: True)  # the system's CAs: self-signed fails
        result = poll_mailbox(server.url, lambda raw: True, ssl_context=server.ssl_context())

        assert result == PollResult(processed=1, failed=0)


@pytest.mark.services
def test_a_wrong_password_is_an_error(imap_mailbox: ImapMailbox) -> None:
    url = imap_mailbox.url.replace("@127.0.0.1", "x@127.0.0.1")

    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        poll_mailbox(url, lambda raw: True)


def test_parse_imap_url_defaults_imaps_to_port_993_and_the_inbox() -> None:
    assert parse_imap_url("imaps://bounces:secret@mail.example.com") == ImapTarget(
        tls=True,
        host="mail.example.com",
        port=993,
        user="bounces",
        password="secret",
        folder="INBOX",
    )


def test_parse_imap_url_reads_plain_imap_with_a_port_and_a_folder() -> None:
    target = parse_imap_url("imap://bounces:secret@127.0.0.1:1143/Bounces")

    assert (target.tls, target.host, target.port, target.folder) == (
        False,
        "127.0.0.1",
        1143,
        "Bounces",
    )
    assert parse_imap_url("imap://bounces:secret@mail.example.com/INBOX").port == 143


def test_parse_imap_url_percent_decodes_the_user_and_password() -> None:
    target = parse_imap_url("imaps://bounce%2Bx%40example.com:p%40ss%2Fw%20rd%25@h/INBOX")

    assert (target.user, target.password) == ("bounce+x@example.com", "p@ss/w rd%")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bounces:secret@mail.example.com/INBOX", "imaps:// or imap://"),
        ("pop3://bounces:secret@mail.example.com", "imaps:// or imap://"),
        ("mail.example.com", "imaps:// or imap://"),
        ("imaps://mail.example.com/INBOX", "user and a password"),
        ("imaps://bounces@mail.example.com/INBOX", "user and a password"),
        ("imaps://bounces:secret@/INBOX", "no host"),
        ("imaps://bounces:secret@mail.example.com:99999/INBOX", "bad port"),
        ("imaps://bounces:secret@mail.example.com/INBOX?x=1", "no query"),
        ("imaps://bounces:secret@mail.example.com/Bo%C3%AEte", "printable ASCII"),
    ],
)
def test_parse_imap_url_rejects_anything_else(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_imap_url(url)


def test_an_imap_target_does_not_show_its_password() -> None:
    assert "secret" not in repr(parse_imap_url("imaps://bounces:secret@mail.example.com"))


def test_poll_mailbox_rejects_a_limit_below_one_before_connecting() -> None:
    with pytest.raises(ValueError, match="limit"):
        poll_mailbox("imap://bounces:secret@127.0.0.1:1/INBOX", lambda raw: True, limit=0)
