"""Classify inbound mail: delivery failures, complaints, auto-replies and replies.

A pure module: it reads raw RFC 5322 bytes with the standard library's ``email`` package and
imports nothing from Django, so it can run anywhere (a management command, a Celery task, a
test) and be fed any bytes at all.

Bounces come in two shapes. Standard ones carry an RFC 3464 ``message/delivery-status`` part
with one block of fields per recipient. The rest are plain-text reports whose wording depends on
the MTA that wrote them (Exim, qmail, Gmail, Exchange, Yahoo, ...); for those we find the lines
that name a failed address and read the diagnostic text that follows. Either way each failed
recipient gets an SMTP reply code, an RFC 3463 status code and a reason read from the diagnostic
text, and is ``hard`` only when the address itself is dead.
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

MAX_DIAGNOSTIC = 500
# Bounce reports are short; these bounds keep a huge or hostile message cheap to classify.
MAX_TEXT = 1_000_000
MAX_REPORT = 100_000
MAX_BLOCK_LINES = 60

# Reasons where the address itself is dead: mailing it again can only bounce again. A domain
# that accepts no mail at all (null MX, "notaccept") is dead too, unless it says so for now.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})

ORIGINAL_HEADER_NAMES = ("Message-ID", "To", "From", "Subject", "Date", "X-Openrate-Token")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report is about (for a complaint: the one who complained)."""

    address: str  # lower-cased; "" when the report does not name it
    status: str  # RFC 3463 code, e.g. "5.1.1"; derived from the reason when the report has none
    reply_code: str  # SMTP reply code, e.g. "550"; "" when the report has none
    diagnostic: str  # the error text, one line, at most MAX_DIAGNOSTIC characters
    hard: bool  # the address itself is dead: never mail it again
    reason: str  # "userunknown", "mailboxfull", ..., "feedback" or "delivered"


@dataclass(frozen=True)
class InboundMessage:
    kind: str  # "bounce", "complaint", "auto_reply", "reply" or "other"
    recipients: tuple[FailedRecipient, ...] = ()
    feedback_type: str = ""  # ARF Feedback-Type of a complaint: "abuse", "opt-out", ...
    message_id: str = ""  # this message's own Message-ID, without <>
    in_reply_to: tuple[str, ...] = ()  # In-Reply-To then References, without <>
    original_message_id: str = ""  # Message-ID of the message a report quotes
    original_headers: dict[str, str] = field(default_factory=dict)
    to_addresses: tuple[str, ...] = ()  # To, Delivered-To, X-Original-To...: for VERP matching
    from_address: str = ""
    subject: str = ""
    reason: str = ""  # why a message is "other" ("unreadable: ...", "delivery report", ...)


def classify_message(raw: bytes) -> InboundMessage:
    """Classify raw message bytes; never raises, whatever the input."""
    try:
        return _classify(raw)
    except Exception as exc:  # a classifier fed by the outside world must not crash its caller
        return InboundMessage(kind="other", reason=f"unreadable: {type(exc).__name__}: {exc}"[:200])


# --------------------------------------------------------------------------------------------
# Reading the message
# --------------------------------------------------------------------------------------------

ADDRESS = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_ADDRESS_RE = re.compile(ADDRESS)
_ANGLE_ID_RE = re.compile(r"<([^<>\s]+)>")


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    text = str(value)
    # A broken encoded-word leaves the raw text, which is still better than nothing.
    with contextlib.suppress(HeaderParseError, LookupError, ValueError):
        text = str(make_header(decode_header(text)))
    return " ".join(text.split())


def _header_all(msg: Message, name: str) -> list[str]:
    return [str(value) for value in msg.get_all(name) or []]


def _message_ids(value: str) -> list[str]:
    ids = _ANGLE_ID_RE.findall(value)
    if not ids and value.strip():
        ids = value.split()
    return [i.strip("<>") for i in ids if i.strip("<>")]


def _addresses(values: list[str]) -> list[str]:
    found: list[str] = []
    for _name, address in getaddresses(values):
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


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
class _Mail:
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


def _parse(raw: bytes) -> _Mail:
    return _mail_from(message_from_bytes(raw, policy=email_policy.compat32))


def _mail_from(msg: Message) -> _Mail:
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
    to_values = [*_header_all(msg, "To"), *_header_all(msg, "Delivered-To")]
    to_values += [*_header_all(msg, "X-Original-To"), *_header_all(msg, "Envelope-To")]
    from_header = _header(msg, "From")
    ses = _ses_notification(full_text)
    original = _original_headers(msg, full_text)
    if original is None and ses is not None:
        original = _ses_original(ses)
    return _Mail(
        msg=msg,
        subject=_header(msg, "Subject"),
        from_address=parseaddr(from_header)[1].lower(),
        from_header=from_header,
        to_addresses=tuple(_addresses(to_values)),
        report_text=_cut_original(full_text)[:MAX_REPORT],
        full_text=full_text,
        dsn_text="\n\n".join(dsn),
        feedback_text="\n\n".join(feedback),
        original=original,
        ses=ses,
    )


_TAG_RE = re.compile(r"<[^>]*>")


def _strip_html(html: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\n", text)
    return _TAG_RE.sub(" ", text).replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">")


