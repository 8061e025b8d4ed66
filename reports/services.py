"""Retention of the email log: delivery, open and click events older than Setup's months."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Model
from django.utils import timezone

from crm.models import EmailEvent, OrgSettings
from crm.partitions import partitions_drop_before
from crm.rollups import months_before
from tracking.models import TrackingEvent

# Rows deleted per statement: short transactions, so ingestion and sending never wait long.
PRUNE_CHUNK = 10_000


def email_log_prune(*, now: datetime | None = None, chunk: int = PRUNE_CHUNK) -> int:
    """Delete log events older than Setup's retention, a chunk per statement; returns how many.

    The rollups keep their counts: dashboards still show the months the log no longer holds.
    On PostgreSQL the months wholly before the cutoff are dropped as partitions, and only the
    month that straddles it (and the default partition) is deleted from row by row.
    """
    months = OrgSettings.load().email_log_retention_months
    cutoff = months_before(now or timezone.now(), months)
    deleted = 0
    for model in (EmailEvent, TrackingEvent):
        # On PostgreSQL whole months go at once (crm.partitions); the rest, in chunks.
        deleted += partitions_drop_before(model._meta.db_table, cutoff)
        deleted += _delete_before(model, cutoff, chunk)
    return deleted


def _delete_before(model: type[Model], cutoff: datetime, chunk: int) -> int:
    manager: Any = model._default_manager
    deleted = 0
    while True:
        # The occurred_at index finds the oldest rows; deleting by primary key keeps it cheap,
        # and the time bound again keeps the delete to the months before the cutoff.
        old = manager.filter(occurred_at__lt=cutoff)
        ids = list(old.order_by().values_list("pk", flat=True)[:chunk])
        count, _ = old.filter(pk__in=ids).delete()
        deleted += count
        if count < chunk:
            return deleted
