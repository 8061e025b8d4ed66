"""When a wait step ends: pure date arithmetic in the owner's time zone (no models)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WORKDAYS = 5  # Monday (0) to Friday (4)


def business_days_after(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """`days` business days (Monday to Friday) after `start`, at the same local time: each
    weekday passed counts one, so one business day from Friday or Saturday is Monday."""
    local = start.astimezone(zone)
    day = local.date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < WORKDAYS:
            left -= 1
    while day.weekday() >= WORKDAYS:
        day += timedelta(days=1)
    # Rebuilt from the wall-clock time, so a DST change keeps the hour the owner expects.
    return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)


def next_weekday_at(start: datetime, weekday: int, at: time, zone: ZoneInfo) -> datetime:
    """The first `weekday` (0 Monday) at `at`, local time, strictly after `start`."""
    local = start.astimezone(zone)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    candidate = datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(day + timedelta(days=7), at.replace(tzinfo=None), tzinfo=zone)
    return candidate