# Lines that introduce the copy of the original message in a plain-text bounce.
_ORIGINAL_MARKER_RE = re.compile(
    r"""^[\s|>-]*(?:
        -+\s*(?:original\s+(?:message|mail)|returned\s+message|message\s+text\s+follows)
      | (?:-+\s*)?below\s+this\s+line\s+is\s+a\s+copy
      | -+\s*(?:this\s+is\s+a\s+)?copy\s+of\s+(?:the|your)\s+message
      | -+\s*the\s+header\s+of\s+the\s+original\s+message
      | -+\s*enclosed\s+is\s+a\s+copy
      | -+\s*unsent\s+message\s+follows
      | (?:-+\s*)?original\s+message\s+follows
      | original\s+message\s+headers
      | original\s+mail\s+as\s+follows
      | message\s+headers\s+follow
      | included\s+is\s+a\s+copy\s+of\s+the\s+message
      | below\s+is\s+a\s+copy\s+of\s+the\s+original\s+message
      | original\s+message:
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# A header block of the quoted original that no marker announced.
_ORIGINAL_HEADER_RE = re.compile(
    r"^(?:Return-Path|Received|DKIM-Signature|X-Received|Authentication-Results|ARC-Seal):",
    re.IGNORECASE,
)


def _split_original(text: str) -> tuple[str, str]:
    """Split a plain-text bounce into its report and the copy of the original message."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _ORIGINAL_MARKER_RE.match(line):
            return "\n".join(lines[:index]), "\n".join(lines[index + 1 :])
        if _ORIGINAL_HEADER_RE.match(line):
            return "\n".join(lines[:index]), "\n".join(lines[index:])
    return text, ""


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
    for line in text.lstrip().splitlines():
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


def _original_fields(original: Message | None) -> dict[str, str]:
    if original is None:
        return {}
    fields: dict[str, str] = {}
    for name in ORIGINAL_HEADER_NAMES:
        value = _header(original, name)
        if value:
            fields[name] = value
    for name in original:
        if name.lower().startswith("x-openrate-") and name not in fields:
            fields[name] = _header(original, name)
    return fields


# --------------------------------------------------------------------------------------------
# Top level
# --------------------------------------------------------------------------------------------


def _classify(raw: bytes) -> InboundMessage:
    if not isinstance(raw, bytes | bytearray):
        raise TypeError("raw message must be bytes")
    if not raw.strip():
        return InboundMessage(kind="other", reason="unreadable: empty message")
    mail = _parse(bytes(raw))
    base: dict[str, Any] = {
        "message_id": next(iter(_message_ids(_header(mail.msg, "Message-ID"))), ""),
        "in_reply_to": _in_reply_to(mail.msg),
        "to_addresses": mail.to_addresses,
        "from_address": mail.from_address,
        "subject": mail.subject,
        "original_headers": _original_fields(mail.original),
    }
    base["original_message_id"] = next(
        iter(_message_ids(base["original_headers"].get("Message-ID", ""))), ""
    )

    complaint = _complaint(mail)
    if complaint is not None:
        feedback_type, recipients = complaint
        return InboundMessage(
            kind="complaint", recipients=recipients, feedback_type=feedback_type, **base
        )

    recipients = _bounce_recipients(mail)
    if recipients:
        if all(r.reason == "delivered" for r in recipients):
            return InboundMessage(
                kind="other", recipients=recipients, reason="delivery report", **base
            )
        return InboundMessage(kind="bounce", recipients=recipients, **base)

    if _is_auto_reply(mail):
        return InboundMessage(kind="auto_reply", **base)
    if base["in_reply_to"] or _REPLY_SUBJECT_RE.match(mail.subject):
        return InboundMessage(kind="reply", **base)
    return InboundMessage(kind="other", reason="not a reply", **base)


def _in_reply_to(msg: Message) -> tuple[str, ...]:
    ids: list[str] = []
    for name in ("In-Reply-To", "References"):
        for message_id in _message_ids(_header(msg, name)):
            if message_id not in ids:
                ids.append(message_id)
    return tuple(ids)


# --------------------------------------------------------------------------------------------
# Complaints (RFC 5965 ARF and the few providers that send something else)
# --------------------------------------------------------------------------------------------


def _complaint(mail: _Mail) -> tuple[str, tuple[FailedRecipient, ...]] | None:
    fields_text = mail.feedback_text
    report_type = (mail.msg.get_param("report-type") or "") if mail.msg.is_multipart() else ""
    if not fields_text and str(report_type).lower() == "feedback-report":
        fields_text = mail.full_text
    if fields_text and re.search(r"(?im)^Feedback-Type:", fields_text):
        return _arf_complaint(mail, fields_text)

    if mail.ses is not None and mail.ses.get("notificationType") == "Complaint":
        complaint = mail.ses.get("complaint") or {}
        addresses = [
            str(r.get("emailAddress", "")) for r in complaint.get("complainedRecipients") or []
        ]
        return str(complaint.get("complaintFeedbackType") or "abuse"), _feedback(addresses)

    # Microsoft's JMRP (Outlook.com, Hotmail) forwards the message with a fixed subject.
    if re.match(r"(?i)complaint about message from\b", mail.subject):
        original = mail.original
        address = _header(original, "X-HmXmrOriginalRecipient") if original else ""
        return "abuse", _feedback([address or _first_address(original, "To")])

    # Apple Mail's one-click unsubscribe answers a List-Unsubscribe mailto: URL.
    if _header(mail.msg, "X-Apple-Unsubscribe").lower() == "true":
        return "opt-out", _feedback([mail.from_address])
    return None


def _arf_complaint(mail: _Mail, text: str) -> tuple[str, tuple[FailedRecipient, ...]]:
    feedback_type = ""
    addresses: list[str] = []
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "feedback-type" and not feedback_type:
            feedback_type = value.strip().lower()
        elif name in ("original-rcpt-to", "removal-recipient"):
            addresses.append(value.strip())
    if not addresses:
        addresses.append(_first_address(mail.original, "To"))
    return feedback_type or "abuse", _feedback(addresses)


def _first_address(msg: Message | None, name: str) -> str:
    if msg is None:
        return ""
    found = _addresses(_header_all(msg, name))
    return found[0] if found else ""


def _feedback(addresses: list[str]) -> tuple[FailedRecipient, ...]:
    return tuple(
        FailedRecipient(
            address=_clean_address(a),
            status="",
            reply_code="",
            diagnostic="",
            hard=False,
            reason="feedback",
        )
        for a in addresses or [""]
    )


def _clean_address(value: str) -> str:
    match = _ADDRESS_RE.search(value)
    return match.group(0).lower().strip(".") if match else ""


# --------------------------------------------------------------------------------------------
# Bounces: collecting one hit per failed recipient from the report
# --------------------------------------------------------------------------------------------


@dataclass
class _Hit:
    address: str
    diagnostic: str = ""
    status: str = ""  # an explicit Status: field, when the report has one
    action: str = ""
    diagnostic_type: str = ""  # "smtp", "x-unix", ... from "Diagnostic-Code: TYPE; text"
    reason: str = ""  # set by a format that knows the reason better than its text does
    context: str = ""  # surrounding report text, read only when the diagnostic says nothing
    structured: bool = False  # from RFC 3464 fields or JSON rather than prose
    named: bool = True  # the report names this recipient (rather than us guessing it)


def _bounce_recipients(mail: _Mail) -> tuple[FailedRecipient, ...]:
    return tuple(_recipient(hit) for hit in _bounce_hits(mail))


def _bounce_hits(mail: _Mail) -> list[_Hit]:
    if mail.ses is not None:
        return _ses_hits(mail.ses)
    list_error = _mailing_list_error(mail)
    if list_error is not None:
        return [list_error]
    evidence = _bounce_evidence(mail)
    if not mail.dsn_text and not evidence:
        return []

    text_hits, preamble = _text_hits(mail)
    if evidence == WEAK:
        # Only the subject or a phrase says "bounce": keep the addresses that come with an error.
        text_hits = [h for h in text_hits if _names_an_error(_join(h.diagnostic, h.context))]
    # DSN fields pasted into a text part count too (forwarded bounces, broken MIME).
    dsn_hits = _dsn_hits(mail.dsn_text or _cut_original_dsn(mail.full_text))
    if dsn_hits:
        _merge_text_hits(dsn_hits, text_hits)
        hits = dsn_hits
        # With several recipients the report's text mixes their errors.
        context = mail.report_text if len(dsn_hits) == 1 else ""
    elif text_hits:
        hits, context = text_hits, preamble
    else:
        inner = _attached_bounce(mail)
        if inner is not None:
            return _bounce_hits(inner)
        hits, context = _fallback_hits(mail, evidence), ""
    for hit in hits:
        hit.context = _join(hit.context, context)[:3000]
        if not hit.reason and "groups.google.com" in mail.report_text:
            # Google Groups refuses a post from a non-member or to a missing group.
            hit.reason = "rejected"
    return hits


def _merge_text_hits(dsn_hits: list[_Hit], text_hits: list[_Hit]) -> None:
    by_address = {hit.address: hit for hit in text_hits}
    for hit in dsn_hits:
        text_hit = by_address.get(hit.address)
        if text_hit is None and len(dsn_hits) == len(text_hits) == 1:
            text_hit = text_hits[0]  # one each: the text names an alias of the DSN's address
        if text_hit is None:
            continue
        # Sendmail puts only the first line of a multi-line reply ("550-5.7.1 ...") in the
        # Diagnostic-Code field; its transcript has the rest.
        if not _meaningful(hit.diagnostic) or re.match(r"\d{3}-", hit.diagnostic):
            hit.diagnostic = _join(hit.diagnostic, text_hit.diagnostic)
        hit.context = _join(text_hit.context, text_hit.diagnostic)


def _join(*parts: str) -> str:
    return " ".join(" ".join(p.split()) for p in parts if p and p.strip())


def _meaningful(text: str) -> bool:
    return bool(re.search(r"[A-Za-z]{3,}.*[A-Za-z]{3,}", text))


# Subjects, senders and phrases that only mail systems use. A message needs one of these (or a
# delivery-status part) before its text is searched for failed recipients.
_BOUNCE_SUBJECT_RE = re.compile(
    r"""(?ix)
    undeliver|delivery\s+(?:status|failure|failed|report|notification|problem)
    |returned\s+mail|returning\s+message|failure\s+notice|mail\s+delivery\s+failed
    |non\s+remis|non\s+recapitabile|unzustellbar|no\s+entregado|niet\s+bezorgd
    |could\s+not\s+be\s+delivered|delivery\s+has\s+failed|warning:\s+message\s+\S+\s+delayed
    |delayed\s+mail|mail\s+system\s+error|failed\s+delivery|failure\s+delivery
    |there\s+was\s+an\s+error\s+sending|mail\s+failed|mail\s+failure|returned\s+to\s+sender
    |could\s+not\s+send\s+message|not\s+delivered
    """
)
_DAEMON_RE = re.compile(
    r"(?i)\b(?:mailer-daemon|mail-daemon|mailer\s*daemon|postmaster|post_master|"
    r"mail\s+delivery\s+(?:system|subsystem|service)|mail\s+deliver\s+system)\b"
)
_BOUNCE_BODY_RE = re.compile(
    r"""(?ix)
    could\s+not\s+be\s+delivered\s+to|was\s+not\s+delivered\s+to|wasn't\s+delivered\s+to
    |unable\s+to\s+deliver\s+(?:your\s+)?message\s+to|delivery\s+to\s+the\s+following
    |following\s+addresses\s+had\s+(?:permanent\s+)?(?:fatal\s+|delivery\s+)?errors
    |this\s+is\s+a\s+permanent\s+error|delivery\s+has\s+failed\s+to\s+these\s+recipients
    """
)
_AUTOMATED_SENDER_RE = re.compile(r"(?i)^(?:no-?reply|do-?not-?reply|mailer|daemon|bounce)")


STRONG, WEAK = "strong", "weak"


def _bounce_evidence(mail: _Mail) -> str:
    """How surely a message without a delivery-status part is a bounce: STRONG, WEAK or ""."""
    msg = mail.msg
    if msg.get("X-Failed-Recipients") or _DAEMON_RE.search(mail.from_header):
        return STRONG
    forwarded = _REPLY_SUBJECT_RE.match(mail.subject) or _FORWARD_SUBJECT_RE.match(mail.subject)
    if not forwarded and _BOUNCE_SUBJECT_RE.search(mail.subject):
        return WEAK
    # A bounce phrase alone could be a person quoting one; it counts from an automated sender.
    automated = (
        _header(msg, "Return-Path").strip() == "<>"
        or bool(_AUTOMATED_SENDER_RE.match(mail.from_address))
        or bool(msg.get("Auto-Submitted"))
    )
    return WEAK if automated and _BOUNCE_BODY_RE.search(mail.report_text) else ""


def _names_an_error(text: str) -> bool:
    return bool(_find_status(text) or _find_reply_code(text) or reason_from_text(text))


def _attached_bounce(mail: _Mail) -> _Mail | None:
    """A bounce forwarded as an attachment (a relay that wraps the report it received)."""
    for part in mail.msg.walk():
        if part is mail.msg or part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = _mail_from(payload[0])
            if inner.dsn_text:
                return inner
    return None


# --- RFC 3464 delivery-status fields ---------------------------------------------------------

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")


def _field_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        if not match:
            if last:
                current[last] += " " + line.strip()
            continue
        name = match.group(1).lower()
        # A recipient field seen twice means two recipients with no blank line between.
        if name in current and name in ("final-recipient", "original-recipient"):
            blocks.append(current)
            current = {}
        current.setdefault(name, match.group(2).strip())
        last = name
    if current:
        blocks.append(current)
    return blocks


def _dsn_hits(text: str) -> list[_Hit]:
    hits: list[_Hit] = []
    for block in _field_blocks(text):
        if not any(name in block for name in _RECIPIENT_FIELDS):
            continue
        address = ""
        for name in _RECIPIENT_FIELDS:
            address = _clean_address(_split_type(block.get(name, ""))[1])
            if address:
                break
        diagnostic_type, diagnostic = _split_type(block.get("diagnostic-code", ""))
        hits.append(
            _Hit(
                address=address,
                diagnostic=diagnostic,
                status=_find_status(block.get("status", "")),
                action=(block.get("action", "").split() or [""])[0].lower(),
                diagnostic_type=diagnostic_type,
                structured=True,
                reason=_POWERMTA_CATEGORIES.get(block.get("x-powermta-bouncecategory", ""), ""),
            )
        )
    return hits


# PowerMTA classifies each failure itself; its categories map onto our reasons.
_POWERMTA_CATEGORIES = {
    "bad-mailbox": "userunknown",
    "bad-domain": "hostunknown",
    "inactive-mailbox": "suspend",
    "quota-issues": "mailboxfull",
    "message-expired": "expired",
    "no-answer-from-host": "expired",
    "bad-connection": "networkerror",
    "routing-errors": "systemerror",
    "relaying-issues": "norelaying",
    "spam-related": "spamdetected",
    "virus-related": "virusdetected",
    "content-related": "contenterror",
    "policy-related": "policyviolation",
    "invalid-sender": "rejected",
}


def _split_type(value: str) -> tuple[str, str]:
    """Split "smtp; 550 5.1.1 ..." or "rfc822; user@example.com" into type and value."""
    head, sep, tail = value.partition(";")
    if sep and re.fullmatch(r"\s*[\w.-]+\s*", head):
        return head.strip().lower(), tail.strip()
    return "", value.strip()


def _cut_original_dsn(text: str) -> str:
    # Only the part before the copy of the original message: its own headers are not ours.
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _ORIGINAL_MARKER_RE.match(line):
            return "\n".join(lines[:index])
    return text


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
    for header in sent.get("headers") or []:
        if isinstance(header, dict) and header.get("name"):
            original[str(header["name"])] = str(header.get("value", ""))
    common = sent.get("commonHeaders") or {}
    if "Message-ID" not in original and isinstance(common, dict) and common.get("messageId"):
        original["Message-ID"] = str(common["messageId"])
    return original


def _ses_hits(data: dict[str, Any]) -> list[_Hit]:
    kind = data.get("notificationType")
    hits: list[_Hit] = []
    if kind == "Bounce":
        for item in (data.get("bounce") or {}).get("bouncedRecipients") or []:
            hits.append(
                _Hit(
                    address=_clean_address(str(item.get("emailAddress", ""))),
                    diagnostic=_split_type(str(item.get("diagnosticCode", "")))[1],
                    status=_find_status(str(item.get("status", ""))),
                    action=str(item.get("action", "")),
                    structured=True,
                )
            )
    elif kind == "Delivery":
        delivery = data.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        for address in delivery.get("recipients") or []:
            hits.append(_Hit(address=_clean_address(str(address)), diagnostic=response))
    return hits


# --- Mailing-list managers that refuse a post -------------------------------------------------


def _mailing_list_error(mail: _Mail) -> _Hit | None:
    msg = mail.msg
    if not (msg.get("X-MLServer") or msg.get("X-ML-Server") or msg.get("X-ML-Name")):
        return None
    if re.search(r"(?i)\bnot\s+(?:a\s+)?member\b", mail.subject):
        reason = "rejected"
    elif re.search(r"(?i)\bloop\b", mail.subject):
        reason = "systemerror"
    else:
        return None
    return _Hit(address=mail.from_address, diagnostic=mail.subject, reason=reason)


# --- Plain-text reports ----------------------------------------------------------------------

# A line that names a failed recipient, in the shapes MTAs print it. The optional "diag" group
# is diagnostic text that shares the line with the address.
_RECIPIENT_LINE_RES = (
    # Sendmail transcript: "550 <user@example.com>... User unknown"
    re.compile(rf"^\s*(?P<code>\d{{3}})\s+<(?P<addr>{ADDRESS})>\.\.\.\s*(?P<diag>.*)$"),
    # An SMTP transcript: "RCPT TO:<user@example.com>"
    re.compile(rf"(?i)^\s*(?:In:|>>>|Sent\s*<<<)?\s*RCPT\s+TO:\s*<(?P<addr>{ADDRESS})>"),
    # The address alone, maybe quoted, bracketed, bulleted, with a trailing colon or date.
    re.compile(
        rf"""^\s*(?:[*-]\s*|Recipient:\s*)?["'<]?(?P<addr>{ADDRESS})[>"']?
        (?:\s*<mailto:[^>]*>)?\s*:?\s*
        (?:on\s+\S.*|\((?:unrecoverable\s+error|expanded\s+from[^)]*)\)|\[(?P<diag>[^\]]*)\])?\s*$""",
        re.IGNORECASE | re.VERBOSE,
    ),
    # "<user@example.com>: 550 5.1.1 ..." (OpenSMTPD, MXLogic, Postfix text)
    re.compile(rf"""^\s*["<]?(?P<addr>{ADDRESS})[">]?:\s+(?P<diag>\S.*)$"""),
    # "user@example.com ... unknown host"
    re.compile(rf"^\s*(?P<addr>{ADDRESS})\s+\.\.\.\s+(?P<diag>.+)$"),
    # A sentence that names the address: "Could not be delivered to: <user@example.com>"
    re.compile(
        rf"""(?ix)(?:could\s+not\s+be\s+delivered\s+to|unable\s+to\s+deliver\s+(?:message\s+)?to
        |error\s+delivering\s+your\s+mail\s+to|did\s+not\s+reach\s+the\s+following\s+recipient
        |rejected\s+recipient|returned\s+permanent\s+errors|delivery\s+to
        |wasn't\s+delivered\s+to|was\s+not\s+delivered\s+to)
        \s*:?\s*["<]?(?P<addr>{ADDRESS})[>"]?[.,]?(?P<diag>.*)$"""
    ),
    # "User mailbox exceeds allowed size: user@example.com"
    re.compile(rf"""^\s*(?P<diag>[A-Za-z][^:<>@]{{5,}}):\s*<?(?P<addr>{ADDRESS})>?\s*$"""),
    # "user@example.com Invalid Address, ERROR_CODE :550, ..." (Zoho)
    re.compile(rf"^(?P<addr>{ADDRESS})\s+(?P<diag>[A-Za-z].*)$"),
)
# Lines after which a recipient's diagnostic is over: boilerplate, not the error.
_BLOCK_END_RE = re.compile(
    r"""(?ix)^\s*(?:\*{5,}|no\s+action\s+is\s+required|рекомендуем|please\s|if\s+you\s
    |for\s+(?:further|more)\s|the\s+attachment\s+contains|included\s+is\s+a\s+copy
    |this\s+message\s+was\s+created\s+automatically)"""
)


def _text_hits(mail: _Mail) -> tuple[list[_Hit], str]:
    """Hits from the lines that name failed addresses, and the text that precedes them."""
    diagnostics: dict[str, list[str]] = {}
    naming_lines: dict[str, list[str]] = {}
    preamble: list[str] = []
    current: list[str] | None = None
    open_block = False
    for line in mail.report_text.splitlines():
        match = _match_recipient_line(line)
        if match is not None:
            address, diagnostic, complete = match
            current = diagnostics.setdefault(address, [])
            current.append(diagnostic)
            # The naming line itself may tell the command: "RCPT TO:<user@example.org>".
            naming_lines.setdefault(address, []).append(line)
            open_block = not complete
        elif current is None:
            preamble.append(line)
        elif _BLOCK_END_RE.match(line):
            open_block = False
        elif open_block and len(current) < MAX_BLOCK_LINES:
            current.append(line)
    hits = [
        _Hit(address=address, diagnostic=_join(*lines), context=_join(*naming_lines[address]))
        for address, lines in diagnostics.items()
    ]
    # The bounce's own recipient and the original sender are named too ("a message sent by
    # <you>"), but they are not the ones that failed, unless nobody else is named.
    senders = {*mail.to_addresses, *_original_senders(mail.original)}
    found = [hit for hit in hits if hit.address not in senders]
    return found or hits, _join(*preamble[-MAX_BLOCK_LINES:])


def _original_senders(original: Message | None) -> list[str]:
    if original is None:
        return []
    return _addresses([*_header_all(original, "From"), *_header_all(original, "Return-Path")])


def _match_recipient_line(line: str) -> tuple[str, str, bool] | None:
    """(address, diagnostic on the line, whether the line is the whole diagnostic)."""
    if len(line) > 1000 or "@" not in line:
        return None
    for pattern in _RECIPIENT_LINE_RES:
        match = pattern.search(line)
        if match:
            groups = match.groupdict()
            address = match.group("addr").lower().strip(".")
            diagnostic = (groups.get("diag") or "").strip(" .:,")
            if groups.get("code"):
                # Sendmail's "550 <user@host>... User unknown": one line per recipient, and the
                # lines before it belong to the next one.
                if not _find_reply_code(diagnostic):
                    diagnostic = _join(groups["code"], diagnostic)
                return address, diagnostic, True
            return address, diagnostic, False
    return None


def _fallback_hits(mail: _Mail, evidence: str) -> list[_Hit]:
    """A bounce that names no recipient in its text: use X-Failed-Recipients or the original."""
    report = _join(*mail.report_text.splitlines())[:3000]
    names_an_error = _names_an_error(report)
    if not names_an_error and evidence != STRONG:
        return []  # nothing but a subject says this is a bounce: it is not one
    addresses = _addresses(_header_all(mail.msg, "X-Failed-Recipients"))
    if not addresses and mail.original is not None:
        addresses = _addresses(_header_all(mail.original, "To"))[:1]
    if not addresses:
        if evidence != STRONG or not names_an_error:
            return []
        addresses = [""]  # a mail system reports an error for someone it does not name
    # Nothing here is the recipient's own diagnostic: the report is context only.
    return [_Hit(address=a, context=report, named=False) for a in addresses]


# --------------------------------------------------------------------------------------------
# Codes, commands and reasons
# --------------------------------------------------------------------------------------------

_STATUS_RE = re.compile(r"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?!\w|\.\d)")
_REPLY_RE = re.compile(r"(?<![\w.\-/=#])([2-5]\d\d)(?=[\s\-:,;)\]]|$)")
# Reply codes that SMTP servers really send; other 3-digit numbers are sizes, ids, counts.
_REPLY_CODES = frozenset(
    str(code)
    for code in (
        *(211, 214, 220, 221, 235, 250, 251, 252, 253, 354),
        *(421, 422, 430, 432, 450, 451, 452, 453, 454, 455, 458, 459),
        *(500, 501, 502, 503, 504, 521, 523, 524, 525, 530, 534, 535, 538),
        *(550, 551, 552, 553, 554, 555, 556, 557),
    )
)


def _find_status(text: str) -> str:
    """The most telling RFC 3463 code in the text: failures first, generic "X.0.0" last."""
    codes = [".".join(m.groups()) for m in _STATUS_RE.finditer(text)]
    codes = [c for c in codes if c[0] in "45"] or codes
    specific = [c for c in codes if not c.endswith(".0.0") and c != "4.4.7"]
    found = ""
    for code in specific or codes[:1]:
        found = _prefer_status(found, code, "") if found else code
    return found


def _find_reply_code(text: str, status: str = "") -> str:
    codes = [m.group(1) for m in _REPLY_RE.finditer(text) if m.group(1) in _REPLY_CODES]
    if status:
        # A reply code of another class than the status belongs to another exchange.
        return next((c for c in codes if c[0] == status[0]), "")
    failures = [c for c in codes if c[0] in "45"]
    return (failures or codes or [""])[0]


def _prefer_status(field_status: str, in_text: str, reply_code: str) -> str:
    """Choose between the Status: field and the code in the diagnostic text."""
    if not field_status or field_status == in_text:
        return in_text or field_status
    if not in_text:
        return field_status
    if reply_code and field_status[0] != in_text[0]:
        return in_text if reply_code[0] == in_text[0] else field_status
    if field_status.endswith(".0.0"):
        return field_status if in_text.endswith(".0.0") else in_text
    if ".0" in field_status and ".0" not in in_text:
        return in_text  # "X.0.0", "X.Y.0" or "X.0.Z" says less than the text
    if in_text.endswith(".0.0"):
        return field_status
    # Codes that MTAs use for whatever went wrong; the text usually knows better.
    if field_status in ("4.4.7", "4.7.0") or field_status[:3] == "5.3":
        return in_text
    if field_status[1:4] in (".5.1", ".5.2", ".5.4", ".5.5"):
        return in_text
    if field_status == "5.1.1":
        return field_status if ".0" in in_text or in_text.startswith("5.5.") else in_text
    if field_status == "5.1.3" and in_text.startswith("5.7."):
        return in_text
    return field_status


# The SMTP command a server was answering, as MTAs word it in their reports.
_COMMAND_RES = (
    (
        "RCPT",
        r"(?:after|in\s+reply\s+to|following|our)\s+RCPT|does\s+not\s+like\s+recipient"
        r"|RCPT\s+TO\s+response|\[RCPT_TO\]|SMTP:RCPT|>>>\s*RCPT|Sent\s*<<<\s*RCPT|RCPT\s+command",
    ),
    ("MAIL", r"(?:after|in\s+reply\s+to|our)\s+MAIL\s+FROM|sender\s+was\s+rejected|\[MAIL_FROM\]"),
    (
        "DATA",
        r"(?:after|in\s+reply\s+to|our)\s+(?:end\s+of\s+|final\s+)?DATA|\(DATA\)"
        r"|failed\s+after\s+I\s+sent\s+the\s+message|SMTP\s+command\W+DATA\b|>>>\s*DATA",
    ),
    ("HELO", r"my\s+name\s+was\s+rejected|(?:after|in\s+reply\s+to)\s+(?:HELO|EHLO)|>>>\s*[EH]LO"),
    ("CONN", r"after\s+initial\s+connection|connection\s+greeting|greeting\s+from"),
)
_COMMAND_RE = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern in _COMMAND_RES), re.IGNORECASE
)


