"""The audit trail: every privacy and configuration change, appended, never edited.

Callers name the target by kind and id ("Contact #12", "Setup"), never by a person's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from privacy.models import AuditEntry


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def audit_record(
    *,
    actor: Any,
    action: str,
    target: str,
    field: str = "",
    before: Any = None,
    after: Any = None,
    note: str = "",
) -> AuditEntry:
    """Append one entry. `actor` is a user or None (a job, a recipient's unsubscribe)."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        action=action,
        target=target[:120],
        field=field[:80],
        before=_text(before),
        after=_text(after),
        note=note[:255],
    )


def audit_changes(
    *,
    actor: Any,
    action: str,
    target: str,
    changes: Iterable[tuple[str, Any, Any]],
    note: str = "",
) -> list[AuditEntry]:
    """Append one entry per (field, before, after), in one INSERT."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    entries = [
        AuditEntry(
            actor=user,
            actor_name=user.get_username() if user is not None else "",
            action=action,
            target=target[:120],
            field=field[:80],
            before=_text(before),
            after=_text(after),
            note=note[:255],
        )
        for field, before, after in changes
    ]
    return AuditEntry.objects.bulk_create(entries)
