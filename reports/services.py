"""Retention of the email log: delivery, open and click events older than Setup's months."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Model
from django.utils import timezone

from crm.models import EmailEvent, OrgSettings
from crm.rollups import months_before
from tracking.models import TrackingEvent

# Rows deleted per statement: short transactions, so ingestion and sending never wait long.
PRUNE_CHUNK = 10_000


def email_log_prune(*, now: datetime | None = None, chunk: int = PRUNE_CHUNK) -> int:
    """Delete log events older than Setup's retention, a chunk per statement; returns how many.

    The rollups keep their counts: dashboards still show the months the log no longer holds.
    """
    months = OrgSettings.load().email_log_retention_months
    cutoff = months_before(now or timezone.now(), months)
    return sum(_delete_before(model, cutoff, chunk) for model in (EmailEvent, TrackingEvent))


def _delete_before(model: type[Model], cutoff: datetime, chunk: int) -> int:
    manager: Any = model._default_manager
    deleted = 0
    while True:
        # The occurred_at index finds the oldest rows; deleting by primary key keeps it cheap.
        ids = manager.filter(occurred_at__lt=cutoff).order_by().values("pk")[:chunk]
        count, _ = manager.filter(pk__in=list(ids.values_list("pk", flat=True))).delete()
        deleted += count
        if count < chunk:
            return deleted