def _smtp_command(text: str) -> str:
    match = _COMMAND_RE.search(text)
    return (match.lastgroup or "") if match else ""


# Reasons read from the diagnostic text, tried in order; the first match wins. The order puts
# what the receiving side says about the mailbox (full, moved, disabled) before what it says
# about the address, and the address before the sender or the connection.
REASON_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        (
            "mailboxfull",
            r"mailbox\s+(?:is\s+)?full|over\s*quota|quota\s+(?:exceeded|full)|exceeds?\s+allowed\s+size"
            r"|mail\s*folder\s+is\s+full|mailbox\s+exceeded|disk\s+quota|mailbox\s+size\s+limit"
            r"|messages\s+in\s+recipient'?s\s+mailbox\s+exceeded|user\s+is\s+over|quota\s+exceeded",
        ),
        (
            "mesgtoobig",
            r"message\s+(?:is\s+)?too\s+(?:big|large)|message\s+size\s+exceeds|size\s+limit\s+exceeded"
            r"|exceeds?\s+(?:the\s+)?(?:maximum|max)\s+(?:message\s+)?size",
        ),
        ("exceedlimit", r"message\s+length\s+exceeds\s+administrative\s+limit"),
        (
            "suspend",
            r"(?:account|mailbox|address|user)(?:\s+\w+)?\s+(?:is\s+|has\s+been\s+)?"
            r"(?:disabled|suspended|locked|inactive|deactivated|frozen)"
            r"|disabled\s+recipient|account\s+disabled",
        ),
        ("hasmoved", r"has\s+moved|no\s+forwarding\s+address"),
        (
            "norelaying",
            r"relay(?:ing)?\s+(?:access\s+)?(?:denied|not\s+permitted|not\s+allowed)"
            r"|not\s+permitted\s+to\s+relay|no\s+relaying|unable\s+to\s+relay",
        ),
        (
            "authfailure",
            r"\bdmarc\b|\bspf\b|\bdkim\b|sender\s+policy\s+framework|authentication\s+checks\s+failed",
        ),
        ("filtered", r"recipient\s+preferences|message\s+filtered|content\s+filter|user\s+reject"),
        (
            "userunknown",
            r"user\s*unknown|unknown\s+(?:user|recipient|local\s+part|mailbox)"
            r"|no\s+such\s+(?:user|mailbox|recipient|account|person)"
            r"|(?:user|recipient|mailbox|address)\s+(?:not\s+found|does\s*n[o']t\s+exist|unknown|not\s+exist)"
            r"|recipientnotfound|recipnotfound|recipient\s+name\s+is\s+not\s+recognized"
            r"|not\s+listed\s+in\s+(?:the\s+)?(?:domino\s+directory|public\s+name)"
            r"|doesn't\s+have\s+an?\s+\S+\s+account|invalid\s+final\s+delivery|illegal\s+user"
            r"|bad\s+destination\s+mailbox|recipient\s+address\s+rejected:\s+access\s+denied"
            r"|no\s+mailbox\s+here|account\s+that\s+you\s+tried\s+to\s+reach\s+does\s+not\s+exist"
            r"|invalid\s+(?:recipient|mailbox)|address\s+(?:wasn.t|was\s+not|couldn.t\s+be)\s+found"
            r"|mailbox\s+unavailable|no\s+valid\s+recipients|check\s+if\s+(?:the\s+)?address\s+is\s+correct"
            r"|recipient\s+address\s+rejected\.?\s*(?:\(in\s+reply|$)"
            r"|utilisateur\s+inconnu|destinataire\s+(?:inconnu|invalide)|usuario\s+desconocido"
            r"|unbekannte[rn]?\s+(?:empf[äa]nger|benutzer)|ディレクトリには見つかりません"
            r"|(?:ユーザ|宛先|アドレス)\S{0,8}(?:存在しません|見つかりません)",
        ),
        (
            "requireptr",
            r"reverse\s+dns|\bptr\b|\brdns\b|reverse\s+(?:dns\s+)?lookup|unverif(?:y|i)able\s+sending"
            r"|ip\s+name\s+lookup\s+failed|mismatches\s+client\s+ip",
        ),
        (
            "notcompliantrfc",
            r"rfc\s*5322|rfc\s*2822|not\s+(?:rfc\s+)?compliant|multiple\s+\S+\s+headers"
            r"|multiple\s+addresses\s+in\s+from",
        ),
        ("badreputation", r"reputation|unexpected\s+volume\s+or\s+user\s+complaints"),
        ("contenterror", r"media\s+error|content\s+error|invalid\s+header|8-bit\s+data"),
        (
            "rejected",
            r"sender\s+(?:address\s+)?(?:was\s+)?rejected|unroutable\s+sender|sender\s+verify\s+failed"
            r"|invalid\s+sender|bad\s+sender|domain\s+is\s+invalid|sender\s+domain"
            r"|address\s+that\s+has\s+been\s+blacklisted|not\s+a\s+member",
        ),
        (
            "hostunknown",
            r"host\s+unknown|unknown\s+host|domain\s+(?:does\s+not\s+exist|not\s+found|name\s+not\s+found)"
            r"|host\s+(?:or\s+domain\s+name\s+|\S+\s+)?not\s+found|couldn't\s+find\s+a\s+mail\s+exchanger"
            r"|bad\s+destination\s+system|name\s+or\s+service\s+not\s+known|unrouteable\s+address"
            r"|no\s+(?:mx|a)\s+record|domain\s+is\s+not\s+reachable|nxdomain|no\s+such\s+domain",
        ),
        ("virusdetected", r"\bvirus|malware|infected"),
        (
            "spamdetected",
            r"\bspam\b|unsolicited|bulk\s+e-?mail|junk\s+mail|\bUBE\b|content\s+rejected",
        ),
        (
            "speeding",
            r"rate\s+limit|too\s+many\s+messages|sending\s+too\s+fast|throttl|at\s+a\s+rate",
        ),
        ("toomanyconn", r"too\s+many\s+(?:connections|concurrent|sessions|recipients)"),
        (
            "blocked",
            r"\bblocked\b|black\s*list|block\s*list|banned|access\s+denied|client\s+host\s+rejected"
            r"|\bdnsbl\b|\brbl\b|smtp\s+server\s+of\s+your\s+isp|not\s+allowed\s+to\s+send"
            r"|refused\s+to\s+talk|your\s+e-?mail\s+is\s+redundant|invalid\s+domain\s+name",
        ),
        (
            "policyviolation",
            r"policy\s+(?:reasons|violation)|violat\w+\s+\S*\s*policy|content\s+policy"
            r"|denied\s+by\s+policy|protocol\s+violation|potential\s+security\s+issue",
        ),
        (
            "systemerror",
            r"system\s+error|internal\s+(?:server\s+)?error|server\s+error"
            r"|queue\s+file\s+write\s+error|service\s+(?:currently\s+)?unavailable"
            r"|does\s+not\s+support\s+tls",
        ),
        (
            "securityerror",
            r"\btls\b|starttls|certificate|authentication\s+required|unauthenticated"
            r"|smtp\s+authentication",
        ),
        ("systemfull", r"system\s+(?:is\s+)?full|insufficient\s+(?:system\s+storage|disk\s+space)"),
        (
            "notaccept",
            r"does\s+not\s+accept\s+mail|null\s+mx|no\s+smtp\s+service"
            r"|not\s+accepting\s+(?:any\s+)?(?:e-?mail|mail|messages|network\s+messages)",
        ),
        (
            "expired",
            r"retry\s+timeout\s+exceeded|in\s+the\s+queue\s+too\s+long|message\s+expired"
            r"|delivery\s+time\s+expired|could\s+not\s+deliver\s+for\s+the\s+last|giving\s+up"
            r"|after\s+multiple\s+retries|failed\s+\d+\s+attempts|envelope\s+expired"
            r"|cannot\s+send\s+message\s+for|failing\s+for\s+a\s+long\s+time|aborted\s+after"
            r"|has\s+been\s+delayed|will\s+be\s+retried|not\s+yet\s+been\s+delivered"
            r"|unable\s+to\s+deliver\s+this\s+message\s+after|connection\s+timed\s+out|socket\s+error",
        ),
        (
            "networkerror",
            r"connection\s+(?:refused|reset)|no\s+route\s+to\s+host|network\s+unreachable"
            r"|lost\s+connection|name\s+server|host\s+name\s+lookup\s+failure|dns\s+(?:error|query)"
            r"|too\s+many\s+hops|hop\s+count|routing\s+loop|mail\s+loop|loop\s+detected",
        ),
        ("mailererror", r"mailer\s+error|pipe\s+to\s+\||procmail|exit\s+code|mail\.local"),
        ("syntaxerror", r"syntax\s+error|malformed\s+(?:recipient\s+)?address"),
    )
)

