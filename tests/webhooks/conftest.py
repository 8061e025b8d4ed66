"""A webhook receiver on loopback that checks signatures, and endpoints pointing at it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from crm.models import EmailEvent, OrgSettings, User
from tests.crm.activity import email_to
from webhooks.models import Endpoint
from webhooks.signing import signature_valid


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    signature_valid: bool
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class Receiver:
    """Answers each POST with the next of `answers` (the last repeats) and keeps what came."""

    url: str
    secret: str = ""
    answers: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        return [request for request in self.received if request.status == 200]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            with receiver.lock:
                status = receiver.answers[min(len(receiver.received), len(receiver.answers) - 1)]
                valid = signature_valid(receiver.secret, headers, body, now=time.time())
                receiver.received.append(Received(headers, body, valid, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: None)  # type: ignore[arg-type]
    found = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    server.RequestHandlerClass = _handler(found)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_allowed(db: None) -> OrgSettings:
    """The tests' receiver is on loopback: Setup allows it."""
    org = OrgSettings.load()
    org.webhook_private_addresses = True
    org.save()
    return org


@pytest.fixture
def make_endpoint(admin_user: User) -> Callable[..., Endpoint]:
    def make(receiver: Receiver | None = None, **overrides: Any) -> Endpoint:
        fields: dict[str, Any] = {
            "name": "CRM sync",
            "url": receiver.url if receiver else "https://hooks.example.com/in",
            "events": ["email.sent"],
            "owner": admin_user,
        }
        endpoint = Endpoint.objects.create(**{**fields, **overrides})
        if receiver is not None:
            receiver.secret = endpoint.secret
        return endpoint

    return make


@pytest.fixture
def log_event(make_contact: Callable[..., Any]) -> Callable[..., EmailEvent]:
    """An email log event on a copy sent to a contact."""
    contact = None

    def log(kind: str = "sent", when: datetime | None = None) -> EmailEvent:
        nonlocal contact
        contact = contact or make_contact()
        when = when or timezone.now()
        relation = email_to(contact, when=when)
        return EmailEvent.objects.create(relation=relation, kind=kind, occurred_at=when)

    return log
