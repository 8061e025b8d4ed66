"""Processing what comes back: match it to the recipient copy it answers, then act on it.

Every source hands over an Arrival: the MTA pipe, the IMAP mailbox and an ESP's inbound route
a raw message (inbound_mail_process), an ESP webhook an event (inbound.esp). One path takes
them all (inbound_process): the text is made storable (inbound.storable), the copy is matched
by proof that the message answers it, effects are applied only with that proof
(inbound.effects), and the arrival is stored as Processed or Unmatched with what it reports.

Proof is the VERP address or the X-Openrate-Token header (signed tokens), a Message-ID of ours
(In-Reply-To, References, the Message-ID a DSN or ARF report quotes), or, for an ESP event, the
webhook anymail authenticated. An address alone is no proof: anyone can name one. A bounce or
complaint without proof changes nothing and waits for an admin (inbound.review).

What answers a forgotten person's copy (dataprotection.forget), comes from a forgotten address,
or without proof names one (a bounce or complaint that would wait for an admin) is not applied
and not kept: no reply on their record, no bounce, complaint, suppression, open or click, and
the stored arrival keeps only its fingerprint (so it is processed once), kind and a note. All
of this is decided before anything is written. Their address is refused for sending already
(privacy.forgotten). A report naming a forgotten address beside others is dropped whole.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.db import DataError, IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm import hooks
from crm.models import EmailMessage, EmailMessageRelation
from crm.privacy_changes import unsubscribe_record
from crm.privacy_flags import relation_forgotten
from crm.tokens import relation_for_token
from inbound.effects import (
    bounce_record,
    complaint_record,
    delivery_report_record,
    esp_engagement_record,
    esp_unsubscribe_record,
    reply_record,
)
from inbound.models import InboundMessage
from inbound.parsing import Content, ParsedMessage, classify_message, message_content
from inbound.storable import storable
from mailkit.tokens import Purpose, from_verp
from privacy.forgotten import forgotten_among, forgotten_named_in, is_forgotten

logger = logging.getLogger(__name__)

# A message is stored as received, cut at this size (a bounce quoting a huge original).
MAX_RAW = 2 * 1024 * 1024
_VERP = re.compile(r"^bounces\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
# A list email's mailto unsubscribe (crm.delivery.list_unsubscribe_headers): to
# unsubscribe+<token>@<VERP domain>, or to the sender with "unsubscribe <token>" as subject.
_UNSUBSCRIBE_ADDRESS = re.compile(r"^unsubscribe\+([A-Za-z0-9_-]+)@", re.IGNORECASE)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_-]+)\s*$", re.IGNORECASE)
_REPLIES = ("reply", "auto_reply")


@dataclass(frozen=True)
class EspFacts:
    """What only an ESP event carries. Its webhook was authenticated by anymail."""

    esp_name: str
    event_type: str  # anymail's: "bounced", "opened", "delivered", ...
    click_url: str
    user_agent: str
    timestamp: datetime | None


@dataclass(frozen=True)
class Arrival:
    """One thing that came back, as its source hands it over: nothing of it is stored yet."""

    source: str  # InboundMessage.Source
    fingerprint: str  # the same fingerprint twice is processed once
    raw: bytes  # kept as received, cut at MAX_RAW
    parsed: ParsedMessage  # what it says; for an ESP event, read from the event
    content: Content | None = None  # a reply's subject, bodies and date
    esp: EspFacts | None = None


@dataclass(frozen=True)
class _Outcome:
    note: str = ""  # what was done; "" when nothing was
    refused: str = ""  # why its effects were undone
    relation: EmailMessageRelation | None = None
    created_email: EmailMessage | None = None
    forgotten: bool = False  # about a forgotten person: nothing of it is kept


# The note of an arrival about a forgotten person, and its outcome.
FORGOTTEN_NOTE = "not applied: it is about a forgotten person, so nothing of it was kept"
_FORGOTTEN = _Outcome(note=FORGOTTEN_NOTE, forgotten=True)


def kept_nothing(message: InboundMessage) -> bool:
    """The arrival was about a forgotten person: its source should not keep it either (the
    IMAP mailbox deletes it)."""
    return message.note == FORGOTTEN_NOTE


def inbound_mail_process(*, raw: bytes, source: str) -> InboundMessage:
    """Read one message that came back, match it to what was sent, and act on it.

    Idempotent: the same message (by content) is processed once. A message with no proof that
    it answers an email Openrate sent is kept, marked Unmatched, for a person to look at.
    """
    parsed = classify_message(raw)
    content = message_content(raw) if parsed.kind in _REPLIES else None
    fingerprint = hashlib.sha256(raw).hexdigest()
    return inbound_process(
        Arrival(source=source, fingerprint=fingerprint, raw=raw, parsed=parsed, content=content)
    )


def inbound_process(arrival: Arrival) -> InboundMessage:
    """The one path every source takes: storable text, proof, effects, then the stored record."""
    existing = InboundMessage.objects.filter(fingerprint=arrival.fingerprint).first()
    if existing is not None:
        return existing
    # Before any query: a NUL or lone surrogate is refused even as a query parameter.
    arrival = storable(arrival)
    parsed = arrival.parsed
    with transaction.atomic():
        try:
            with transaction.atomic():
                outcome = _act(arrival, timezone.now())
        except DataError as error:
            # Something in it the database refuses (a value too long for its column): its
            # effects are undone, and the message is kept for a person rather than lost.
            logger.exception("Inbound %s: effects not applied", arrival.fingerprint)
            outcome = _Outcome(refused=f"not applied, the database refused it: {error}")
        if not outcome.note and not outcome.forgotten and forgotten_named_in(arrival.raw):
            # Unmatched, it would wait whole for an admin with a forgotten address in it (a
            # webhook payload no one could read, someone's message about them): the forget
            # deletes such messages kept before it. Nothing of it was applied.
            outcome = _FORGOTTEN
        if outcome.forgotten:
            arrival = _forgotten_arrival(arrival)
            parsed = arrival.parsed
        try:
            with transaction.atomic():
                return InboundMessage.objects.create(
                    fingerprint=arrival.fingerprint,
                    source=arrival.source,
                    kind=parsed.kind[:12],
                    status=InboundMessage.Status.PROCESSED
                    if outcome.note
                    else InboundMessage.Status.UNMATCHED,
                    note=(
                        outcome.note
                        or outcome.refused
                        or _unmatched_note(arrival, outcome.relation)
                    )[:255],
                    message_id=parsed.message_id[:255],
                    from_address=parsed.from_address[:255],
                    subject=parsed.subject[:998],
                    relation=outcome.relation,
                    created_email=outcome.created_email,
                    raw=arrival.raw[:MAX_RAW],
                    report=_report(parsed),
                )
        except IntegrityError:
            # Another worker stored the same message first; undo ours, keep theirs.
            transaction.set_rollback(True)
    return InboundMessage.objects.get(fingerprint=arrival.fingerprint)


def _act(arrival: Arrival, now: datetime) -> _Outcome:
    """Apply what the arrival reports, if it proves which copy it answers."""
    parsed, esp = arrival.parsed, arrival.esp
    if esp is None:
        # Mail to an address a higher app owns (a user's capture Bcc address) is that app's.
        claim = hooks.mail_claimed(
            to_addresses=parsed.to_addresses, from_address=parsed.from_address, raw=arrival.raw
        )
        if claim is not None:
            if claim.refused:
                return _Outcome(refused=claim.note)
            # Linked to the email it became, so a forget or an export finds it.
            created = None
            if claim.email_id is not None:
                created = EmailMessage.objects.filter(pk=claim.email_id).first()
            return _Outcome(note=claim.note, created_email=created)
    if parsed.from_address and is_forgotten(parsed.from_address):
        return _FORGOTTEN
    if esp is None and parsed.kind != "bounce":
        unsubscribing = _unsubscribe_request(parsed)
        if unsubscribing is not None:
            if relation_forgotten(unsubscribing):
                return _FORGOTTEN
            unsubscribe_record(relation=unsubscribing)
            note = f"unsubscribe request from {parsed.from_address}"
            return _Outcome(note=note, relation=unsubscribing)
    relation = _match(parsed)
    if relation is not None and relation_forgotten(relation):
        return _FORGOTTEN
    if relation is None and forgotten_among(r.address for r in parsed.recipients):
        # A report with no proof naming a forgotten address would wait, whole, for an admin.
        return _FORGOTTEN
    if parsed.kind == "complaint" and relation is None and esp is not None:
        # An authenticated ESP webhook is proof enough for the address it names.
        address = next((r.address for r in parsed.recipients if r.address), "")
        if address:
            complaint_record(relation=None, address=address, feedback_type=parsed.feedback_type)
            return _Outcome(note=f"complaint reported by {esp.esp_name}")
    if relation is None:
        return _Outcome()
    note, created_email = "", None
    if parsed.kind == "bounce":
        note = _bounce(parsed, relation, now)
        if note and esp is not None:
            note = f"{note} reported by {esp.esp_name}"
    elif parsed.kind == "complaint":
        complaint_record(
            relation=relation, address=relation.address, feedback_type=parsed.feedback_type
        )
        where = f"reported by {esp.esp_name}" if esp else f"from {relation.address}"
        note = f"complaint ({parsed.feedback_type or 'abuse'}) {where}"
    elif parsed.kind in _REPLIES and arrival.content is not None:
        created_email = _reply(parsed, arrival.content, relation, now)
        what = "auto-reply" if parsed.kind == "auto_reply" else "reply"
        note = f"{what} from {parsed.from_address}"
    elif esp is not None:
        note = _esp_report(esp, parsed, relation, now)
    return _Outcome(note=note, relation=relation, created_email=created_email)


def _forgotten_arrival(arrival: Arrival) -> Arrival:
    """The arrival as it is stored when it is about a forgotten person: its fingerprint (so a
    second delivery is recognised), source and kind; no address, subject, text or report."""
    return Arrival(
        source=arrival.source,
        fingerprint=arrival.fingerprint,
        raw=b"",
        parsed=ParsedMessage(kind=arrival.parsed.kind),
    )


def _bounce(parsed: ParsedMessage, relation: EmailMessageRelation, now: datetime) -> str:
    """The proven copy bounced: a report about another address is no proof about that one."""
    address = relation.address.lower()
    failed = next(
        (r for r in parsed.recipients if r.address in ("", address) and r.reason != "delivered"),
        None,
    )
    if failed is None:
        return ""
    suppressed = bounce_record(
        relation=relation,
        hard=failed.hard,
        status=failed.status,
        diagnostic=failed.diagnostic,
        when=now,
    )
    kind = "hard" if failed.hard else "soft"
    return f"{kind} bounce {relation.address}{' (suppressed)' if suppressed else ''}"


def _reply(
    parsed: ParsedMessage, content: Content, relation: EmailMessageRelation, now: datetime
) -> EmailMessage:
    created = reply_record(
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
    return created


def _esp_report(
    esp: EspFacts, parsed: ParsedMessage, relation: EmailMessageRelation, now: datetime
) -> str:
    """What only an ESP reports: opens and clicks, unsubscribes, delivery."""
    when = esp.timestamp or now
    if esp.event_type in ("opened", "clicked"):
        return esp_engagement_record(
            relation=relation,
            event_type=esp.event_type,
            click_url=esp.click_url,
            user_agent=esp.user_agent,
            when=when,
        )
    if esp.event_type == "unsubscribed":
        return esp_unsubscribe_record(relation=relation, esp_name=esp.esp_name, when=when)
    if esp.event_type in ("delivered", "deferred"):
        note = f"{esp.event_type} ({esp.esp_name})"
        detail = next((r.diagnostic for r in parsed.recipients if r.diagnostic), note)
        delivery_report_record(relation=relation, kind=esp.event_type, detail=detail, when=when)
        return note
    return ""


def _copy_for_token(token: str) -> EmailMessageRelation | None:
    """The copy a return token (VERP suffix, X-Openrate-Token, ESP metadata) names, if valid."""
    return relation_for_token(token, Purpose.RETURN, _copies())


def _unsubscribe_request(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The recipient copy a mailto unsubscribe names by its signed token, if it is one."""
    tokens = [
        from_verp(m.group(1)) for a in parsed.to_addresses if (m := _UNSUBSCRIBE_ADDRESS.match(a))
    ]
    if subject := _UNSUBSCRIBE_SUBJECT.match(parsed.subject):
        tokens.append(subject.group(1))
    for token in tokens:
        if (relation := relation_for_token(token, Purpose.UNSUBSCRIBE, _copies())) is not None:
            return relation
    return None