# RFC 3463 status codes that name a reason by themselves.
STATUS_REASONS = {
    "4.1.6": "hasmoved",
    "4.2.1": "blocked",
    "4.2.2": "mailboxfull",
    "4.2.3": "exceedlimit",
    "4.3.0": "systemerror",
    "4.3.1": "systemfull",
    "4.3.2": "notaccept",
    "4.4.1": "expired",
    "4.4.2": "networkerror",
    "4.4.4": "networkerror",
    "4.4.5": "systemfull",
    "4.4.6": "networkerror",
    "4.4.7": "expired",
    "4.7.1": "blocked",
    "4.7.25": "requireptr",
    "4.7.26": "authfailure",
    "5.1.0": "userunknown",
    "5.1.1": "userunknown",
    "5.1.2": "hostunknown",
    "5.1.3": "userunknown",
    "5.1.4": "filtered",
    "5.1.6": "hasmoved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.10": "notaccept",
    "5.2.0": "filtered",
    "5.2.1": "filtered",
    "5.2.2": "mailboxfull",
    "5.2.3": "exceedlimit",
    "5.2.4": "filtered",
    "5.3.0": "systemerror",
    "5.3.1": "systemfull",
    "5.3.2": "notaccept",
    "5.3.4": "mesgtoobig",
    "5.3.5": "systemerror",
    "5.4.0": "networkerror",
    "5.4.3": "systemerror",
    "5.4.4": "hostunknown",
    "5.5.3": "toomanyconn",
    "5.6.0": "contenterror",
    "5.6.1": "contenterror",
    "5.7.13": "suspend",
    "5.7.17": "hasmoved",
    "5.7.18": "hasmoved",
    "5.7.20": "authfailure",
    "5.7.21": "authfailure",
    "5.7.22": "authfailure",
    "5.7.23": "authfailure",
    "5.7.24": "authfailure",
    "5.7.25": "requireptr",
    "5.7.26": "authfailure",
    "5.7.27": "notaccept",
}

