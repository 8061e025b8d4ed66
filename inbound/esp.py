"""ESP webhooks (django-anymail) read into Arrivals for inbound.processing: a tracking event
(bounce, complaint, unsubscribe, delivery, open, click), a message an ESP's inbound route
received, and a payload anymail could not read, kept for a person to look at."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from email.errors import MessageError
from typing import Any

from django.http import HttpRequest, RawPostDataException

from inbound.models import InboundMessage
from inbound.parsing import FailedRecipient, ParsedMessage, is_hard, reason_from_text
from inbound.processing import Arrival, EspFacts, inbound_mail_process, inbound_process

# Anymail's event types that mean what inbound mail's kinds mean.
_KINDS = {"bounced": "bounce", "complained": "complaint"}


def esp_event_process(*, event: Any, esp_name: str) -> InboundMessage:
    """An ESP's tracking event, matched by the token our copy carried in its metadata."""
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    token = str(metadata.get("openrate_token") or "")
    event_type = str(event.event_type or "")
    kind = _KINDS.get(event_type, event_type)
    recipient = str(event.recipient or "")
    address = recipient.strip().lower()
    if len(address) > 254 or "@" not in address:  # no address, whatever the payload says
        address = ""
    detail = str(event.mta_response or event.description or event.reject_reason or "")
    reason = {"complaint": "feedback", "delivered": "delivered"}.get(kind, reason_from_text(detail))
    named = FailedRecipient(
        address=address,
        status="",
        reply_code="",
        diagnostic=detail,
        # anymail's "bounced" is a permanent failure: the taxonomy decides if the address is dead.
        hard=event.reject_reason == "invalid" or (kind == "bounce" and is_hard(reason, "5")),
        reason=reason,
    )
    raw = payload_bytes(event.esp_event)
    # An ESP retries with the same event id; an event without one is known by its payload.
    identity = f"{esp_name}:{event.event_id}:{event_type}:{recipient}" if event.event_id else ""
    fingerprint = hashlib.sha256(
        identity.encode("utf-8", "surrogatepass") or f"{esp_name}:".encode() + raw
    ).hexdigest()
    return inbound_process(
        Arrival(
            source=InboundMessage.Source.WEBHOOK,
            fingerprint=fingerprint,
            raw=raw,
            parsed=ParsedMessage(
                kind=kind,
                recipients=(named,) if recipient or detail else (),
                feedback_type="abuse" if kind == "complaint" else "",
                message_id=str(event.message_id or ""),
                original_headers={"X-Openrate-Token": token} if token else {},
                from_address=recipient,
            ),
            esp=EspFacts(
                esp_name=esp_name,
                event_type=event_type,
                click_url=str(getattr(event, "click_url", None) or ""),
                user_agent=str(getattr(event, "user_agent", None) or ""),
                timestamp=event.timestamp if isinstance(event.timestamp, datetime) else None,
            ),
        )
    )


def esp_inbound_process(*, event: Any, esp_name: str) -> InboundMessage:
    """A message an ESP's inbound route received: processed like one from the mailbox."""
    try:
        raw = event.message.as_bytes()
    except (ValueError, LookupError, TypeError, AttributeError, MessageError):
        # Anymail read it but cannot write it out again: keep what the ESP sent.
        raw = payload_bytes(event.esp_event)
    return inbound_mail_process(raw=raw, source=InboundMessage.Source.WEBHOOK)


def esp_payload_keep(*, esp_name: str, body: bytes, error: str) -> InboundMessage:
    """An authenticated webhook whose payload anymail could not read: kept, Unmatched."""
    return inbound_process(
        Arrival(
            source=InboundMessage.Source.WEBHOOK,
            fingerprint=hashlib.sha256(f"{esp_name}:".encode() + body).hexdigest(),
            raw=body,
            parsed=ParsedMessage(kind="other", reason=f"unreadable {esp_name} webhook: {error}"),
        )
    )


def payload_bytes(esp_event: Any) -> bytes:
    """What the ESP sent (its request, or the payload anymail read from it), to keep."""
    if isinstance(esp_event, HttpRequest):
        try:
            return esp_event.body
        except RawPostDataException:  # a multipart form, read as a stream
            esp_event = {name: esp_event.POST.getlist(name) for name in esp_event.POST}
    return json.dumps(esp_event, default=str).encode()
