"""Classify raw inbound mail (bounces, complaints, auto-replies, replies); imports no Django."""

from inbound.parsing.classify import classify_message
from inbound.parsing.reasons import HARD_REASONS, reason_from_status, reason_from_text
from inbound.parsing.replies import Content, message_content
from inbound.parsing.results import FailedRecipient, ParsedMessage

__all__ = [
    "HARD_REASONS",
    "Content",
    "FailedRecipient",
    "ParsedMessage",
    "classify_message",
    "message_content",
    "reason_from_status",
    "reason_from_text",
]
