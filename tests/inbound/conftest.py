"""Inbound fixtures: the sent emails that mail comes back to (tracking's fixtures), and a DSN
builder."""

from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    embedded,
    sent,
    sent_email,
    smtp_server,
    tracking_app,
)


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
