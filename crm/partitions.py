"""Monthly partitions of the tables that grow for ever (PostgreSQL only).

The email log (`crm_emailevent`) and the tracking events (`tracking_trackingevent`) are
partitioned by RANGE on `occurred_at`, one partition per calendar month in UTC
(`<table>_p2026_12`), plus a DEFAULT partition (`<table>_default`) that takes any row no month
partition covers (an ESP's odd timestamp, a test's far date, and the whole table while an
existing database is being moved: see `convert`). SQLite (the embedded mode) keeps plain tables:
every function here does nothing there.

- A partitioned table's primary key and unique constraints must hold the partition key, so the
  primary key is (id, occurred_at) (ids still come from one sequence, so `id` alone stays
  unique) and a tracking event is unique on (event_id, occurred_at). An event's id and its time
  travel together in the buffer (the fast path stamps both when it answers, or takes both from
  the balancer's stamp), so a second copy of an event has the same time, lands in the same
  partition and is refused there: idempotent ingestion holds across a month boundary.
- `partitions_ensure` (beat, daily) adds the current and the next `MONTHS_AHEAD` months.
- `partition_add` adds one month: in one transaction it builds the month's table on its own,
  moves that month's rows out of the default partition into it, and attaches it (the CHECK it
  carries lets PostgreSQL skip scanning it; the default partition is checked, and locked, only
  for the ATTACH at the end). `manage.py partition_events` runs it for every month the default
  partition still holds: the resumable move of an existing database, a month per transaction.
- `partitions_drop_before` drops whole months older than a cutoff (retention); what is left
  below the cutoff, in the month that straddles it, is deleted in chunks by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

KEY = "occurred_at"
# Months made ahead of time: beat runs daily, so a missed run or three never leaves a month
# without its partition (its rows would go to the default partition, still stored).
MONTHS_AHEAD = 3
# DDL waits at most this long for a lock, so it never queues the app's queries behind it for
# longer; beat tries again the next day.
LOCK_TIMEOUT = "10s"
# An email's events come after it was made; the margin covers hosts whose clocks disagree.
CLOCK_MARGIN = timedelta(days=1)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Spec:
    """A table to partition: its unique constraints and indexes as they are on the parent
    (names as the model declares them, so Django's later migrations find them)."""

    table: str
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def month_start(moment: datetime) -> datetime:
    """The first instant of `moment`'s month, in UTC."""
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_after(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def default_name(table: str) -> str:
    return f"{table}_default"


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y_%m}"


def _literal(moment: datetime) -> str:
    """A timestamptz literal for DDL (which takes no parameters): made here, never from input."""
    return f"'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def events_since(*moments: datetime | None) -> datetime:
    """The lower bound on the time of the events of an email made at these moments (its date
    and its creation: the earlier counts), which lets a query by email read only the months
    since then."""
    return min(moment for moment in moments if moment is not None) - CLOCK_MARGIN


def is_partitioned(table: str, using: BaseDatabaseWrapper | None = None) -> bool:
    db = using or connection
    if db.vendor != "postgresql":
        return False
    with db.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitioned_tables() -> list[str]:
    """The tables partitioned by month on `occurred_at` (read from the catalogue, not a list)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class AS c
            WHERE c.relkind = 'p' AND c.relnamespace = current_schema()::regnamespace
              AND pg_get_partkeydef(c.oid) = %s
            ORDER BY c.relname
            """,
            [f"RANGE ({KEY})"],
        )
        return [name for (name,) in cursor.fetchall()]


def partitions(table: str) -> list[Partition]:
    """The month partitions of `table`, oldest first (the default partition is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i
            JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass
            """,
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match:
            start, end = (datetime.fromisoformat(text) for text in match.groups())
            found.append(Partition(name, start, end))
    return sorted(found, key=lambda partition: partition.start)


def _columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attname FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """,
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def partition_add(table: str, start: datetime) -> int:
    """Give `table` the partition of the month starting at `start` (nothing if it has one);
    returns how many rows moved into it from the default partition."""
    start = month_start(start)
    end = month_after(start)
    name = partition_name(table, start)
    default = default_name(table)
    with transaction.atomic(), connection.cursor() as cursor, _checks_done(cursor):
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Two runs at once (beat and the command) take turns; the second finds it made.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partition {table}"])
        if any(partition.name == name for partition in partitions(table)):
            return 0
        columns = ", ".join(f'"{column}"' for column in _columns(table))
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)')
        # The CHECK proves the partition's bound, so ATTACH does not scan the new table.
        cursor.execute(
            f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bound" CHECK ('
            f"{KEY} IS NOT NULL AND {KEY} >= {_literal(start)} AND {KEY} < {_literal(end)})"
        )
        moved = 0
        if _exists(default):
            cursor.execute(
                f"""
                WITH moved AS (
                    DELETE FROM "{default}"
                    WHERE {KEY} >= {_literal(start)} AND {KEY} < {_literal(end)}
                    RETURNING {columns}
                )
                INSERT INTO "{name}" ({columns}) SELECT {columns} FROM moved
                """  # noqa: S608 -- names from the catalogue, bounds made above
            )
            moved = cursor.rowcount
        cursor.execute(
            f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
        )
    return moved


@contextmanager
def _checks_done(cursor: Any) -> Iterator[None]:
    """Run the deferred foreign key checks first: PostgreSQL alters no table with checks
    pending (rows written earlier in the same transaction, as in a test), then defer again
    (Django makes every foreign key INITIALLY DEFERRED)."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        row = cursor.fetchone()
    return bool(row and row[0])


