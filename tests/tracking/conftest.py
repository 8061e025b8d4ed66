"""Fixtures for tracking: a real SMTP server on loopback, Redis, and calling the WSGI app."""

import io
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core import mail
from django.utils import timezone

from config.wsgi import django_application
from crm.models import EmailMessageRelation, OrgSettings
from crm.sending import email_send
from mailkit.tokens import signing_keys
from tests.conftest import skip_or_fail
from tracking import buffer
from tracking.buffer import EventWriter
from tracking.fastpath import LinkCache, TrackingApp


@dataclass
class Mailbox:
    """What the SMTP server received: one entry per SMTP transaction."""

    messages: list[tuple[list[str], MimeMessage]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply

    def for_address(self, address: str) -> MimeMessage:
        (message,) = [m for rcpt, m in self.messages if rcpt == [address]]
        return message


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.mailbox.refuse:
            return self.mailbox.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.mailbox.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback, and Django's SMTP backend pointed at it."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield mailbox
    finally:
        controller.stop()


def html_of(message: MimeMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def text_of(message: MimeMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


@pytest.fixture
def redis_url() -> str:
    return settings.REDIS_URL or "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_client(settings, redis_url) -> Iterator[redis.Redis]:
    """A real Redis, with REDIS_URL set so the buffer uses its stream; the stream starts empty."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        skip_or_fail(f"Redis is not reachable at {redis_url}")
    settings.REDIS_URL = redis_url
    client.delete(buffer.STREAM)
    yield client
    client.delete(buffer.STREAM)


@pytest.fixture
def embedded(settings) -> None:
    """Embedded mode: no Redis, the database table is the buffer."""
    settings.REDIS_URL = ""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def tracking_app() -> Callable[..., TrackingApp]:
    def make(
        *, client: redis.Redis | None = None, trusted_proxies: int = 0, stamps: bool = False
    ) -> TrackingApp:
        writer = EventWriter(client if client is not None else buffer.redis_client())
        return TrackingApp(
            django_application,
            keys=signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS),
            writer=writer,
            click_writer=writer,
            links=LinkCache(),
            trusted_proxies=trusted_proxies,
            stamps=stamps,
        )

    return make


def call(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    remote_addr: str = "198.51.100.7",
) -> Response:
    """One request through a WSGI application, as a server would make it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "t.openrate.test",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    body = b"".join(app(environ, start_response))
    return Response(answer["status"], answer["headers"], body)


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Sent:
    email: Any
    relation: Any
    pixel: str  # paths on the tracking origin
    click: str
    honeypot: str


@pytest.fixture
def sent_email(rep, make_contact, django_capture_on_commit_callbacks) -> Sent:
    """An email sent (through Django's test outbox) to one tracked contact."""
    contact = make_contact()
    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(
            sender=rep,
            to=[contact],
            subject="Pricing",
            html_body='<p>See <a href="https://example.com/pricing">pricing</a></p>',
        )
    html = mail.outbox[-1].alternatives[0][0]
    base = settings.TRACKING_BASE_URL
    paths = [url.removeprefix(base) for url in re.findall(rf'"({re.escape(base)}/t/[^"]+)"', html)]
    click, honeypot, pixel = paths  # document order: the link, the honeypot, the pixel
    relation = email.relations.get(contact=contact)
    # Delivered an hour ago, so a click now is past any scanner window.
    relation.sent_at = timezone.now() - timedelta(hours=1)
    relation.save(update_fields=["sent_at"])
    return Sent(email, relation, pixel, click, honeypot)


@pytest.fixture
def sent(settings, rep, make_contact, django_capture_on_commit_callbacks):
    """A tracked email to Ada, with a VERP return path; returns her relation row and copy."""
    settings.INBOUND_VERP_DOMAIN = "bounces.openrate.test"
    ada = make_contact(first_name="Ada", email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[ada], subject="Pricing", html_body="<p>Hi</p>")
    relation = EmailMessageRelation.objects.get(address="ada@example.com")
    return relation, mail.outbox[-1]


def setup_change(**changes: Any) -> None:
    """Save Setup (OrgSettings) with these fields changed, as the Setup page would."""
    org = OrgSettings.load()
    for name, value in changes.items():
        setattr(org, name, value)
    org.save()
