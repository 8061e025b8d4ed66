"""Opens and clicks into the daily rollups the dashboards read (crm.EmailDailyStat, LinkDailyStat).

Ingestion calls `rollups_add_events` with the events a batch newly stored: each event is added
once, so the rollups need no recount. `rollups_rebuild` recomputes them from the stored events
and the email log (to backfill, or after a repair). Both are a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm import rollups
from crm.models import EmailDailyStat, LinkDailyStat
from tracking.classify import Label

# PostgreSQL's advisory lock key (an arbitrary constant) for ingestion's counting step, which
# adds to the rollups too: batches take it in turn, and a rebuild never interleaves with one.
INGEST_LOCK = 720_301

_JOINS = """
    JOIN crm_emailmessagerelation AS r ON r.id = e.relation_id
    JOIN crm_emailmessage AS m ON m.id = r.email_id
"""
_KEYS = "COALESCE(m.sender_id, 0), COALESCE(m.campaign_id, 0)"
_EVENT_COLUMNS = (
    *(f"opens_{label}" for label in Label),
    "clicks_human",
    "clicks_machine",
)
_COHORT_COLUMNS = (
    "recipients_opened_human",
    "recipients_opened_any",
    "recipients_clicked_human",
    "recipients_clicked_any",
)
# (kind, human only) of each cohort column, in order, and the recipient's counter of it.
_COHORT_FLAGS = (("open", True), ("open", False), ("click", True), ("click", False))
_COHORT_COUNTERS = (
    "r.human_opens",
    "r.human_opens + r.machine_opens",
    "r.human_clicks",
    "r.human_clicks + r.machine_clicks",
)


def rollups_add_events(*, event_ids: Sequence[int]) -> None:
    """Add the tracking events with these ids (newly stored by one batch) to the rollups.

    Contract: call it once per event, in the transaction that inserted them, after the
    counting step has added them to their recipients' counters (on PostgreSQL that step's
    advisory lock then serialises batches, which the first-open test below relies on). A
    recipient counts in the cohort columns when this batch holds their first open (click) of a
    kind: none of that kind is stored outside these ids.
    """
    if not event_ids:
        return
    scope, params = rollups.ids_in("e.id", "ids", event_ids)
    _add_event_counts(scope, params)
    _add_link_counts(scope, params)
    _add_cohort(scope, params, first_only=True)


@transaction.atomic
def rollups_rebuild(*, since: date | None = None) -> None:
    """Recompute the rollups from the email log and the stored events, from `since` (or all).

    Events the retention task deleted are gone: rebuild only the days still held in full.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])
    email_stats, link_stats = EmailDailyStat.objects.all(), LinkDailyStat.objects.all()
    params: dict[str, Any] = {}
    event_scope = sent_scope = "TRUE"
    if since is not None:
        email_stats, link_stats = (
            email_stats.filter(day__gte=since),
            link_stats.filter(day__gte=since),
        )
        params["since"] = connection.ops.adapt_datetimefield_value(
            timezone.make_aware(datetime.combine(since, time.min))
        )
        event_scope = "e.occurred_at >= %(since)s"
        sent_scope = "COALESCE(r.sent_at, m.message_date, m.created_at) >= %(since)s"
    email_stats.delete()
    link_stats.delete()
    _add_log_counts(event_scope, params)
    _add_event_counts(event_scope, params)
    _add_link_counts(event_scope, params)
    _add_cohort("TRUE", params, first_only=False, outer=sent_scope)