def _months(first: datetime, count: int) -> Iterator[datetime]:
    start = month_start(first)
    for _ in range(count):
        yield start
        start = month_after(start)


def default_holds_before(table: str, moment: datetime) -> bool:
    """Whether the default partition still holds rows older than `moment` (an existing
    database not moved yet: adding a month would scan all of it under a lock)."""
    default = default_name(table)
    if not _exists(default):
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT EXISTS (SELECT FROM "{default}" WHERE {KEY} < %s)',  # noqa: S608
            [moment],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def partitions_ensure(*, now: datetime | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Add this month's and the next `ahead` months' partitions where missing, on every
    partitioned table; returns the partitions made. A table whose default partition still holds
    earlier months (not moved yet) is left for `manage.py partition_events`."""
    made = []
    this_month = month_start(now or timezone.now())
    for table in partitioned_tables():
        if default_holds_before(table, this_month):
            continue
        have = {partition.name for partition in partitions(table)}
        for start in _months(this_month, ahead + 1):
            if partition_name(table, start) not in have:
                partition_add(table, start)
                made.append(partition_name(table, start))
    return made


def default_months(table: str) -> list[tuple[datetime, int]]:
    """The months the default partition holds rows of, oldest first, with their counts."""
    default = default_name(table)
    if not _exists(default):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_trunc('month', {KEY} AT TIME ZONE 'UTC') AS month, COUNT(*)
            FROM "{default}" GROUP BY 1 ORDER BY 1
            """  # noqa: S608 -- a name from the catalogue
        )
        return [(month.replace(tzinfo=UTC), count) for month, count in cursor.fetchall()]


def default_move(table: str) -> Iterator[tuple[datetime, int]]:
    """Move every month the default partition holds into its own partition, oldest first, one
    transaction per month; yields each month and how many rows moved. Stopped at any point, it
    goes on from where it stood when run again."""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT MIN({KEY}) FROM "{default_name(table)}"'  # noqa: S608
            )
            row = cursor.fetchone()
        if not row or row[0] is None:
            return
        start = month_start(row[0])
        yield start, partition_add(table, start)


