"""Classify raw inbound mail (bounces, complaints, auto-replies, replies); imports no Django."""

from inbound.parsing.classify import classify_message
from inbound.parsing.reasons import reason_from_text
from inbound.parsing.replies import Content, message_content
from inbound.parsing.results import FailedRecipient, ParsedMessage
from inbound.parsing.taxonomy import TAXONOMY, is_hard, reason_from_status

__all__ = [
    "TAXONOMY",
    "Content",
    "FailedRecipient",
    "ParsedMessage",
    "classify_message",
    "is_hard",
    "message_content",
    "reason_from_status",
    "reason_from_text",
]
