"""SQL that names many ids: as one parameter, or in chunks of placeholders.

`ids_in` sends any number of ids as a single parameter, which is cheaper to send and plan than
thousands of placeholders. `chunks` and `placeholders` are for statements that name ids one
by one, kept under SQLite's 32,766 parameters per statement; `ids_of` reads a queryset's ids
as a set; `rows_update` gives many rows each their own values in a few statements;
`rows_insert` writes many new rows at once. crm, tracking, inbound and campaigns use them alike.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import NOT_PROVIDED, Field, JSONField, Model, QuerySet
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone


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

    One `UPDATE ... FROM` the rows, where bulk_update builds a CASE per row and field (far more
    SQL to build, send and plan). Values are prepared by their fields as the ORM would. On
    PostgreSQL the rows go as one array per column (`unnest`, each cast to its column's type,
    so a column of NULLs still has one): a statement of a few parameters whatever the number of
    rows. On SQLite a list of VALUES per 500 rows.
    """
    if not rows:
        return
    meta = model._meta
    targets = [meta.pk, *(meta.get_field(name) for name in fields)]
    names = ", ".join(f"v{i}" for i in range(len(targets)))
    assignments = ", ".join(
        f"{field.column} = v.v{i}"  # type: ignore[union-attr]
        for i, field in enumerate(targets)
        if i
    )
    table, pk = meta.db_table, meta.pk.column
    if connection.vendor == "postgresql":
        arrays = ", ".join(
            f"%s::{field.db_type(connection)}[]"  # type: ignore[union-attr]
            for field in targets
        )
        columns = [
            [field.get_db_prep_save(row[i], connection) for row in rows]  # type: ignore[union-attr]
            for i, field in enumerate(targets)
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({names}) "  # noqa: S608 -- names from the model only
                f"WHERE {table}.{pk} = v.v0",
                columns,
            )
        return
    row_sql = "(" + ", ".join(["%s"] * len(targets)) + ")"
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


def rows_insert(
    model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]], *, ids: bool = False
) -> list[int]:
    """Insert new rows: `rows` are values in `fields` order (attnames: `email_id`, not
    `email`), as the model's fields take them; every other field gets its default. With `ids`,
    returns the new rows' ids in order.

    On PostgreSQL one COPY, the ids drawn from the table's sequence first (one query): no
    model instance and no per-value preparation by the ORM, which cost more than the insert.
    On SQLite (embedded mode) the ORM's bulk_create.
    """
    if not rows:
        return []
    meta = model._meta
    named = [meta.get_field(name) for name in fields]
    filled = [
        field
        for field in meta.concrete_fields
        if field not in named
        and not isinstance(field, AutoFieldMixin)
        and field.db_default is NOT_PROVIDED
    ]
    now = timezone.now()
    defaults = [now if _stamped(field) else field.get_default() for field in filled]
    if connection.vendor != "postgresql":
        names = [*fields, *(field.attname for field in filled)]
        created = model._default_manager.bulk_create(
            [model(**dict(zip(names, [*row, *defaults], strict=True))) for row in rows]
        )
        return [obj.pk for obj in created] if ids else []
    columns: list[str] = [field.column for field in (*named, *filled)]  # type: ignore[union-attr,misc]
    json_at = [i for i, field in enumerate((*named, *filled)) if isinstance(field, JSONField)]
    tail = tuple(defaults)
    new_ids: list[int] = []
    with connection.cursor() as cursor:
        if ids:
            cursor.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                [_sequence(cursor, meta.db_table, meta.pk.column), len(rows)],
            )
            new_ids = sorted(row[0] for row in cursor.fetchall())
            columns.insert(0, meta.pk.column)
        sql = f"COPY {meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for i, row in enumerate(rows):
                values = [*row, *tail]
                for at in json_at:
                    values[at] = json.dumps(values[at])
                copy.write_row([new_ids[i], *values] if ids else values)
    return new_ids


def _stamped(field: Field[Any, Any]) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


_sequences: dict[tuple[str, str, str], str] = {}


def _sequence(cursor: Any, table: str, column: str) -> str:
    """The sequence that fills a table's id column, looked up once per database."""
    key = (connection.settings_dict["NAME"], table, column)
    if key not in _sequences:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        _sequences[key] = cursor.fetchone()[0]
    return _sequences[key]
