"""SQL that names many ids: as one parameter, or in chunks of placeholders.

`ids_in` sends any number of ids as a single parameter, which is cheaper to send and plan than
thousands of placeholders. `chunks` and `placeholders` are for statements that name ids one
by one, kept under SQLite's 32,766 parameters per statement; `ids_of` reads a queryset's ids
as a set. crm, tracking, inbound and campaigns use them alike.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from django.db import connection
from django.db.models import QuerySet


def ids_in(column: str, name: str, ids: Collection[int]) -> tuple[str, dict[str, Any]]:
    """`column` is one of `ids`, as SQL with one named parameter whatever the number of ids."""
    if connection.vendor == "postgresql":
        # A subquery, not `= ANY(array)`: PostgreSQL hashes it, where ANY scans the array per row.
        return f"{column} IN (SELECT unnest(%({name})s::bigint[]))", {name: list(ids)}
    inside = f"{column} IN (SELECT value FROM json_each(%({name})s))"  # noqa: S608 -- no values
    return inside, {name: json.dumps(list(ids))}


def chunks(ids: Iterable[int], size: int) -> list[list[int]]:
    """The distinct ids in ascending order, `size` at a time."""
    ordered = sorted(set(ids))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def placeholders(ids: Collection[int]) -> str:
    """One "%s" per id, comma-separated, for an IN list."""
    return ", ".join(["%s"] * len(ids))


def ids_of(queryset: QuerySet[Any], field: str) -> set[int]:
    """The distinct values of an id column over a queryset, as a set (one query)."""
    return set(queryset.values_list(field, flat=True).distinct())
