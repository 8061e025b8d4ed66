"""Classifying raw message bytes: a complaint, a bounce, an auto-reply, a reply or other.

A pure module: it reads raw RFC 5322 bytes with the standard library's ``email`` package and
imports nothing from Django, so it can run anywhere (a management command, a Celery task, a
test) and be fed any bytes at all.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

from inbound.parsing.bounces import bounce_recipients
from inbound.parsing.complaints import find_complaint
from inbound.parsing.message import header, message_ids, original_fields, parse
from inbound.parsing.replies import REPLY_SUBJECT_RE, is_auto_reply
from inbound.parsing.results import ParsedMessage


def classify_message(raw: bytes) -> ParsedMessage:
    """Classify raw message bytes; never raises, whatever the input."""
    try:
        return _classify(raw)
    except Exception as exc:  # a classifier fed by the outside world must not crash its caller
        return ParsedMessage(kind="other", reason=f"unreadable: {type(exc).__name__}: {exc}"[:200])


def _classify(raw: bytes) -> ParsedMessage:
    if not isinstance(raw, bytes | bytearray):
        raise TypeError("raw message must be bytes")
    if not raw.strip():
        return ParsedMessage(kind="other", reason="unreadable: empty message")
    mail = parse(bytes(raw))
    base: dict[str, Any] = {
        "message_id": next(iter(message_ids(header(mail.msg, "Message-ID"))), ""),
        "in_reply_to": _in_reply_to(mail.msg),
        "to_addresses": mail.to_addresses,
        "from_address": mail.from_address,
        "subject": mail.subject,
        "original_headers": original_fields(mail.original),
    }
    base["original_message_id"] = next(
        iter(message_ids(base["original_headers"].get("Message-ID", ""))), ""
    )

    complaint = find_complaint(mail)
    if complaint is not None:
        feedback_type, recipients = complaint
        return ParsedMessage(
            kind="complaint", recipients=recipients, feedback_type=feedback_type, **base
        )

    recipients = bounce_recipients(mail)
    if recipients:
        if all(r.reason == "delivered" for r in recipients):
            return ParsedMessage(
                kind="other", recipients=recipients, reason="delivery report", **base
            )
        return ParsedMessage(kind="bounce", recipients=recipients, **base)

    if is_auto_reply(mail):
        return ParsedMessage(kind="auto_reply", **base)
    if base["in_reply_to"] or REPLY_SUBJECT_RE.match(mail.subject):
        return ParsedMessage(kind="reply", **base)
    return ParsedMessage(kind="other", reason="not a reply", **base)


def _in_reply_to(msg: Message) -> tuple[str, ...]:
    ids: list[str] = []
    for name in ("In-Reply-To", "References"):
        for message_id in message_ids(header(msg, name)):
            if message_id not in ids:
                ids.append(message_id)
    return tuple(ids)
