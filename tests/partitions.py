"""Helpers for the tests of the monthly partitions (crm.partitions): which partitions the
statements of an operation read, by asking PostgreSQL for their plans."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.partitions import month_after, partition_add, partition_name, plan_relations

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL partitions the event tables; SQLite keeps plain tables",
)
EVENT_TABLES = ("crm_emailevent", "tracking_trackingevent")
_READS_EVENTS = re.compile(r"\b(crm_emailevent|tracking_trackingevent)\b")


def months(first: datetime, last: datetime) -> list[datetime]:
    """The first instants (UTC) of the months from `first`'s to `last`'s, both included."""
    start = first.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    found = []
    while start <= last:
        found.append(start)
        start = month_after(start)
    return found


def partitions_for(first: datetime, last: datetime) -> None:
    """Give both event tables a partition for every month from `first` to `last` (rows waiting
    in the default partition move into them)."""
    for table in EVENT_TABLES:
        for start in months(first, last):
            partition_add(table, start)


def names(starts: Iterable[datetime]) -> set[str]:
    return {partition_name(table, start) for table in EVENT_TABLES for start in starts}


def partitions_read(run: Callable[[], Any]) -> set[str]:
    """The event tables' partitions that the plans of `run`'s statements read."""
    with CaptureQueriesContext(connection) as captured:
        run()
    read: set[str] = set()
    for query in captured.captured_queries:
        sql = query["sql"]
        first = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if _READS_EVENTS.search(sql) and first in {"SELECT", "WITH", "INSERT", "UPDATE", "DELETE"}:
            read.update(plan_relations(sql))
    return {name for name in read if name.startswith(tuple(f"{t}_" for t in EVENT_TABLES))}
