"""SQL that names many ids: as one parameter, or in chunks of placeholders.

`ids_in` sends any number of ids as a single parameter, which is cheaper to send and plan than
thousands of placeholders. `chunks` and `placeholders` are for statements that name ids one
by one, kept under SQLite's 32,766 parameters per statement; `ids_of` reads a queryset's ids
as a set; `rows_update` gives many rows each their own values in a few statements. crm,
tracking, inbound and campaigns use them alike.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet


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


def rows_update(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Give each row its own values: `rows` are (pk, *values in `fields` order).

    One `UPDATE ... FROM` a list of VALUES per 500 rows, where bulk_update builds a CASE per row
    and field (far more SQL to build, send and plan). Values are parameters, prepared by their
    fields as the ORM would; on PostgreSQL each is cast to its column's type, so a column of
    NULLs still has one.
    """
    if not rows:
        return
    meta = model._meta
    targets = [meta.pk, *(meta.get_field(name) for name in fields)]
    if connection.vendor == "postgresql":
        cells = [f"CAST(%s AS {field.db_type(connection)})" for field in targets]  # type: ignore[union-attr]
    else:
        cells = ["%s"] * len(targets)
    row_sql = "(" + ", ".join(cells) + ")"
    names = ", ".join(f"v{i}" for i in range(len(targets)))
    assignments = ", ".join(
        f"{field.column} = v.v{i}"  # type: ignore[union-attr]
        for i, field in enumerate(targets)
        if i
    )
    table, pk = meta.db_table, meta.pk.column
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        params = [
            field.get_db_prep_save(value, connection)  # type: ignore[union-attr]
            for row in chunk
            for field, value in zip(targets, row, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v({names}) AS (VALUES {', '.join([row_sql] * len(chunk))}) "  # noqa: S608 -- names from the model only
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{pk} = v.v0",
                params,
            )