# When a report carries no status code, one is derived from the reason: "X.0.9nn", the
# convention of the test corpus (Sisimai's), so "5.0.911" reads "permanent, no standard code,
# user unknown". A reason without an entry gets a bare "X.0.0".
REASON_STATUS = {
    "authfailure": "926",
    "badreputation": "975",
    "blocked": "971",
    "contenterror": "960",
    "exceedlimit": "923",
    "expired": "947",
    "filtered": "910",
    "hasmoved": "916",
    "hostunknown": "912",
    "mailboxfull": "922",
    "mailererror": "939",
    "mesgtoobig": "934",
    "networkerror": "944",
    "norelaying": "909",
    "notaccept": "932",
    "notcompliantrfc": "974",
    "onhold": "901",
    "policyviolation": "972",
    "rejected": "918",
    "requireptr": "973",
    "securityerror": "970",
    "spamdetected": "980",
    "speeding": "946",
    "suspend": "921",
    "syntaxerror": "902",
    "systemerror": "930",
    "systemfull": "931",
    "toomanyconn": "945",
    "undefined": "900",
    "userunknown": "911",
    "virusdetected": "981",
}
# Reasons that are never transient: their derived code stays permanent.
_PERMANENT_ONLY = frozenset({"userunknown", "hostunknown", "hasmoved"})


