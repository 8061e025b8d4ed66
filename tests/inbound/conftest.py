"""Inbound fixtures: the sent emails that mail comes back to (tracking's fixtures), builders for
a DSN and an ARF complaint, and mounting the ESP webhooks that a test's settings configure."""

import base64
import importlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import clear_url_caches

from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    embedded,
    sent,
    sent_email,
    smtp_server,
    tracking_app,
)

WEBHOOK_SECRET = "openrate:s3cret"
# Postmark needs nothing but its server token (and the shared basic-auth secret) to be mounted.
POSTMARK = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "POSTMARK_SERVER_TOKEN": "server-token"}


def dsn(*, to: str, recipient: str, status: str, diagnostic: str, original: str = "") -> bytes:
    """A delivery status notification (RFC 3464) as an MTA sends it."""
    return (
        (
            f"From: MAILER-DAEMON@mx.example.com\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "MIME-Version: 1.0\r\nMessage-ID: <dsn-{status}-{id}@mx.example.com>\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {diagnostic}\r\n"
            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"{original}Subject: Pricing\r\n--b--\r\n"
        )
        .replace("{id}", str(abs(hash((to, recipient, status, diagnostic, original)))))
        .encode()
    )


def arf(*, recipient: str, original: str = "", feedback_type: str = "abuse") -> bytes:
    """An ARF complaint (RFC 5965) as a mailbox provider's feedback loop sends it."""
    return (
        "From: feedback@mail.example.net\r\nTo: abuse@openrate.test\r\nSubject: complaint\r\n"
        f"MIME-Version: 1.0\r\nMessage-ID: <arf-{abs(hash((recipient, original)))}@mail.example.net>\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{original}To: {recipient}\r\nSubject: Pricing\r\n--b--\r\n"
    ).encode()


def _reload_urls() -> None:
    """inbound.urls mounts what the settings configure when imported: import it again."""
    import config.urls
    import inbound.urls

    importlib.reload(inbound.urls)
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def mount_esps() -> Iterator[Callable[..., None]]:
    """Configure ESPs (ANYMAIL=..., EMAIL_BACKEND=...) and mount their webhooks as at start-up."""
    overrides: list[Any] = []

    def mount(**configured: Any) -> None:
        override = override_settings(**configured)
        override.enable()
        overrides.append(override)
        _reload_urls()

    yield mount
    for override in reversed(overrides):
        override.disable()
    _reload_urls()


def post_webhook(
    client: Client, path: str, body: dict | bytes, *, secret: str = WEBHOOK_SECRET
) -> Any:
    """An ESP's webhook POST, with the basic-auth secret anymail checks."""
    auth = "Basic " + base64.b64encode(secret.encode()).decode()
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", HTTP_AUTHORIZATION=auth)