def _add_log_counts(scope: str, params: dict[str, Any]) -> None:
    """The email log's delivery events by day (what email_events_record adds as they happen)."""
    kinds = ("queued", "sent", "deferred", "delivered", "failed", "complained", "unsubscribed")
    columns = (*kinds, "replied", "bounced_hard", "bounced_soft")
    counts = [f"COUNT(*) FILTER (WHERE e.kind = '{kind}')" for kind in (*kinds, "replied")]
    counts += [
        f"COUNT(*) FILTER (WHERE e.kind = 'bounced' AND e.bounce = '{b}')" for b in ("hard", "soft")
    ]
    day, day_params = rollups.local_date("e.occurred_at")
    select = f"""SELECT {day}, {_KEYS}, {", ".join(counts)}
        FROM crm_emailevent AS e {_JOINS} WHERE {scope} GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, columns, select),
        {**params, **day_params},
    )


def _add_event_counts(scope: str, params: dict[str, Any]) -> None:
    """Opens by label and clicks, on the day they happened."""
    counts = [f"COUNT(*) FILTER (WHERE e.kind = 'open' AND e.label = '{label}')" for label in Label]
    counts += [
        f"COUNT(*) FILTER (WHERE e.kind = 'click' AND e.label = '{Label.HUMAN}')",
        f"COUNT(*) FILTER (WHERE e.kind = 'click' AND e.label <> '{Label.HUMAN}')",
    ]
    day, day_params = rollups.local_date("e.occurred_at")
    select = f"""SELECT {day}, {_KEYS}, {", ".join(counts)}
        FROM tracking_trackingevent AS e {_JOINS} WHERE {scope} GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, _EVENT_COLUMNS, select),
        {**params, **day_params},
    )


def _add_link_counts(scope: str, params: dict[str, Any]) -> None:
    """Clicks per destination URL (the hidden honeypot link is no destination)."""
    day, day_params = rollups.local_date("e.occurred_at")
    select = f"""SELECT {day}, {_KEYS}, SUBSTR(l.url, 1, {rollups.URL_LENGTH}),
            COUNT(*) FILTER (WHERE e.label = '{Label.HUMAN}'),
            COUNT(*) FILTER (WHERE e.label <> '{Label.HUMAN}')
        FROM tracking_trackingevent AS e {_JOINS}
        JOIN crm_trackedlink AS l ON l.id = e.link_id
        WHERE {scope} AND e.kind = 'click' AND NOT l.is_honeypot
        GROUP BY 1, 2, 3, 4"""  # noqa: S608
    rollups.execute(
        rollups.upsert(
            rollups.LINK_STATS, rollups.LINK_KEY, ("clicks_human", "clicks_machine"), select
        ),
        {**params, **day_params},
    )


def _add_cohort(
    scope: str, params: dict[str, Any], *, first_only: bool, outer: str = "TRUE"
) -> None:
    """Recipients who opened (clicked), human and any, on the day their copy was sent.

    `first_only` narrows to recipients with no such event outside `scope` (a batch's first):
    their counter of it, which ingestion's counting step has just increased, equals the
    batch's count, so no stored event is read.
    """
    flags, counts = [], []
    for index, (kind, human) in enumerate(_COHORT_FLAGS):

        def matches(alias: str, kind: str = kind, human: bool = human) -> str:
            label = f" AND {alias}.label = '{Label.HUMAN}'" if human else ""
            return f"{alias}.kind = '{kind}'{label}"

        flags.append(f"SUM(CASE WHEN {matches('e')} THEN 1 ELSE 0 END) AS f{index}")
        first = f"AND n.f{index} = {_COHORT_COUNTERS[index]}" if first_only else ""
        counts.append(f"COUNT(*) FILTER (WHERE n.f{index} > 0 {first})")
    day, day_params = rollups.sent_day()
    select = f"""SELECT {day}, {_KEYS}, {", ".join(counts)}
        FROM (
            SELECT e.relation_id, {", ".join(flags)} FROM tracking_trackingevent AS e
            WHERE {scope} GROUP BY e.relation_id
        ) AS n
        JOIN crm_emailmessagerelation AS r ON r.id = n.relation_id
        JOIN crm_emailmessage AS m ON m.id = r.email_id
        WHERE {outer} GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, _COHORT_COLUMNS, select),
        {**params, **day_params},
    )