def reason_from_text(diagnostic: str) -> str:
    """The failure class that the diagnostic text names, or "" if it names none."""
    for reason, pattern in REASON_PATTERNS:
        if pattern.search(diagnostic):
            return reason
    return ""


def reason_from_status(status: str) -> str:
    """The failure class that an RFC 3463 status code names by itself, or ""."""
    if status.startswith("2."):
        return "delivered"
    return STATUS_REASONS.get(status, "")


@dataclass(frozen=True)
class _Evidence:
    status: str  # explicit, from the report ("" when there is none)
    reply_code: str
    command: str
    action: str
    diagnostic_type: str
    structured: bool


def _reason_in(text: str, evidence: _Evidence) -> str:
    reason = reason_from_text(text)
    if reason in ("userunknown", "hostunknown") and evidence.command == "MAIL":
        return "rejected"  # the server refused our sender address, not the recipient
    if reason == "userunknown" and not _confirms_unknown_user(text, evidence):
        # A content filter refuses a message with a "user unknown" too; said after DATA it
        # is no proof that the mailbox does not exist.
        return "filtered"
    if reason == "hostunknown" and (evidence.status or evidence.reply_code).startswith("4"):
        return "networkerror"  # a DNS failure the sender will retry: not a dead domain
    return reason


# Wordings that only a recipient lookup produces, whatever the stage of the session.
_DEFINITE_UNKNOWN_USER_RE = re.compile(
    r"(?i)doesn't\s+have\s+an?\s+\S+\s+account|destinataire\s+invalide|resolver\.adr\.recip"
    r"|account\s+that\s+you\s+tried\s+to\s+reach\s+does\s+not\s+exist"
)


