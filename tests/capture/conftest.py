"""A TLS Dovecot with RFC 6154 special-use folders, a mailbox per test, and realistic mail."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage as Message
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from capture import imap
from capture.mailboxes import mailbox_connect, mailbox_probe
from capture.models import Mailbox
from crm.models import User
from tests.inbound.imap_server import HOST, PASSWORD, Dovecot, ImapMailbox, dovecot

SPECIAL_USE = r"""namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox Private {
    auto = create
  }
}"""
_serial = itertools.count(1)


@pytest.fixture(scope="session")
def tls_dovecot() -> Iterator[Dovecot]:
    """Dovecot over IMAPS (a self-signed certificate) with a \\Sent and a Private folder."""
    with dovecot(tls=True, extra=SPECIAL_USE) as server:
        yield server


@pytest.fixture(autouse=True)
def _capture_settings(settings: Any) -> None:
    settings.MAILBOX_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    settings.CAPTURE_ADDRESS_DOMAIN = "in.openrate.example"


@pytest.fixture
def imap_server(tls_dovecot: Dovecot, settings: Any) -> Dovecot:
    """The session's Dovecot, its self-signed certificate trusted (MAILBOX_TLS_CA_FILE)."""
    settings.MAILBOX_TLS_CA_FILE = str(tls_dovecot.workdir / "cert.pem")
    return tls_dovecot


@pytest.fixture
def imap_box(imap_server: Dovecot) -> ImapMailbox:
    """A new user on it, with an empty INBOX and the Sent and Private folders."""
    return imap_server.mailbox()


def account_for(box: ImapMailbox, *, port: int | None = None) -> imap.Account:
    return imap.Account(host=HOST, port=port or box.port, username=box.user, password=PASSWORD)


def connect(user: User, box: ImapMailbox, *, port: int | None = None) -> Mailbox:
    """The user's mailbox connected as the page would: probed, then stored."""
    account = account_for(box, port=port)
    return mailbox_connect(
        user=user,
        account=account,
        security=Mailbox.Security.TLS,
        probe=mailbox_probe(account=account),
    )


def mail(
    *,
    sender: str,
    to: list[str],
    subject: str,
    cc: list[str] | None = None,
    message_id: str | None = None,
    replying_to: list[str] | None = None,
    when: datetime | None = None,
    body: str = "Hello,\n\nSee you Tuesday.\n",
    html: str | None = None,
    attachments: list[tuple[str, bytes]] | None = None,
) -> tuple[bytes, str]:
    """A message as a mail program writes it; its raw bytes and its Message-ID (without <>)."""
    msg = Message()
    message_id = message_id or f"m{next(_serial)}.{id(msg)}@mail.example"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when or timezone.now() - timedelta(hours=1))
    msg["Message-ID"] = f"<{message_id}>"
    if replying_to:
        msg["In-Reply-To"] = f"<{replying_to[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in replying_to)
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for name, data in attachments or []:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes(), message_id


@dataclass
class DroppingProxy:
    """A TCP proxy to the server that cuts the first connection after `drop_after` bytes
    from the server (mid-fetch); later connections pass whole."""

    upstream: int
    drop_after: int | None
    port: int = 0
    dropped: bool = False
    _server: socket.socket = field(init=False)

    def start(self) -> None:
        self._server = socket.socket()
        self._server.bind((HOST, 0))
        self._server.listen()
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.upstream))
            limit = None if self.dropped else self.drop_after
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, limit), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(16384):
                if limit is not None and sent + len(data) > limit:
                    target.sendall(data[: limit - sent])
                    self.dropped = True
                    break
                target.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def dropping_proxy(imap_box: ImapMailbox) -> Callable[[int], DroppingProxy]:
    proxies: list[DroppingProxy] = []

    def make(drop_after: int) -> DroppingProxy:
        proxy = DroppingProxy(imap_box.port, drop_after)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make  # type: ignore[misc]
    for proxy in proxies:
        proxy.stop()
