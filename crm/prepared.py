"""A batch of emails made from one body, one person each (a list email's, a sequence step's):
written in bulk and handed to delivery as written.

crm.sending.emails_prepare_each decides who may get what (Setup, privacy, the daily limit) and
fills each person's merge values; `prepared_record` writes the emails, their relation rows,
their tracked links and the email log's Queued events with a few statements (crm.sql's
`rows_insert`: COPY on PostgreSQL), building no model instance per row. The batch keeps what
delivery needs to render each copy (crm.delivery, `prepared=`), so nothing is read back.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from crm.email_events import email_events_record
from crm.models import EmailEvent, EmailMessage, EmailMessageRelation, TrackedLink, User
from crm.sql import rows_insert
from mailkit.merge import has_fields, header_address, merge
from mailkit.rewrite import find_links
from mailkit.stencil import Stencil

Relation = EmailMessageRelation


@dataclass(slots=True)
class PreparedCopy:
    """One person's email and their copy of it, as written."""

    address: str
    name: str
    contact_id: int | None
    lead_id: int | None
    values: dict[str, str]  # their merge values (delivery fills the copy with them)
    subject: str  # filled, as stored on the email
    html: str
    text: str
    to_header: str
    may_send: bool
    refusal_reason: str
    is_tracked: bool
    untracked_reason: str
    message_id: str
    message_identifier: str
    destinations: list[str] | None  # its links', when known before it was filled
    email_id: int = 0
    relation_id: int = 0
    links: dict[str, int] = field(default_factory=dict)
    honeypot: int | None = None
    delivery_status: str = Relation.Delivery.PENDING  # set by delivery


@dataclass
class PreparedBatch:
    """The emails of one emails_prepare_each, in the order of its people."""

    sender: User
    source: str
    campaign_id: int | None
    template_id: int | None
    stencil: Stencil | None  # the body read once (None: each copy is rendered the long way)
    copies: list[PreparedCopy]
    created_at: datetime = field(default_factory=timezone.now)

    @functools.cached_property
    def from_header(self) -> str:
        """The From header every copy carries."""
        sender = self.sender
        return header_address(sender.get_full_name(), sender.email)

    @property
    def email_ids(self) -> list[int]:
        return [copy.email_id for copy in self.copies]

    @property
    def pending(self) -> list[PreparedCopy]:
        """The copies to deliver (not refused), in email order."""
        return [copy for copy in self.copies if copy.may_send]

    def emails(self) -> list[EmailMessage]:
        """The emails as model instances, for callers that keep them (sequences, tests)."""
        emails = []
        for copy in self.copies:
            email = EmailMessage(pk=copy.email_id, **_email_values(self, copy))
            email._state.adding = False
            email._state.db = "default"
            emails.append(email)
        return emails


def prepared_record(batch: PreparedBatch) -> None:
    """Write the batch's emails, relations, tracked links and Queued events; sets the ids."""
    email_fields = list(_email_values(batch, batch.copies[0])) if batch.copies else []
    email_ids = rows_insert(
        EmailMessage,
        email_fields,
        [tuple(_email_values(batch, copy).values()) for copy in batch.copies],
        ids=True,
    )
    for copy, email_id in zip(batch.copies, email_ids, strict=True):
        copy.email_id = email_id
    sender = batch.sender
    sender_name = sender.get_full_name()
    relation_rows: list[tuple[object, ...]] = []
    for copy in batch.copies:
        relation_rows.append(
            (
                *(copy.email_id, Relation.Type.FROM, sender.email, sender_name, {}),
                *(None, None, sender.pk, Relation.Delivery.SENT, "", False, "", ""),
            )
        )
        relation_rows.append(
            (
                *(copy.email_id, Relation.Type.TO, copy.address, copy.name, _kept(copy)),
                *(copy.contact_id, copy.lead_id, None),
                Relation.Delivery.PENDING if copy.may_send else Relation.Delivery.REFUSED,
                copy.refusal_reason,
                copy.is_tracked,
                copy.untracked_reason,
                copy.message_id,
            )
        )
    relation_ids = rows_insert(
        Relation,
        [
            "email_id",
            "relation_type",
            "address",
            "name",
            "merge_values",
            "contact_id",
            "lead_id",
            "user_id",
            "delivery_status",
            "refusal_reason",
            "is_tracked",
            "untracked_reason",
            "message_id",
        ],
        relation_rows,
        ids=True,
    )
    for copy, relation_id in zip(batch.copies, relation_ids[1::2], strict=True):
        copy.relation_id = relation_id
    email_events_record(
        kind=EmailEvent.Kind.QUEUED, relation_ids=[copy.relation_id for copy in batch.pending]
    )
    link_rows: list[tuple[int, str, int, bool]] = []
    for copy in batch.copies:
        if copy.is_tracked:
            destinations = _destinations(copy)
            link_rows += [(copy.email_id, url, at, False) for at, url in enumerate(destinations)]
            # The honeypot leads somewhere harmless of ours: only a machine ever follows it.
            link_rows.append(
                (copy.email_id, f"{settings.TRACKING_BASE_URL}/", len(destinations), True)
            )
    link_ids = rows_insert(
        TrackedLink, ["email_id", "url", "position", "is_honeypot"], link_rows, ids=True
    )
    by_email = {copy.email_id: copy for copy in batch.copies}
    for link_id, (email_id, url, _, is_honeypot) in zip(link_ids, link_rows, strict=True):
        if is_honeypot:
            by_email[email_id].honeypot = link_id
        else:
            by_email[email_id].links[url] = link_id


def _email_values(batch: PreparedBatch, copy: PreparedCopy) -> dict[str, object]:
    """The email's fields as crm.sending's _draft sets them for one recipient."""
    sender = batch.sender
    return {
        "subject": copy.subject,
        "html_body": copy.html,
        "text_body": copy.text,
        "from_address": sender.email,
        "from_name": sender.get_full_name(),
        "to_addresses": copy.to_header,
        "status": EmailMessage.Status.DRAFT,
        "delivery_status": (
            EmailMessage.Delivery.QUEUED if copy.may_send else EmailMessage.Delivery.FAILED
        ),
        "failure_reason": (
            ""
            if copy.may_send
            else f"No recipient may receive this email: {copy.address} ({copy.refusal_reason})"
        ),
        "source": batch.source,
        "is_tracked": copy.is_tracked,
        "message_identifier": copy.message_identifier,
        "thread_identifier": copy.message_identifier,
        "sender_id": sender.pk,
        "campaign_id": batch.campaign_id,
        "template_id": batch.template_id,
        "created_at": batch.created_at,
    }


def _kept(copy: PreparedCopy) -> dict[str, str]:
    """The merge values kept on the copy: only when what it was filled with still holds a
    field (a value that looks like one), as crm.sending's _draft keeps them."""
    return copy.values if has_fields(f"{copy.subject}\n{copy.html}") else {}


def _destinations(copy: PreparedCopy) -> list[str]:
    """Its tracked links' destinations, as crm.sending's _links_of finds them."""
    if copy.destinations is not None:
        return copy.destinations
    body = copy.html
    if has_fields(body):
        body = merge(body, copy.values, as_html=True)
    return list(dict.fromkeys(find_links(body)))


def copies_of(batch: PreparedBatch, email_ids: Sequence[int]) -> list[PreparedCopy]:
    """The batch's pending copies of these emails."""
    wanted = set(email_ids)
    return [copy for copy in batch.pending if copy.email_id in wanted]