def _confirms_unknown_user(text: str, evidence: _Evidence) -> bool:
    by_status = reason_from_status(evidence.status)
    if by_status == "userunknown" or evidence.command == "RCPT":
        return True
    if _DEFINITE_UNKNOWN_USER_RE.search(text):
        return True
    if evidence.command == "DATA" or by_status == "filtered":
        return False
    if evidence.reply_code and not evidence.structured:
        return False  # an SMTP reply quoted in prose, at an unknown stage of the session
    # "550 : User unknown": a reply that names no mailbox comes from a filter, not a lookup.
    return not re.search(r"(?i)\b[45]\d\d\s*:?\s*:\s*user\s+unknown", text)


def _decide_reason(diagnostic: str, context: str, evidence: _Evidence, named: bool) -> str:
    if evidence.status.startswith("2."):
        return "delivered"
    if evidence.diagnostic_type == "x-unix":
        # A local delivery program (procmail, a pipe) failed, maybe for want of space.
        reason = reason_from_text(diagnostic)
        return reason if reason in ("mailboxfull", "systemfull") else "mailererror"
    reason = _reason_in(diagnostic, evidence) or reason_from_status(evidence.status)
    reason = reason or _reason_in(context, evidence)
    if reason:
        return reason
    if evidence.command in ("HELO", "CONN"):
        return "blocked"  # refused before any address was given: the client was refused
    if evidence.status[1:3] == ".6":
        return "contenterror"
    if evidence.status[1:3] == ".7":
        return "securityerror"
    if evidence.action in ("delayed", "expired"):
        return "expired"
    # A recipient the report names, for reasons it does not give, is on hold; one we had to
    # guess from the original message, with no diagnostic at all, is undefined.
    return "onhold" if diagnostic or (named and context) else "undefined"


