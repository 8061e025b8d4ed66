"""Hooks: how an app above crm reacts to a change made below it, in the same transaction.

An app never imports one above it (see docs/architecture.md). Where a lower app must let a
higher one react, it calls a hook here, and the higher app registers its function in its
AppConfig.ready(). The call is synchronous, inside the caller's transaction: the reaction
commits or rolls back with the change that caused it.

- engagement_counted(relation_ids=...): tracking's ingestion stored opens or clicks on these
  recipients' copies of campaign emails, or inbound recorded a reply: campaigns moves its
  members along the funnel (campaigns.members.members_advance).
- setup_changed(fields=...): Setup saved these fields: tracking queues a recount of every
  email's opens and clicks when machine-open filtering switched or the internal addresses and
  IP ranges changed (tracking.recount.recount_when_setup_changed).
- lead_converted(lead_id=..., contact_id=...): crm.conversion converted this lead into this
  contact: campaigns moves the lead's memberships to the contact, merging any the contact
  already has (campaigns.members.members_convert).

- mail_claimed(to_addresses=..., from_address=..., raw=...): inbound received a message (by
  any route but an ESP event): an app that owns one of its addresses takes it and says what it
  did, and inbound stores the message with that note instead of matching it to a sent copy
  (capture takes mail to a user's Bcc address: capture.bcc.bcc_mail_claim).

- timeline_entries(record=..., window=..., position=..., limit=...) and
  email_origins(email_ids=...): read while a timeline page is built: automation adds a
  Contact's or Lead's enrolment history and names the sequence step or rule behind an
  automated email (automation.history).

One registry, read rather than called on a change:

- email_campaigns(user=...): the campaigns the composer offers under "Campaign" (campaigns
  registers campaigns.apps.campaigns_for_email). A registry rather than an import because crm
  sits below campaigns: the composer gets a QuerySet it can offer and validate against without
  knowing the model; with nothing registered the composer offers no campaign.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from crm.models import User


class RelationsHook(Protocol):
    def __call__(self, *, relation_ids: Collection[int]) -> None: ...


class FieldsHook(Protocol):
    def __call__(self, *, fields: Collection[str]) -> None: ...


class ConversionHook(Protocol):
    def __call__(self, *, lead_id: int, contact_id: int) -> None: ...


@dataclass(frozen=True)
class Claim:
    """What the app that took an inbound message did with it; refused: kept as Unmatched."""

    note: str
    refused: bool = False
    email_id: int | None = None  # the email it became: the inbound message links to it


class MailClaimHook(Protocol):
    def __call__(
        self, *, to_addresses: Collection[str], from_address: str, raw: bytes
    ) -> Claim | None: ...


class CampaignsProvider(Protocol):
    def __call__(self, *, user: User) -> QuerySet[Any]: ...


_engagement_counted: list[RelationsHook] = []
_setup_changed: list[FieldsHook] = []
_lead_converted: list[ConversionHook] = []
_campaigns_provider: list[CampaignsProvider] = []
_mail_claimed: list[MailClaimHook] = []


def on_engagement_counted(hook: RelationsHook) -> None:
    """Register a function called with the relation ids whose engagement was counted."""
    if hook not in _engagement_counted:
        _engagement_counted.append(hook)


def on_setup_changed(hook: FieldsHook) -> None:
    """Register a function called with the names of the Setup fields a save changed."""
    if hook not in _setup_changed:
        _setup_changed.append(hook)


def on_email_campaigns(provider: CampaignsProvider) -> None:
    """Register the one function that lists the campaigns an email may be filed under."""
    _campaigns_provider[:] = [provider]


def on_lead_converted(hook: ConversionHook) -> None:
    """Register a function called with a converted lead's id and its new contact's id."""
    if hook not in _lead_converted:
        _lead_converted.append(hook)


def on_mail_claimed(hook: MailClaimHook) -> None:
    """Register a function that may take an inbound message addressed to it."""
    if hook not in _mail_claimed:
        _mail_claimed.append(hook)


def mail_claimed(*, to_addresses: Collection[str], from_address: str, raw: bytes) -> Claim | None:
    """The first registered app's claim on the message, or None when none takes it."""
    for hook in _mail_claimed:
        claim = hook(to_addresses=to_addresses, from_address=from_address, raw=raw)
        if claim is not None:
            return claim
    return None


def engagement_counted(*, relation_ids: Collection[int]) -> None:
    for hook in _engagement_counted:
        hook(relation_ids=relation_ids)


def setup_changed(*, fields: Collection[str]) -> None:
    for hook in _setup_changed:
        hook(fields=fields)


def lead_converted(*, lead_id: int, contact_id: int) -> None:
    for hook in _lead_converted:
        hook(lead_id=lead_id, contact_id=contact_id)


def email_campaigns(*, user: User) -> QuerySet[Any] | None:
    """The campaigns this user may file an email under, or None when no app offers any."""
    return _campaigns_provider[0](user=user) if _campaigns_provider else None


# The Activity Timeline's readers from apps above crm (automation registers both): what a
# record's timeline shows of them, read when a page is built, never on a change.


class TimelineEntriesSource(Protocol):
    def __call__(self, *, record: Any, window: Any, position: Any, limit: int) -> list[Any]: ...


class EmailOriginsSource(Protocol):
    def __call__(self, *, email_ids: Collection[int]) -> dict[int, str]: ...


_timeline_entries: list[TimelineEntriesSource] = []
_email_origins: list[EmailOriginsSource] = []


def on_timeline_entries(source: TimelineEntriesSource) -> None:
    """Register a function giving a Contact's or Lead's timeline entries of its own kind (at
    most `limit + 1` before the cursor `position`, within `window`: crm.timeline.Entry rows)."""
    if source not in _timeline_entries:
        _timeline_entries.append(source)


def on_email_origins(source: EmailOriginsSource) -> None:
    """Register a function naming what sent automated emails ("Sequence X, step 2")."""
    if source not in _email_origins:
        _email_origins.append(source)


def timeline_entries(*, record: Any, window: Any, position: Any, limit: int) -> list[Any]:
    return [
        entry
        for source in _timeline_entries
        for entry in source(record=record, window=window, position=position, limit=limit)
    ]


def email_origins(*, email_ids: Collection[int]) -> dict[int, str]:
    origins: dict[int, str] = {}
    for source in _email_origins:
        origins.update(source(email_ids=email_ids))
    return origins
