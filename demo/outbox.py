"""The local outbox: where `make run` delivers mail, so a newcomer reads what a recipient gets.

Only in embedded mode with DEBUG on (config.settings picks this backend then): each delivered
copy is written as one .eml file under OUTBOX_DIR, which the web server, the Celery worker
that delivers and a test all share, unlike Django's locmem backend, whose outbox lives in one
process. The folder keeps the newest OUTBOX_KEEP messages, so it never grows without bound.
"""

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from uuid import uuid4

import nh3
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)

BACKEND = "demo.outbox.EmailBackend"
OUTBOX_KEEP = 500
# A message's key: when it was delivered (UTC, to the microsecond, so names sort by time) and
# a random part, so two workers delivering in the same microsecond never write one file.
_KEY = re.compile(r"\d{8}T\d{12}-[0-9a-f]{32}")
_STAMP = "%Y%m%dT%H%M%S%f"


def outbox_enabled() -> bool:
    """Whether the outbox is in use: DEBUG on and the outbox chosen as the mail backend."""
    return bool(settings.DEBUG) and settings.EMAIL_BACKEND == BACKEND


def outbox_dir() -> Path:
    return Path(settings.OUTBOX_DIR)


class EmailBackend(BaseEmailBackend):
    """Django's mail backend API, writing each message to the outbox folder."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        folder = outbox_dir()
        folder.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            key = f"{datetime.now(UTC):{_STAMP}}-{uuid4().hex}"
            partial = folder / f".{key}.partial"
            # Written aside, then renamed: the page never reads a half-written message.
            partial.write_bytes(message.message().as_bytes(linesep="\n"))
            partial.replace(folder / f"{key}.eml")
            logger.info(
                "Outbox: %r to %s (open /outbox/ to read it)",
                message.subject,
                ", ".join(message.recipients()),
            )
            sent += 1
        outbox_prune(folder, keep=OUTBOX_KEEP)
        return sent


def outbox_prune(folder: Path, *, keep: int) -> None:
    """Delete all but the newest `keep` messages."""
    for key in outbox_keys(folder)[keep:]:
        (folder / f"{key}.eml").unlink(missing_ok=True)


def outbox_keys(folder: Path | None = None) -> list[str]:
    """Every message's key, newest first (names sort by delivery time)."""
    folder = folder or outbox_dir()
    if not folder.is_dir():
        return []
    names = (entry.name for entry in os.scandir(folder) if entry.is_file())
    keys = [name[:-4] for name in names if name.endswith(".eml") and _KEY.fullmatch(name[:-4])]
    return sorted(keys, reverse=True)


@dataclass(frozen=True)
class OutboxMessage:
    key: str
    delivered_at: datetime
    subject: str
    from_address: str
    to: str
    message_id: str  # without the angle brackets, as EmailMessageRelation.message_id keeps it
    html: str
    text: str


def outbox_read(key: str) -> OutboxMessage | None:
    """The message with this key, or None if there is none (or the key is not one)."""
    if not _KEY.fullmatch(key):
        return None
    try:
        raw = (outbox_dir() / f"{key}.eml").read_bytes()
    except FileNotFoundError:
        return None
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, MimeMessage)
    return OutboxMessage(
        key=key,
        delivered_at=datetime.strptime(key.split("-")[0], _STAMP).replace(tzinfo=UTC),
        subject=str(parsed.get("Subject", "")),
        from_address=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        message_id=str(parsed.get("Message-ID", "")).strip().strip("<>"),
        html=_part(parsed, "html"),
        text=_part(parsed, "plain"),
    )


def _part(message: MimeMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


# The copy as its recipient's mail program shows it: no script (nh3, and the frame's sandbox),
# but its remote images (the tracking pixel) and the inline styles that hide the honeypot link,
# which a person must not see or they could click it and be taken for a bot.
_TAGS = nh3.ALLOWED_TAGS | {"center", "font"}
_ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "*": {"style"},
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"align", "valign", "colspan", "rowspan", "width"},
    "table": {"align", "width", "cellpadding", "cellspacing", "border"},
    "font": {"color", "face", "size"},
}


def tracking_origin() -> str:
    """The scheme, host and port of TRACKING_BASE_URL: where the pixel and links point."""
    match = re.match(r"[a-z][a-z0-9+.-]*://[^/?#]+", settings.TRACKING_BASE_URL, re.IGNORECASE)
    return match.group(0) if match else settings.TRACKING_BASE_URL


def recipient_view_html(html: str) -> str:
    """The message's HTML as a whole document for a sandboxed iframe's srcdoc: its images
    load from the tracking origin only, and its links open in a new tab."""
    body = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel", "data", "cid"},
        link_rel="noopener",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    frame_csp = f"default-src 'none'; img-src {tracking_origin()} data:; style-src 'unsafe-inline'"
    return (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{frame_csp}"><base target="_blank">'
        f'<body style="font-family:system-ui,sans-serif;margin:1rem">{body}</body>'
    )