def _unfold_reply(diagnostic: str, reply_code: str, status: str) -> str:
    """Turn a multi-line reply ("550-5.7.1 Our system ... 550-5.7.1 this message ...") into
    one sentence, so that wording split across its lines can still be matched."""
    if not reply_code or f"{reply_code}-" not in diagnostic:
        return diagnostic
    head = diagnostic.find(reply_code)
    prefix = rf"\b{reply_code}[- ](?:{re.escape(status)}\s)?" if status else rf"\b{reply_code}[- ]"
    unfolded = re.sub(prefix, "", diagnostic[head:])
    return _join(diagnostic[:head], reply_code, status if status in diagnostic else "", unfolded)


def _is_temporary(reply_code: str, text: str) -> bool:
    if reply_code:
        return reply_code.startswith("4")
    # Exim gives up on an address whose deliveries kept failing temporarily.
    return bool(
        re.search(r"(?i)\btemporar|\bpersistent|retry\s+timeout\s+exceeded|been\s+failing", text)
    )


def _recipient(hit: _Hit) -> FailedRecipient:
    diagnostic = _join(hit.diagnostic)
    context = _join(hit.context)
    # Codes come from the recipient's own text, or from the report when that says nothing.
    coded = diagnostic if _find_status(diagnostic) or _find_reply_code(diagnostic) else context
    in_text = _find_status(coded)
    status = _prefer_status(hit.status, in_text, _find_reply_code(coded))
    reply_code = _find_reply_code(coded, status)
    diagnostic = _unfold_reply(diagnostic, reply_code, status)
    evidence = _Evidence(
        status=status,
        reply_code=reply_code,
        command=_smtp_command(diagnostic) or _smtp_command(context),
        action=hit.action.lower(),
        diagnostic_type=hit.diagnostic_type,
        structured=hit.structured,
    )
    reason = hit.reason or _decide_reason(diagnostic, context, evidence, hit.named)
    if not status:
        temporary = _is_temporary(reply_code, _join(diagnostic, context))
        klass = "4" if temporary and reason not in _PERMANENT_ONLY else "5"
        status = f"{klass}.0.{REASON_STATUS.get(reason, '0')}"
    hard = reason in HARD_REASONS or (reason == "notaccept" and not status.startswith("4"))
    return FailedRecipient(
        address=hit.address,
        status=status,
        reply_code=reply_code,
        diagnostic=(diagnostic or context)[:MAX_DIAGNOSTIC],
        hard=hard,
        reason=reason,
    )


# --------------------------------------------------------------------------------------------
# Auto-replies and replies
# --------------------------------------------------------------------------------------------

# Subjects that auto-responders put in front of the original subject.
_AUTO_SUBJECT_RE = re.compile(
    r"""(?ix)^\s*[\[(]?\s*(?:
    auto(?:matic|matische|matisk)?[\s_-]*(?:reply|response|answer|antwort|responder|svar)
    |autoreply|auto\s*:|out\s+of\s+(?:the\s+)?office|away\s+from\s+(?:the\s+)?office
    |(?:on\s+)?vacation\s*(?:reply|message|notice|response|:)|abwesenheit|abwesend
    |r[ée]ponse\s+automatique|absence|respuesta\s+autom[aá]tica|fuera\s+de\s+la\s+oficina
    |risposta\s+automatica|fuori\s+ufficio|automatisch\s+antwoord|afwezig
    |resposta\s+autom[aá]tica|ausente|自動応答|自動返信|不在|자동\s*응답|автоответ|自动回复
    )"""
)
# Out-of-office wording, trusted only from a message that also looks machine-sent: a person
# may well write "I'm out of the office next week" in a reply.
_AUTO_BODY_RE = re.compile(
    r"""(?ix)
    \bout\s+of\s+(?:the\s+)?office\b|\bi\s+am\s+(?:currently\s+)?(?:away|on\s+vacation|on\s+leave)
    |\bi(?:'m|\s+am)\s+(?:currently\s+)?out\s+of|\bon\s+(?:annual\s+)?leave\s+until\b
    |\bthis\s+is\s+an\s+auto(?:matic|mated)?[\s-]*(?:reply|response|generated\s+reply)
    |\bich\s+bin\s+(?:bis|vom|derzeit|zurzeit)?.{0,40}\babwesend|\bnicht\s+im\s+b[üu]ro
    |\bje\s+suis\s+absent|\bestar[eé]\s+fuera\s+de\s+la\s+oficina|\bsono\s+assente
    """
)
_REPLY_SUBJECT_RE = re.compile(r"(?i)^\s*(?:re|aw|sv|antw|odp|vs|r)\s*(?:\[\d+\])?\s*:")
_FORWARD_SUBJECT_RE = re.compile(r"(?i)^\s*(?:fwd?|wg|tr|rv|fw)\s*:")


def _is_auto_reply(mail: _Mail) -> bool:
    msg = mail.msg
    if _header(msg, "Auto-Submitted").lower().startswith("auto-replied"):
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponder"):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    if _header(msg, "X-Autogenerated").lower() == "reply":
        return True
    if _AUTO_SUBJECT_RE.search(mail.subject):
        return True
    machine_sent = (
        _header(msg, "Return-Path").strip() == "<>"
        or bool(msg.get("X-Auto-Response-Suppress"))
        or _header(msg, "Precedence").lower() in ("bulk", "junk", "list")
    )
    return machine_sent and bool(_AUTO_BODY_RE.search(mail.report_text[:1000]))


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str
    date: datetime | None


def message_content(raw: bytes) -> Content:
    """A reply's subject, text and HTML bodies and Date, for storing it; never raises."""
    try:
        msg = message_from_bytes(raw[:MAX_TEXT], policy=email_policy.default)
        subject = str(msg.get("Subject", "") or "")
        parts = {}
        for kind in ("plain", "html"):
            part = msg.get_body(preferencelist=(kind,))
            parts[kind] = part.get_content() if part is not None else ""
        try:
            date = parsedate_to_datetime(str(msg.get("Date", "")))
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        return Content(subject[:998], str(parts["plain"]), str(parts["html"]), date)
    except Exception:
        return Content("", raw[:MAX_TEXT].decode("utf-8", "replace"), "", None)
