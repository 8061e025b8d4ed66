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
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class RelationsHook(Protocol):
    def __call__(self, *, relation_ids: Collection[int]) -> None: ...


class FieldsHook(Protocol):
    def __call__(self, *, fields: Collection[str]) -> None: ...


_engagement_counted: list[RelationsHook] = []
_setup_changed: list[FieldsHook] = []


def on_engagement_counted(hook: RelationsHook) -> None:
    """Register a function called with the relation ids whose engagement was counted."""
    if hook not in _engagement_counted:
        _engagement_counted.append(hook)


def on_setup_changed(hook: FieldsHook) -> None:
    """Register a function called with the names of the Setup fields a save changed."""
    if hook not in _setup_changed:
        _setup_changed.append(hook)


def engagement_counted(*, relation_ids: Collection[int]) -> None:
    for hook in _engagement_counted:
        hook(relation_ids=relation_ids)


def setup_changed(*, fields: Collection[str]) -> None:
    for hook in _setup_changed:
        hook(fields=fields)
