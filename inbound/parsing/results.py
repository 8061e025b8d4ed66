"""The results of classifying a message: what it is, and the recipients a report is about."""

from __future__ import annotations

from dataclasses import dataclass, field


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
class ParsedMessage:
    """What classify_message makes of one inbound message."""

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