def _copies() -> QuerySet[EmailMessageRelation]:
    return EmailMessageRelation.objects.select_related("contact", "lead")


def _match(parsed: ParsedMessage) -> EmailMessageRelation | None:
    """The copy a message proves it answers: VERP address, token header, then Message-IDs."""
    tokens = [from_verp(m.group(1)) for a in parsed.to_addresses if (m := _VERP.match(a))]
    tokens += [parsed.original_headers.get("X-Openrate-Token", "").strip()]
    for token in tokens:
        if (found := _copy_for_token(token)) is not None:
            return found
    ids = [i for i in (parsed.original_message_id, *parsed.in_reply_to) if i]
    if not ids:
        return None
    # Only copies of email we sent: a received reply's Message-ID was chosen by its sender, and
    # its "To" row is the rep, so matching it would let anyone who once replied bounce the rep.
    copies = EmailMessageRelation.objects.exclude(
        relation_type=EmailMessageRelation.Type.FROM
    ).filter(email__incoming=False)
    found = copies.filter(message_id__in=ids).order_by("-pk").first()
    if found is not None or not parsed.from_address:
        # No sender to tell the copy by: a blank one would name the copies a forget blanked.
        return found
    return copies.filter(
        email__message_identifier__in=ids, address__iexact=parsed.from_address
    ).first()