def default_tidy(table: str) -> list[str]:
    """Drop the default partition's indexes that no index of the partitioned table owns (the
    old table's own, from before `convert`); returns their names. Run once it has moved."""
    default = default_name(table)
    if not _exists(default):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, c.conname FROM pg_index AS x
            JOIN pg_class AS i ON i.oid = x.indexrelid
            LEFT JOIN pg_constraint AS c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
            WHERE x.indrelid = %s::regclass
              AND NOT EXISTS (SELECT FROM pg_inherits AS h WHERE h.inhrelid = x.indexrelid)
            ORDER BY i.relname
            """,
            [default],
        )
        orphans = cursor.fetchall()
        for index, constraint in orphans:
            if constraint:
                cursor.execute(f'ALTER TABLE "{default}" DROP CONSTRAINT "{constraint}"')
            else:
                cursor.execute(f'DROP INDEX "{index}"')
    return [index for index, _ in orphans]


def partitions_drop_before(table: str, cutoff: datetime) -> int:
    """Drop `table`'s month partitions that end on or before `cutoff`; returns the rows they
    held. Nothing on SQLite or on a table not partitioned."""
    if not is_partitioned(table):
        return 0
    dropped = 0
    for partition in partitions(table):
        if partition.end > cutoff:
            break
        with transaction.atomic(), connection.cursor() as cursor, _checks_done(cursor):
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f'SELECT COUNT(*) FROM "{partition.name}"')  # noqa: S608
            row = cursor.fetchone()
            dropped += int(row[0]) if row else 0
            cursor.execute(f'DROP TABLE "{partition.name}"')
    return dropped


def convert(using: BaseDatabaseWrapper, spec: Spec) -> None:
    """Make `spec.table` partitioned (a migration's step; PostgreSQL only; nothing if it is).

    The table as it stands becomes the default partition, so no row moves and none is out of
    sight: indexes the partitioned table needs are built on it first (CONCURRENTLY: writes go
    on), then, in one short transaction under a lock, it is renamed, the partitioned table is
    made in its place and it is attached as the DEFAULT partition (no scan: it is the only
    one). An empty table then gets its month partitions at once; a table with rows keeps them
    in the default partition until `manage.py partition_events` moves them month by month.
    """
    if using.vendor != "postgresql" or is_partitioned(spec.table, using):
        return
    table, default = spec.table, default_name(spec.table)
    wanted_unique = {f"{table}_pkey": ("id", KEY), **spec.unique}
    # 1. Build what the partitioned table's constraints and indexes will match, out of a
    # transaction (the migration is not atomic) so that writes continue meanwhile.
    have = _index_columns(using, table)
    prebuilt: dict[str, str] = {}
    built: set[str] = set()
    for number, (name, columns) in enumerate(
        [*((n, c) for n, c in wanted_unique.items()), *spec.indexes.items()]
    ):
        unique = name in wanted_unique
        match = next((i for i, (u, cols) in have.items() if cols == columns and u == unique), None)
        if match is None or unique:
            # A unique index must back a constraint of its own to be attached: build one.
            match = f"{table}_part{number}"
            built.add(match)
            kind = "UNIQUE INDEX" if unique else "INDEX"
            with using.cursor() as cursor:
                # A build stopped half way leaves an invalid index: build it again.
                cursor.execute(
                    "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                    [match],
                )
                if (cursor.fetchone() or [False])[0]:
                    cursor.execute(f'DROP INDEX CONCURRENTLY "{match}"')
                cursor.execute(
                    f'CREATE {kind} CONCURRENTLY IF NOT EXISTS "{match}" ON "{table}" '
                    f"({', '.join(columns)})"
                )
        prebuilt[name] = match
    # 2. The swap, under a lock held for catalogue changes only.
    with transaction.atomic(using=using.alias), using.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
        last_value, is_called = cursor.fetchone()
        cursor.execute(
            "SELECT attidentity FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'id'",
            [table],
        )
        if cursor.fetchone()[0]:
            cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id DROP IDENTITY')
        else:
            cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id DROP DEFAULT')
            cursor.execute(f"DROP SEQUENCE {sequence}")
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{default}"')
        # Index names are the schema's: the partitioned table takes the model's names.
        for index in _index_columns(using, default):
            if index not in built:
                renamed = f"{default}_{index}"[:63]
                cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{renamed}"')
        for name in wanted_unique:
            index = prebuilt[name]
            cursor.execute(
                f'ALTER TABLE "{default}" ADD CONSTRAINT "{index}" UNIQUE USING INDEX "{index}"'
            )
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{default}" INCLUDING DEFAULTS) '
            f"PARTITION BY RANGE ({KEY})"
        )
        cursor.execute(f'CREATE SEQUENCE "{table}_id_seq" OWNED BY "{table}".id')
        cursor.execute("SELECT setval(%s, %s, %s)", [f"{table}_id_seq", last_value, is_called])
        cursor.execute(
            f'ALTER TABLE "{table}" ALTER COLUMN id SET DEFAULT nextval(\'"{table}_id_seq"\')'
        )
        for name, columns in wanted_unique.items():
            kind = "PRIMARY KEY" if name == f"{table}_pkey" else "UNIQUE"
            cursor.execute(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {kind} ({", ".join(columns)})'
            )
        for name, columns in spec.indexes.items():
            cursor.execute(f'CREATE INDEX "{name}" ON "{table}" ({", ".join(columns)})')
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{default}" DEFAULT')
        cursor.execute(f'SELECT EXISTS (SELECT FROM "{default}")')  # noqa: S608
        empty = not cursor.fetchone()[0]
    if empty:
        for start in _months(timezone.now(), MONTHS_AHEAD + 1):
            partition_add(table, start)


def _index_columns(
    using: BaseDatabaseWrapper, table: str
) -> dict[str, tuple[bool, tuple[str, ...]]]:
    """The plain column indexes of `table`: name -> (unique, columns in order)."""
    with using.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, x.indisunique,
                   array_agg(a.attname ORDER BY k.n)
            FROM pg_index AS x
            JOIN pg_class AS i ON i.oid = x.indexrelid
            JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) ON true
            JOIN pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
            WHERE x.indrelid = %s::regclass AND x.indpred IS NULL AND x.indexprs IS NULL
            GROUP BY i.relname, x.indisunique
            """,
            [table],
        )
        return {name: (unique, tuple(columns)) for name, unique, columns in cursor.fetchall()}


def plan_relations(sql: str, params: Sequence[Any] = ()) -> list[str]:
    """The tables a statement's plan reads (EXPLAIN), for the pruning tests and the command."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    names: list[str] = []

    def walk(node: dict[str, object]) -> None:
        if "Relation Name" in node:
            names.append(str(node["Relation Name"]))
        for child in node.get("Plans", []) or []:  # type: ignore[attr-defined]
            walk(child)

    walk(plan[0]["Plan"])
    return names
