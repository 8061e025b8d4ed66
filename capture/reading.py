"""Reading one message from a mailbox into what capture stores: a pure module, no models.

It never raises for the message's sake: a message that cannot be read as mail (no sender, no
headers) comes back as ``Unreadable`` with the reason, and the sync goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from inbound.storable import storable
from mailkit.mime import text_of_broken_mime

MAX_BODY = 1_000_000  # characters of each body kept (a huge newsletter is cut)
_ID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int
    content: bytes


@dataclass(frozen=True)
class Mail:
    """What capture stores of a message; addresses lower-cased, ids without <>."""

    message_id: str
    references: tuple[str, ...]  # In-Reply-To first, then References (root first)
    thread_root: str  # the conversation's first Message-ID as this message knows it
    from_name: str
    from_address: str
    to: tuple[tuple[str, str], ...]  # (name, address)
    cc: tuple[tuple[str, str], ...]
    to_header: str
    cc_header: str
    subject: str
    date: datetime | None
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    # The first message attached whole (message/rfc822: a forward "as attachment"), as bytes.
    forwarded: bytes = b""

    @property
    def parties(self) -> list[str]:
        """Every address on it, From first, each once."""
        found = [self.from_address, *(a for _, a in self.to), *(a for _, a in self.cc)]
        return list(dict.fromkeys(a for a in found if a))


@dataclass(frozen=True)
class Unreadable:
    reason: str


def mail_read(raw: bytes) -> Mail | Unreadable:
    try:
        return storable(_read(raw))
    except Exception as error:  # what the outside world sends must not stop a sync
        return Unreadable(f"{type(error).__name__}: {error}"[:200])


def _ids(value: str) -> list[str]:
    ids = _ID.findall(value)
    if not ids and value.strip() and "@" in value:
        ids = value.split()
    return [i.strip("<>")[:255] for i in ids if i.strip("<>")]


def _decoded(value: str) -> str:
    """A raw header value with its RFC 2047 encoded words decoded, on one line."""
    if "=?" in value:
        with contextlib.suppress(HeaderParseError, LookupError, ValueError, UnicodeError):
            value = str(make_header(decode_header(value)))
    return " ".join(value.split())


def _addresses(values: list[str]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for display, address in getaddresses(values):
        address = address.strip().lower()
        if "@" in address and len(address) <= 254 and address not in found:
            found[address] = _decoded(display).strip()[:255]
    return tuple((display, address) for address, display in found.items())


def _read(raw: bytes) -> Mail | Unreadable:
    if not raw.strip():
        return Unreadable("empty message")
    msg = message_from_bytes(raw, policy=email_policy.default)
    # The raw header values: the policy's header objects cost more than the rest of the parse.
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))

    def first(name: str) -> str:
        return headers.get(name, [""])[0]

    if not headers:
        return Unreadable("no headers")
    senders = _addresses(headers.get("from", []))
    if not senders:
        return Unreadable("no sender address (From)")
    from_name, from_address = senders[0]
    own = _ids(first("message-id"))
    # Without a Message-ID the message's bytes name it: the same message is still seen once.
    message_id = own[0] if own else f"sha256.{hashlib.sha256(raw).hexdigest()[:40]}@capture"
    in_reply_to = _ids(first("in-reply-to"))
    references = _ids(" ".join(headers.get("references", [])))
    chain = tuple(dict.fromkeys([*in_reply_to, *references]))
    root = references[0] if references else in_reply_to[0] if in_reply_to else message_id
    try:
        date = parsedate_to_datetime(first("date"))
    except (TypeError, ValueError, IndexError):
        date = None
    if date is not None and date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    text = html = ""
    for kind in ("plain", "html"):
        part = msg.get_body(preferencelist=(kind,))
        if part is not None:
            content = str(part.get_content())[:MAX_BODY]
            text, html = (content, html) if kind == "plain" else (text, content)
    if not text and not html:
        text = text_of_broken_mime(msg)[:MAX_BODY]
    attachments = []
    forwarded = b""
    for part in msg.iter_attachments():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            forwarded = forwarded or (inner.as_bytes() if isinstance(inner, Message) else b"")
            continue
        if part.get_content_maintype() == "multipart":
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        name = part.get_filename() or "(no name)"
        attachments.append(Attachment(name[:255], part.get_content_type()[:127], len(data), data))
    return Mail(
        message_id=message_id,
        references=chain,
        thread_root=root,
        from_name=from_name,
        from_address=from_address,
        to=_addresses(headers.get("to", [])),
        cc=_addresses(headers.get("cc", [])),
        to_header=_decoded(", ".join(headers.get("to", []))),
        cc_header=_decoded(", ".join(headers.get("cc", []))),
        subject=_decoded(first("subject"))[:998],
        date=date,
        text=text,
        html=html,
        attachments=tuple(attachments),
        forwarded=forwarded,
    )
