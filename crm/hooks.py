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

One registry, read rather than called on a change:

- email_campaigns(user=...): the campaigns the composer offers under "Campaign" (campaigns
  registers campaigns.apps.campaigns_for_email). A registry rather than an import because crm
  sits below campaigns: the composer gets a QuerySet it can offer and validate against without
  knowing the model; with nothing registered the composer offers no campaign.
"""

from __future__ import annotations

from collections.abc import Collection
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


class CampaignsProvider(Protocol):
    def __call__(self, *, user: User) -> QuerySet[Any]: ...


_engagement_counted: list[RelationsHook] = []
_setup_changed: list[FieldsHook] = []
_lead_converted: list[ConversionHook] = []
_campaigns_provider: list[CampaignsProvider] = []


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
