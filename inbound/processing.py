"""Processing one inbound message: match it to the recipient copy it answers, then act on it.

A message arrives from a source (IMAP, the MTA pipe, see inbound.sources), is classified by
inbound.parsing, matched by VERP address, the X-Openrate-Token header or Message-IDs, and its
effects applied (inbound.effects); it is stored as an InboundMessage, Processed or Unmatched.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm import hooks
from crm.models import EmailMessageRelation
from crm.privacy_changes import unsubscribe_record
from inbound.effects import bounce_record, complaint_record, reply_record
from inbound.models import InboundMessage
from inbound.parsing import ParsedMessage, classify_message, message_content
from mailkit.tokens import configured_keys, from_verp, parse_token

# A message is stored as received, cut at this size (a bounce quoting a huge original).
MAX_RAW = 2 * 1024 * 1024
_VERP = re.compile(r"^bounces\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
# A list email's mailto unsubscribe (crm.delivery.list_unsubscribe_headers): to
# unsubscribe+<token>@<VERP domain>, or to the sender with "unsubscribe <token>" as subject.
_UNSUBSCRIBE_ADDRESS = re.compile(r"^unsubscribe\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_-]+)\s*$", re.IGNORECASE)


def inbound_mail_process(*, raw: bytes, source: str) -> InboundMessage:
    """Read one message that came back, match it to what was sent, and act on it.

    Idempotent: the same message (by content) is processed once. A message that matches
    nothing is kept, marked Unmatched, for a person to look at.
    """
    fingerprint = hashlib.sha256(raw).hexdigest()
    existing = InboundMessage.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return existing
    parsed = classify_message(raw)
    now = timezone.now()
    with transaction.atomic():
        relation = _match(parsed)
        note, created_email = "", None
        unsubscribing = (
            _unsubscribe_request(parsed) if parsed.kind not in ("bounce", "complaint") else None
        )
        if unsubscribing is not None:
            relation = unsubscribing
            unsubscribe_record(relation=relation)
            note = f"unsubscribe request from {parsed.from_address}"
        elif parsed.kind == "bounce":
            note = _apply_bounces(parsed, relation, now)
        elif parsed.kind == "complaint" and (relation or parsed.recipients):
            address = relation.address if relation else parsed.recipients[0].address
            complaint_record(relation=relation, address=address, feedback_type=parsed.feedback_type)
            note = f"complaint ({parsed.feedback_type or 'abuse'}) from {address}"
        elif parsed.kind in ("reply", "auto_reply") and relation is not None:
            content = message_content(raw)
            created_email = reply_record(
                original=relation,
                from_address=parsed.from_address,
                subject=content.subject or parsed.subject,
                html_body=content.html,
                text_body=content.text,
                message_id=parsed.message_id,
                received_at=content.date or now,
                is_auto_reply=parsed.kind == "auto_reply",
            )
            hooks.engagement_counted(relation_ids=[relation.pk])
            what = "auto-reply" if parsed.kind == "auto_reply" else "reply"
            note = f"{what} from {parsed.from_address}"
        matched = bool(note)
        try:
            with transaction.atomic():
                return InboundMessage.objects.create(
                    fingerprint=fingerprint,
                    source=source,
                    kind=parsed.kind,
                    status=InboundMessage.Status.PROCESSED
                    if matched
                    else InboundMessage.Status.UNMATCHED,
                    note=(note or parsed.reason or "matches no email Openrate sent")[:255],
                    message_id=parsed.message_id[:255],
                    from_address=parsed.from_address[:255],
                    subject=parsed.subject[:998],
                    relation=relation,
                    created_email=created_email,
                    raw=raw[:MAX_RAW],
                )
        except IntegrityError:
            # Another worker stored the same message first; undo ours, keep theirs.
            transaction.set_rollback(True)
    return InboundMessage.objects.get(fingerprint=fingerprint)


def _unsubscribe_request(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The recipient copy a mailto unsubscribe names by its signed token, if it is one."""
    tokens = [
        from_verp(m.group(1)) for a in parsed.to_addresses if (m := _UNSUBSCRIBE_ADDRESS.match(a))
    ]
    if subject := _UNSUBSCRIBE_SUBJECT.match(parsed.subject):
        tokens.append(subject.group(1))
    keys = configured_keys()
    for token in tokens:
        data = parse_token(token, keys=keys)
        if data is not None:
            relation = (
                EmailMessageRelation.objects.select_related("contact", "lead")
                .filter(pk=data.recipient_id)
                .first()
            )
            if relation is not None:
                return relation
    return None


def _match(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The recipient copy a message is about: VERP address, token header, then Message-IDs."""
    keys = configured_keys()
    tokens = [from_verp(m.group(1)) for a in parsed.to_addresses if (m := _VERP.match(a))]
    tokens += [parsed.original_headers.get("X-Openrate-Token", "").strip()]
    for token in tokens:
        data = parse_token(token, keys=keys) if token else None
        if data is not None:
            found = EmailMessageRelation.objects.filter(pk=data.recipient_id).first()
            if found is not None:
                return found
    ids = [i for i in (parsed.original_message_id, *parsed.in_reply_to) if i]
    if ids:
        found = (
            EmailMessageRelation.objects.filter(message_id__in=ids)
            .exclude(relation_type=EmailMessageRelation.Type.FROM)
            .order_by("-pk")
            .first()
        )
        if found is not None:
            return found
        sender = parsed.from_address.lower()
        found = (
            EmailMessageRelation.objects.filter(
                email__message_identifier__in=ids, address__iexact=sender
            )
            .exclude(relation_type=EmailMessageRelation.Type.FROM)
            .first()
        )
        if found is not None:
            return found
    return None


def _apply_bounces(
    parsed: ParsedMessage, relation: EmailMessageRelation | None, now: datetime
) -> str:
    notes = []
    for failed in parsed.recipients or ():
        target = relation
        if target is None or (failed.address and failed.address != target.address.lower()):
            # The report names another address: find that recipient's copy.
            target = (
                EmailMessageRelation.objects.filter(address__iexact=failed.address)
                .exclude(relation_type=EmailMessageRelation.Type.FROM)
                .filter(**({"email_id": relation.email_id} if relation else {}))
                .order_by("-pk")
                .first()
            ) or (relation if not failed.address else None)
        if target is None:
            continue
        suppressed = bounce_record(
            relation=target,
            hard=failed.hard,
            status=failed.status,
            diagnostic=failed.diagnostic,
            when=now,
        )
        kind = "hard" if failed.hard else "soft"
        notes.append(f"{kind} bounce {target.address}{' (suppressed)' if suppressed else ''}")
    return "; ".join(notes)
