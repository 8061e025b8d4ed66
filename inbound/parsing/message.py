"""Reading an inbound message: headers, decoded parts, the quoted original and its headers."""

from __future__ import annotations

import contextlib
import html
import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any

from inbound.parsing.rules import Rule, rules

# Bounce reports are short; these bounds keep a huge or hostile message cheap to classify.
MAX_TEXT = 1_000_000
MAX_REPORT = 100_000
MAX_HEADER_LINES = 1_000  # of a quoted original's header block

ORIGINAL_HEADER_NAMES = ("Message-ID", "To", "From", "Subject", "Date", "X-Openrate-Token")

ADDRESS = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_ADDRESS_RE = re.compile(ADDRESS)
_ANGLE_ID_RE = re.compile(r"<([^<>\s]+)>")


def header(msg: Message, name: str) -> str:
    """The header's decoded value on one line, or "" when the message has none."""
    value = msg.get(name)
    if value is None:
        return ""
    text = str(value)
    # A broken encoded-word leaves the raw text, which is still better than nothing.
    with contextlib.suppress(HeaderParseError, LookupError, ValueError):
        text = str(make_header(decode_header(text)))
    return " ".join(text.split())


def header_all(msg: Message, name: str) -> list[str]:
    return [str(value) for value in msg.get_all(name) or []]


def message_ids(value: str) -> list[str]:
    ids = _ANGLE_ID_RE.findall(value)
    if not ids and value.strip():
        ids = value.split()
    return [i.strip("<>") for i in ids if i.strip("<>")]


def header_addresses(values: list[str]) -> list[str]:
    """The distinct lower-cased addresses in the given header values, in order."""
    found: list[str] = []
    for _name, address in getaddresses(values):
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def clean_address(value: str) -> str:
    """The first address in the text, lower-cased, or ""."""
    match = _ADDRESS_RE.search(value)
    return match.group(0).lower().strip(".") if match else ""


def join(*parts: str) -> str:
    """The non-blank parts on one line, each run of whitespace made one space."""
    return " ".join(" ".join(p.split()) for p in parts if p and p.strip())


