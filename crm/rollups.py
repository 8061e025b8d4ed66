"""The SQL the daily rollups (EmailDailyStat, LinkDailyStat) are written with.

Every write is one INSERT ... SELECT ... ON CONFLICT DO UPDATE that adds to the row of its
day x sender x campaign (PostgreSQL and SQLite both accept it), so a batch of any size is one
statement and concurrent writers never lose an increment. Sending (crm.email_events) and ingestion
(tracking.rollups) both use these helpers; the rollup tables live in crm because crm is the
lowest app both use.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

EMAIL_STATS = "crm_emaildailystat"
LINK_STATS = "crm_linkdailystat"
EMAIL_KEY = ("day", "sender_key", "campaign_key")
LINK_KEY = (*EMAIL_KEY, "url")
# The URL is cut to the rollup column's length (a long key would not fit a B-tree entry).
URL_LENGTH = 500


def local_date(column: str) -> tuple[str, dict[str, Any]]:
    """The day of a timestamp column in the site's time zone, as SQL and named parameters."""
    sql, params = connection.ops.datetime_cast_date_sql(
        # The site's day, whatever zone the request shows the user: the rollups are shared.
        column,
        (),
        timezone.get_default_timezone_name(),
    )
    names = {f"tz{index}": value for index, value in enumerate(params)}
    return sql % tuple(f"%({name})s" for name in names), names


def sent_day() -> tuple[str, dict[str, Any]]:
    """The day a recipient's copy went out (`r` a relation, `m` its email): its cohort day."""
    return local_date("COALESCE(r.sent_at, m.message_date, m.created_at)")


def upsert(table: str, key: Sequence[str], columns: Sequence[str], select: str) -> str:
    """INSERT the SELECT's rows (key columns, then `columns`), adding to rows that exist.

    The SELECT must have a WHERE clause: SQLite otherwise reads ON CONFLICT as part of a join.
    """
    names = ", ".join((*key, *columns))
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
    return (
        f"INSERT INTO {table} ({names}) {select} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adds}"
    )


def execute(sql: str, params: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` earlier (the month's last day if it is shorter)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


def first_day_held_in_full(retention_months: int) -> date:
    """The first day whose events the email log still holds in full: older days' events were
    deleted by Setup's retention, and their rollups are all that is left of them, so a rebuild
    starts here."""
    cutoff = months_before(timezone.now(), retention_months)
    return timezone.localdate(cutoff, timezone.get_default_timezone()) + timedelta(days=1)