def _report(parsed: ParsedMessage) -> dict[str, object]:
    """What the message names, kept so an admin can apply an Unmatched one (inbound.review)."""
    if not parsed.recipients:
        return {}
    recipients = [
        {"address": r.address, "status": r.status, "diagnostic": r.diagnostic, "hard": r.hard}
        for r in parsed.recipients
        if r.reason != "delivered"
    ]
    report: dict[str, object] = {"recipients": recipients}
    if parsed.kind == "complaint":
        report["feedback_type"] = parsed.feedback_type or "abuse"
    return report


def _unmatched_note(arrival: Arrival, relation: EmailMessageRelation | None) -> str:
    parsed, esp = arrival.parsed, arrival.esp
    named = ", ".join(dict.fromkeys(r.address for r in parsed.recipients if r.address))
    if relation is not None:
        if parsed.kind == "bounce" and named:
            return f"bounce names {named}, not the copy it answers ({relation.address})"
        what = f"{esp.esp_name} {esp.event_type}" if esp else parsed.kind
        return parsed.reason or f"{what}: nothing to do"
    if parsed.kind in ("bounce", "complaint") and named:
        return f"{parsed.kind} for {named} with no proof it answers our email: review, then apply"
    if esp is not None:
        return f"{esp.esp_name} {esp.event_type}: matches no email Openrate sent"
    return parsed.reason or "matches no email Openrate sent"