def _decode_bytes(payload: bytes, charset: str | None) -> str:
    charset = (charset or "").strip().lower()
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return payload.decode(charset or "utf-8", "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _part_text(part: Message) -> str:
    """The decoded text of a leaf part (or the header blocks of a delivery-status part)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # The parser splits message/delivery-status into one Message per block of fields.
        blocks = (_block_text(block) for block in payload if isinstance(block, Message))
        return _decode_escapes("\n\n".join(blocks))
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(payload or "")
    try:
        charset = part.get_content_charset()
    except (LookupError, ValueError):
        charset = None
    return _decode_escapes(_decode_bytes(data, charset))


def _decode_escapes(text: str) -> str:
    # ISO-2022-JP is 7-bit: undeclared, it survives as escape sequences in "ASCII" text.
    if "\x1b$" not in text:
        return text
    return text.encode("latin-1", "replace").decode("iso2022_jp", "replace")


def _block_text(block: Message) -> str:
    fields = "\n".join(f"{key}: {value}" for key, value in block.items())
    body = block.get_payload()
    # A field broken over unindented lines ends the parser's header block early.
    return f"{fields}\n{body}" if isinstance(body, str) and body.strip() else fields


_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers"}
)
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
# Report parts whose body is blocks of fields; the parser splits them into sub-messages.
_FIELD_PART_TYPES = _DSN_TYPES | {"message/feedback-report"}


def _leaf_parts(msg: Message) -> Iterator[Message]:
    """Leaf parts of the report itself, not descending into an attached original message."""
    if msg.get_content_type() in _ORIGINAL_TYPES:
        return
    payload = msg.get_payload()
    if msg.is_multipart() and msg.get_content_type() not in _FIELD_PART_TYPES:
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                yield from _leaf_parts(sub)
        return
    yield msg


@dataclass
class Mail:
    """A parsed inbound message with the pieces every detector needs."""

    msg: Message
    subject: str
    from_address: str
    from_header: str
    to_addresses: tuple[str, ...]
    report_text: str  # human-readable text before any copy of the original message
    full_text: str  # every text part of the report, uncut
    dsn_text: str  # the delivery-status part(s), if any
    feedback_text: str  # the feedback-report part(s), if any
    original: Message | None  # headers of the quoted original message, if any
    ses: dict[str, Any] | None  # an Amazon SES notification (JSON), if that is what this is


def parse(raw: bytes) -> Mail:
    return mail_from(message_from_bytes(raw, policy=email_policy.compat32))


def mail_from(msg: Message) -> Mail:
    texts: list[str] = []
    dsn: list[str] = []
    feedback: list[str] = []
    for part in _leaf_parts(msg):
        ctype = part.get_content_type()
        if ctype in _DSN_TYPES:
            dsn.append(_part_text(part))
        elif ctype == "message/feedback-report":
            feedback.append(_part_text(part))
        elif ctype == "text/html":
            texts.append(_strip_html(_part_text(part)))
        elif part.get_content_maintype() in ("text", "multipart") or ctype == "message/partial":
            texts.append(_part_text(part))
    full_text = "\n".join(t for t in texts if t)[:MAX_TEXT]
    to_values = [*header_all(msg, "To"), *header_all(msg, "Delivered-To")]
    to_values += [*header_all(msg, "X-Original-To"), *header_all(msg, "Envelope-To")]
    from_header = header(msg, "From")
    ses = _ses_notification(full_text)
    original = _original_headers(msg, full_text)
    if original is None and ses is not None:
        original = _ses_original(ses)
    return Mail(
        msg=msg,
        subject=header(msg, "Subject"),
        from_address=parseaddr(from_header)[1].lower(),
        from_header=from_header,
        to_addresses=tuple(header_addresses(to_values)),
        report_text=_cut_original(full_text)[:MAX_REPORT],
        full_text=full_text,
        dsn_text="\n\n".join(dsn),
        feedback_text="\n\n".join(feedback),
        original=original,
        ses=ses,
    )


_TAG_RE = re.compile(r"<[^>]*>")


def _strip_html(markup: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\n", text)
    return html.unescape(_TAG_RE.sub(" ", text)).replace("\xa0", " ")


# Lines that introduce the copy of the original message in a plain-text bounce.
ORIGINAL_MARKERS: tuple[Rule, ...] = rules(
    "original message marker",
    r"""-+\s*(?:original\s+(?:message|mail)|returned\s+message|message\s+text\s+follows)
      | (?:-+\s*)?below\s+this\s+line\s+is\s+a\s+copy
      | -+\s*(?:this\s+is\s+a\s+)?copy\s+of\s+(?:the|your)\s+message
      | -+\s*the\s+header\s+of\s+the\s+original\s+message
      | (?:-+\s*)?original\s+message\s+follows
      | original\s+message\s+headers""",
    re.IGNORECASE | re.VERBOSE,
    prefix=r"^[\s|>-]*",
)


def is_original_marker(line: str) -> bool:
    return any(rule.pattern.match(line) for rule in ORIGINAL_MARKERS)


# A header block of the quoted original that no marker announced.
_ORIGINAL_HEADER_RE = re.compile(
    r"^(?:Return-Path|Received|DKIM-Signature|X-Received|Authentication-Results|ARC-Seal):",
    re.IGNORECASE,
)


def _split_original(text: str) -> tuple[str, str]:
    """Split a plain-text bounce into its report and the copy of the original message."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if is_original_marker(line):
            return "\n".join(lines[:index]), "\n".join(lines[index + 1 :])
        if _ORIGINAL_HEADER_RE.match(line) or _starts_quoted_headers(lines[index : index + 3]):
            return "\n".join(lines[:index]), "\n".join(lines[index:])
    return text, ""


# Header fields that every message has; three in a row are a quoted message's header block.
_MESSAGE_HEADER_RE = re.compile(r"^(?:From|To|Cc|Subject|Date|Message-ID|Sender|Reply-To):\s*\S")


def _starts_quoted_headers(lines: list[str]) -> bool:
    return len(lines) == 3 and all(_MESSAGE_HEADER_RE.match(line) for line in lines)


def _cut_original(text: str) -> str:
    return _split_original(text)[0]


def _original_headers(msg: Message, full_text: str) -> Message | None:
    """The headers of the message that bounced, from an attached copy or the quoted text."""
    for part in msg.walk():
        if part is msg or part.get_content_type() not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return _repaired(payload[0])
        text = _part_text(part)
        if text.strip():
            return _header_block(text)
    # Some bounces quote the original inline, some indented, some after a line of dashes.
    rest = _split_original(full_text)[1].lstrip("\n")
    rest = textwrap.dedent(re.sub(r"\A(?:[ \t]*[-=*_]{3,}[ \t]*\n)+", "", rest))
    return _header_block(rest) if _HEADER_LINE_RE.match(rest) else None


def _repaired(original: Message) -> Message:
    # A header rewrapped without indentation, or a blank line before the headers, makes the
    # parser take the rest of the headers for the body.
    body = original.get_payload()
    if "Message-ID" in original or not isinstance(body, str):
        return original
    if not any(_HEADER_LINE_RE.match(line) for line in body.lstrip().splitlines()[:10]):
        return original
    merged = Message()
    for name, value in [*original.items(), *_header_block(body).items()]:
        merged[name] = value
    return merged


_HEADER_LINE_RE = re.compile(r"([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*)")


def _header_block(text: str) -> Message:
    """Headers quoted in a report, read leniently: MTAs rewrap them without indenting."""
    headers = Message()
    name, value = "", ""
    for line in text.lstrip().splitlines()[:MAX_HEADER_LINES]:
        if not line.strip():
            break
        match = _HEADER_LINE_RE.match(line)
        if match:
            if name:
                headers[name] = value
            name, value = match.group(1), match.group(2).strip()
        else:
            value = f"{value} {line.strip()}"
    if name:
        headers[name] = value
    return headers


def original_fields(original: Message | None) -> dict[str, str]:
    """The quoted original's headers that we keep: ORIGINAL_HEADER_NAMES and X-Openrate-*."""
    if original is None:
        return {}
    fields: dict[str, str] = {}
    for name in ORIGINAL_HEADER_NAMES:
        value = header(original, name)
        if value:
            fields[name] = value
    for name in original:
        if name.lower().startswith("x-openrate-") and name not in fields:
            fields[name] = header(original, name)
    return fields


# --- Amazon SES notifications (JSON, possibly wrapped in an SNS envelope) --------------------


def _ses_notification(full_text: str) -> dict[str, Any] | None:
    text = full_text.strip()
    if not text.startswith("{") or "notificationType" not in text:
        return None
    # SNS wraps long lines with "!\n " when it mails the notification.
    body = re.sub(r"!\r?\n ", "", text[: text.rfind("}") + 1])
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"])
    except ValueError:
        return None
    if isinstance(data, dict) and "notificationType" in data:
        return data
    return None


def _ses_original(data: dict[str, Any]) -> Message | None:
    """The headers SES reports for the message it sent."""
    sent = data.get("mail")
    if not isinstance(sent, dict):
        return None
    original = Message()
    for entry in sent.get("headers") or []:
        if isinstance(entry, dict) and entry.get("name"):
            original[str(entry["name"])] = str(entry.get("value", ""))
    common = sent.get("commonHeaders") or {}
    if "Message-ID" not in original and isinstance(common, dict) and common.get("messageId"):
        original["Message-ID"] = str(common["messageId"])
    return original
