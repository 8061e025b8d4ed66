"""Opens and clicks into the daily rollups the dashboards read (crm.EmailDailyStat, LinkDailyStat).

Ingestion calls `rollups_add_batch` with its batch table of newly stored events: each event is
added once, so the rollups need no recount. `rollups_rebuild` recomputes them from the stored events
and the email log (to backfill, or after a repair). Both are a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm import rollups, sql
from crm.models import EmailDailyStat, LinkDailyStat
from crm.partitions import events_since
from tracking.classify import Label

# PostgreSQL's advisory lock key (an arbitrary constant) for ingestion's counting step, which
# adds to the rollups too: batches take it in turn, and a rebuild never interleaves with one.
INGEST_LOCK = 720_301

_JOINS = """
    JOIN crm_emailmessagerelation AS r ON r.id = e.relation_id
    JOIN crm_emailmessage AS m ON m.id = r.email_id
"""
# An email's rollup keys: 0 for none, so the rollups' unique key holds no NULL.
_SENDER_KEY = "COALESCE(m.sender_id, 0)"
_CAMPAIGN_KEY = "COALESCE(m.campaign_id, 0)"
_KEYS = f"{_SENDER_KEY}, {_CAMPAIGN_KEY}"
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
_HUMAN = f"e.label = '{Label.HUMAN}'"
# The events that put a recipient in each cohort column, in order, and the recipient's counter
# of them. A person opened a copy when a human open or a human click shows it (a click with no
# open: images were blocked); "any" is the pixel only, as Salesforce counts opens.
_COHORT_FLAGS = (
    f"e.kind IN ('open', 'click') AND {_HUMAN}",
    "e.kind = 'open'",
    f"e.kind = 'click' AND {_HUMAN}",
    "e.kind = 'click'",
)
_COHORT_COUNTERS = (
    "r.human_opens + r.human_clicks",
    "r.human_opens + r.machine_opens",
    "r.human_clicks",
    "r.human_clicks + r.machine_clicks",
)


def rollups_add_batch(*, table: str) -> None:
    """Add the events in `table` to the rollups, reading nothing but that table and the
    recipients. `table` is ingestion's batch: only events it newly stored, one row each with
    relation_id, kind, label, link_id, occurred_at, and its email's sender_key and
    campaign_key (what _stored_events gives) and the day its copy was sent (sent_day).

    Contract: call it once per event, in the transaction that inserted them, after the
    counting step has added them to their recipients' counters (on PostgreSQL that step's
    advisory lock then serialises batches, which the first-open test below relies on). A
    recipient counts in a cohort column when this batch holds their first event of that
    column (_COHORT_FLAGS): none is stored outside the batch.
    """
    source = f"{table} AS e"
    _add_event_counts(source, {})
    _add_link_counts(source, {})
    _add_cohort(source, {})


def rollups_add_totals(*, table: str, where: str) -> None:
    """Add the events in `table` matching `where` (SQL on it) to the org's totals only: opens
    by label, clicks and clicks per link, on the day they happened. Not to the cohort columns,
    which count people by their copies' counters: these events are on no one's (Don't Track,
    counted anonymously). They are stored nowhere, so a rebuild cannot find them again."""
    source = f"(SELECT * FROM {table} WHERE {where}) AS e"  # noqa: S608
    _add_event_counts(source, {})
    _add_link_counts(source, {})


def rollups_add_events(*, event_ids: Sequence[int]) -> None:
    """Add the stored tracking events with these ids (newly stored, not yet added) to the
    rollups, on the same contract as `rollups_add_batch`."""
    if not event_ids:
        return
    scope, params = sql.ids_in("e.id", "ids", event_ids)
    source = _stored_events(scope)
    _add_event_counts(source, params)
    _add_link_counts(source, params)
    _add_stored_cohort(scope, params, first_only=True)


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
    event_scope = sent_scope = cohort_scope = "TRUE"
    if since is not None:
        email_stats, link_stats = (
            email_stats.filter(day__gte=since),
            link_stats.filter(day__gte=since),
        )
        start = timezone.make_aware(
            datetime.combine(since, time.min), timezone.get_default_timezone()
        )
        params["since"] = connection.ops.adapt_datetimefield_value(start)
        # The copies sent since then were opened after it: on PostgreSQL, only those months.
        params["events_since"] = connection.ops.adapt_datetimefield_value(events_since(start))
        event_scope = "e.occurred_at >= %(since)s"
        sent_scope = "COALESCE(r.sent_at, m.message_date, m.created_at) >= %(since)s"
        cohort_scope = "e.occurred_at >= %(events_since)s"
    email_stats.delete()
    link_stats.delete()
    _add_log_counts(event_scope, params)
    events = _stored_events(event_scope)
    _add_event_counts(events, params)
    _add_link_counts(events, params)
    # The cohort is by the day a copy was sent: every event of the copies sent since then.
    _add_stored_cohort(cohort_scope, params, first_only=False, outer=sent_scope)


def _stored_events(scope: str) -> str:
    """The stored events matching `scope` as a source for the event and link counts: the
    batch's columns but sent_day, which only the batch's cohort reads; aliased e. Internal
    events (crm.internal) count nowhere."""
    return f"""(
        SELECT e.relation_id, e.kind, e.label, e.link_id, e.occurred_at,
            {_SENDER_KEY} AS sender_key, {_CAMPAIGN_KEY} AS campaign_key
        FROM tracking_trackingevent AS e {_JOINS}
        WHERE {scope} AND NOT e.internal
    ) AS e"""  # noqa: S608


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


def _add_event_counts(source: str, params: dict[str, Any]) -> None:
    """Opens by label and clicks, on the day they happened."""
    counts = [f"COUNT(*) FILTER (WHERE e.kind = 'open' AND e.label = '{label}')" for label in Label]
    counts += [
        f"COUNT(*) FILTER (WHERE e.kind = 'click' AND e.label = '{Label.HUMAN}')",
        f"COUNT(*) FILTER (WHERE e.kind = 'click' AND e.label <> '{Label.HUMAN}')",
    ]
    day, day_params = rollups.local_date("e.occurred_at")
    select = f"""SELECT {day}, e.sender_key, e.campaign_key, {", ".join(counts)}
        FROM {source} WHERE TRUE GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, _EVENT_COLUMNS, select),
        {**params, **day_params},
    )


def _add_link_counts(source: str, params: dict[str, Any]) -> None:
    """Clicks per destination URL (the hidden honeypot link is no destination)."""
    day, day_params = rollups.local_date("e.occurred_at")
    select = f"""SELECT {day}, e.sender_key, e.campaign_key, SUBSTR(l.url, 1, {rollups.URL_LENGTH}),
            COUNT(*) FILTER (WHERE e.label = '{Label.HUMAN}'),
            COUNT(*) FILTER (WHERE e.label <> '{Label.HUMAN}')
        FROM {source}
        JOIN crm_trackedlink AS l ON l.id = e.link_id
        WHERE e.kind = 'click' AND NOT l.is_honeypot
        GROUP BY 1, 2, 3, 4"""  # noqa: S608
    rollups.execute(
        rollups.upsert(
            rollups.LINK_STATS, rollups.LINK_KEY, ("clicks_human", "clicks_machine"), select
        ),
        {**params, **day_params},
    )


def _add_cohort(source: str, params: dict[str, Any]) -> None:
    """Recipients who opened (clicked), human and any, on the day their copy was sent, from a
    batch (`source`, with the columns rollups_add_batch names) holding their first event of
    that kind or not.

    A recipient counts when no event of that kind is stored outside `source`: their counter of
    it, which ingestion's counting step has just increased, equals the batch's count, so no
    stored event is read.
    """
    flags, counts = _cohort_expressions(first_only=True)
    select = f"""SELECT n.sent_day, n.sender_key, n.campaign_key, {", ".join(counts)}
        FROM (
            SELECT e.relation_id, e.sent_day, e.sender_key, e.campaign_key, {", ".join(flags)}
            FROM {source} GROUP BY 1, 2, 3, 4
        ) AS n
        JOIN crm_emailmessagerelation AS r ON r.id = n.relation_id
        WHERE TRUE GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, _COHORT_COLUMNS, select), params
    )


def _add_stored_cohort(
    scope: str, params: dict[str, Any], *, first_only: bool, outer: str = "TRUE"
) -> None:
    """The same from stored events matching `scope`, of the copies matching `outer`; with
    `first_only`, on the same contract as `_add_cohort`. Grouped by recipient before their
    email is joined: once per recipient, not once per event."""
    flags, counts = _cohort_expressions(first_only=first_only)
    day, day_params = rollups.sent_day()
    select = f"""SELECT {day}, {_KEYS}, {", ".join(counts)}
        FROM (
            SELECT e.relation_id, {", ".join(flags)} FROM tracking_trackingevent AS e
            WHERE {scope} AND NOT e.internal GROUP BY e.relation_id
        ) AS n
        JOIN crm_emailmessagerelation AS r ON r.id = n.relation_id
        JOIN crm_emailmessage AS m ON m.id = r.email_id
        WHERE {outer} GROUP BY 1, 2, 3"""  # noqa: S608
    rollups.execute(
        rollups.upsert(rollups.EMAIL_STATS, rollups.EMAIL_KEY, _COHORT_COLUMNS, select),
        {**params, **day_params},
    )


def _cohort_expressions(*, first_only: bool) -> tuple[list[str], list[str]]:
    """Per recipient, a flag sum per cohort column (f0...), and the count of recipients for it."""
    flags, counts = [], []
    for index, condition in enumerate(_COHORT_FLAGS):
        flags.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS f{index}")
        first = f"AND n.f{index} = {_COHORT_COUNTERS[index]}" if first_only else ""
        counts.append(f"COUNT(*) FILTER (WHERE n.f{index} > 0 {first})")
    return flags, counts
