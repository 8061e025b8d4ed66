"""Activity: each record's metrics, the follow-ups for quiet records and the engagement alerts.

The metrics (first / last email, last activity, 30-day counts, days quiet) are computed by a few
set-based statements per record type (one INSERT ... SELECT ... ON CONFLICT DO UPDATE each, over
every record or a chunk of ids), never a loop per record; changes queue a recompute of just the
records they touch (activity_changed), and Celery beat recomputes everything nightly. Follow-ups
and alerts are Tasks for the owner, kept to one per record by unique indexes.

The SQL reads tracking's events by table name (tracking_trackingevent): crm imports no model of
the apps above it, and a record's activity includes its human opens and clicks.

Don't Profile (when Setup enforces the Individual's flags, crm.privacy_flags): a person's opens
and clicks feed no measure of them. Their metrics count the emails and tasks (the record of what
was done with them, as their timeline shows it) but not their opens and clicks, so no list ranks
them by engagement and no follow-up or alert is decided on it; they get no engagement alert.
The org's totals (the rollups, a campaign's figures) still count their events.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from crm import jobs, sql
from crm.models import (
    Contact,
    EmailMessageRelation,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
    Task,
)
from crm.privacy_flags import DONT_PROFILE, person_flagged, relation_flagged_sql
from crm.sql import ids_of

# Every statement below names at most this many ids (SQLite allows 32,766 parameters).
METRICS_CHUNK = 5_000
# An arbitrary constant: PostgreSQL's advisory lock key serialising metric recomputes, so the
# nightly full run and the incremental ones never upsert the same rows in different orders.
METRICS_LOCK = 720_302
METRICS_WINDOW = timedelta(days=30)
ALERT_WINDOW = timedelta(hours=24)

_METRIC_COLUMNS = (
    "first_email_at",
    "last_email_sent_at",
    "last_email_received_at",
    "last_activity_at",
    "emails_sent_30d",
    "emails_received_30d",
    "human_opens_30d",
    "human_clicks_30d",
    "activities_30d",
    "inactive_days",
    "computed_at",
)


@dataclass(frozen=True)
class _MetricKind:
    """Where one record type's metrics come from."""

    column: str  # its column on crm_activitymetric
    table: str
    task_column: str  # the Task column naming it
    # Rollups only: SQL listing (record_id, contact_id), the contacts whose story is part of
    # the record's, and the EmailMessage column relating an email to the record itself.
    people: str = ""
    related_column: str = ""


_CONTACT = _MetricKind("contact_id", "crm_contact", "who_contact_id")
_LEAD = _MetricKind("lead_id", "crm_lead", "who_lead_id")
_ACCOUNT = _MetricKind(
    "account_id",
    "crm_account",
    "what_account_id",
    people="SELECT account_id AS record_id, id AS contact_id FROM crm_contact "
    "WHERE account_id IS NOT NULL",
    related_column="related_account_id",
)
_OPPORTUNITY = _MetricKind(
    "opportunity_id",
    "crm_opportunity",
    "what_opportunity_id",
    people="SELECT opportunity_id AS record_id, contact_id FROM crm_opportunitycontactrole",
    related_column="related_opportunity_id",
)


def activity_metrics_recompute(
    *,
    contact_ids: Collection[int] | None = None,
    lead_ids: Collection[int] | None = None,
    account_ids: Collection[int] | None = None,
    opportunity_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> None:
    """Recompute ActivityMetric rows: every record's when no ids are given, else just those.

    The accounts and opportunities of the given contacts are recomputed with them (they roll up
    their contacts), after them.
    """
    now = now or timezone.now()
    full = all(ids is None for ids in (contact_ids, lead_ids, account_ids, opportunity_ids))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK])
        if full:
            for kind in (_CONTACT, _LEAD, _ACCOUNT, _OPPORTUNITY):
                _metrics_upsert(kind, None, now)
            return
        contacts = set(contact_ids or ())
        accounts = set(account_ids or ())
        opportunities = set(opportunity_ids or ())
        if contacts:
            accounts |= ids_of(
                Contact.objects.filter(pk__in=contacts, account__isnull=False), "account_id"
            )
            opportunities |= ids_of(
                OpportunityContactRole.objects.filter(contact__in=contacts), "opportunity_id"
            )
        for kind, ids in (
            (_CONTACT, contacts),
            (_LEAD, set(lead_ids or ())),
            (_ACCOUNT, accounts),
            (_OPPORTUNITY, opportunities),
        ):
            for chunk in sql.chunks(ids, METRICS_CHUNK):
                _metrics_upsert(kind, chunk, now)


def activity_refresh_enqueue(*, relation_ids: Collection[int]) -> None:
    """After ingestion stored opens or clicks on these recipients' copies: once the batch is
    committed, recompute their people's metrics and raise any engagement alert (a Celery task).
    """
    if relation_ids:
        jobs.enqueue(jobs.REFRESH_ACTIVITY, sorted(relation_ids))


def activity_refresh(*, relation_ids: Collection[int], now: datetime | None = None) -> None:
    """Recompute the metrics of the people on these relations and check their engagement."""
    people = EmailMessageRelation.objects.filter(pk__in=relation_ids)
    contact_ids = ids_of(people.filter(contact__isnull=False), "contact_id")
    lead_ids = ids_of(people.filter(lead__isnull=False), "lead_id")
    if not (contact_ids or lead_ids):
        return
    activity_metrics_recompute(contact_ids=contact_ids, lead_ids=lead_ids, now=now)
    engagement_alerts_create(contact_ids=contact_ids, lead_ids=lead_ids, now=now)


def activity_changed(
    *,
    contact_ids: Collection[int] = (),
    lead_ids: Collection[int] = (),
    account_ids: Collection[int] = (),
    opportunity_ids: Collection[int] = (),
) -> None:
    """Recompute these records' metrics in the background, once the change is committed."""
    if not (contact_ids or lead_ids or account_ids or opportunity_ids):
        return
    jobs.enqueue(
        jobs.RECOMPUTE_ACTIVITY_METRICS,
        contact_ids=sorted(contact_ids),
        lead_ids=sorted(lead_ids),
        account_ids=sorted(account_ids),
        opportunity_ids=sorted(opportunity_ids),
    )


def _metrics_upsert(kind: _MetricKind, ids: list[int] | None, now: datetime) -> None:
    """Compute the figures of `ids` of `kind` (all when None) and upsert their rows.

    The figures go through a temporary table first: PostgreSQL plans no parallel workers for
    the SELECT inside an INSERT, but does for CREATE TABLE AS, which halves a full recompute.
    """
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "now": adapt(now),
        "since": adapt(now - METRICS_WINDOW),
        # A send with Enhanced Email off counts once, as its task: its copies are left out.
        "logged_as_task": EmailMessageRelation.LOGGED_AS_TASK,
    }
    if ids is not None:
        params |= {f"id{index}": pk for index, pk in enumerate(ids)}
    scope = ", ".join(f"%(id{index})s" for index in range(len(ids or ())))

    def only(column: str) -> str:
        return f"AND {column} IN ({scope})" if ids is not None else ""

    # Events of Don't Profile people are no one's activity (left out of every figure).
    profiled = f"NOT {relation_flagged_sql(DONT_PROFILE, relation='r')}"
    facts = (
        _rollup_facts(kind, only, profiled) if kind.people else _person_facts(kind, only, profiled)
    )
    columns = ", ".join(_METRIC_COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _METRIC_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS activity_facts")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE activity_facts AS
            {facts}
            SELECT record_id, first_email_at, last_email_sent_at, last_email_received_at,
                last_activity_at, emails_sent_30d, emails_received_30d, human_opens_30d,
                human_clicks_30d, activities_30d,
                {_whole_days_since("COALESCE(last_activity_at, created_at)")} AS inactive_days,
                %(now)s AS computed_at
            FROM facts
            """,  # noqa: S608 -- only constants and placeholders are interpolated
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO crm_activitymetric ({kind.column}, {columns})
            SELECT record_id, {columns} FROM activity_facts
            WHERE TRUE
            ON CONFLICT ({kind.column}) DO UPDATE SET {updates}
            """  # noqa: S608 -- only constants are interpolated
        )
        cursor.execute("DROP TABLE activity_facts")


def _person_facts(kind: _MetricKind, only: Callable[[str], str], profiled: str) -> str:
    """The CTEs computing a Contact's or Lead's figures from its emails, events and tasks.

    An email to the person is a To/Cc/Bcc copy of an outgoing email that was sent (a bounced
    copy was sent too); an email from them is the From of an incoming one, auto-replies
    included: they are not replies, but the person's mailbox did answer.
    """
    person = f"r.{kind.column}"
    when = "COALESCE(r.sent_at, e.message_date, e.created_at)"
    return f"""
        WITH emails AS (
            SELECT {person} AS record_id,
                MIN({when}) AS first_email_at,
                MAX({when}) FILTER (WHERE NOT e.incoming) AS last_sent_at,
                MAX({when}) FILTER (WHERE e.incoming) AS last_received_at,
                COUNT(*) FILTER (WHERE NOT e.incoming AND {when} >= %(since)s) AS sent_30d,
                COUNT(*) FILTER (WHERE e.incoming AND {when} >= %(since)s) AS received_30d
            FROM crm_emailmessagerelation AS r
            JOIN crm_emailmessage AS e ON e.id = r.email_id
            WHERE {person} IS NOT NULL {only(person)}
                AND ((NOT e.incoming AND r.relation_type IN ('to', 'cc', 'bcc')
                        AND r.delivery_status IN ('sent', 'bounced')
                        AND r.untracked_reason <> %(logged_as_task)s)
                    OR (e.incoming AND r.relation_type = 'from'))
            GROUP BY {person}
        ),
        events AS (
            SELECT {person} AS record_id,
                MAX(t.occurred_at) AS last_engaged_at,
                COUNT(*) FILTER (WHERE t.kind = 'open' AND t.occurred_at >= %(since)s)
                    AS opens_30d,
                COUNT(*) FILTER (WHERE t.kind = 'click' AND t.occurred_at >= %(since)s)
                    AS clicks_30d
            FROM tracking_trackingevent AS t
            JOIN crm_emailmessagerelation AS r ON r.id = t.relation_id
            WHERE t.label = 'human' AND NOT t.internal AND {person} IS NOT NULL {only(person)}
                AND {profiled}
            GROUP BY {person}
        ),
        {_task_facts(kind, only)},
        facts AS (
            SELECT x.id AS record_id, x.created_at,
                m.first_email_at,
                m.last_sent_at AS last_email_sent_at,
                m.last_received_at AS last_email_received_at,
                {
        _greatest("m.last_sent_at", "m.last_received_at", "v.last_engaged_at", "k.last_task_at")
    } AS last_activity_at,
                COALESCE(m.sent_30d, 0) AS emails_sent_30d,
                COALESCE(m.received_30d, 0) AS emails_received_30d,
                COALESCE(v.opens_30d, 0) AS human_opens_30d,
                COALESCE(v.clicks_30d, 0) AS human_clicks_30d,
                COALESCE(m.sent_30d, 0) + COALESCE(m.received_30d, 0) + COALESCE(v.opens_30d, 0)
                    + COALESCE(v.clicks_30d, 0) + COALESCE(k.tasks_30d, 0) AS activities_30d
            FROM {kind.table} AS x
            LEFT JOIN emails AS m ON m.record_id = x.id
            LEFT JOIN events AS v ON v.record_id = x.id
            LEFT JOIN tasks AS k ON k.record_id = x.id
            WHERE TRUE {only("x.id")}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _rollup_facts(kind: _MetricKind, only: Callable[[str], str], profiled: str) -> str:
    """The CTEs computing an Account's or Opportunity's figures from the same story its
    timeline shows (crm.timeline): the emails to or from its people (an account's contacts, an
    opportunity's contact roles) and those related to the record itself, each email once however
    many of its people it reached; the human opens and clicks on those emails; its own done
    tasks and its people's, each once.

    An email counts as a person's as it does on their own metrics (their copy was sent, at its
    sending time, or they sent it); an email related to the record counts once one of its copies
    was sent, or when it came in. The people's opens, clicks and tasks are read from their
    metrics, which the recompute writes first: only the emails are read again, to count each
    once.
    """
    when = "COALESCE(e.message_date, e.created_at)"
    return f"""
        WITH mail AS (
            -- A contact's copy of an outgoing email is To/Cc/Bcc, of an incoming one From
            -- (crm.sending, inbound.effects): the copy alone says which, so only incoming
            -- copies, which have no sending time, read their email.
            SELECT p.record_id, r.email_id, FALSE AS incoming, r.sent_at AS at
            FROM ({kind.people}) AS p
            JOIN crm_emailmessagerelation AS r ON r.contact_id = p.contact_id
            WHERE r.relation_type IN ('to', 'cc', 'bcc') AND r.sent_at IS NOT NULL
                AND r.delivery_status IN ('sent', 'bounced')
                AND r.untracked_reason <> %(logged_as_task)s {only("p.record_id")}
            UNION ALL
            SELECT p.record_id, r.email_id, TRUE, {when}
            FROM ({kind.people}) AS p
            JOIN crm_emailmessagerelation AS r ON r.contact_id = p.contact_id
            JOIN crm_emailmessage AS e ON e.id = r.email_id
            WHERE r.relation_type = 'from' AND e.incoming {only("p.record_id")}
            UNION ALL
            SELECT e.{kind.related_column}, e.id, e.incoming, {when}
            FROM crm_emailmessage AS e
            WHERE e.{kind.related_column} IS NOT NULL {only(f"e.{kind.related_column}")}
                AND (e.incoming OR EXISTS (
                    SELECT 1 FROM crm_emailmessagerelation AS c
                    WHERE c.email_id = e.id AND c.relation_type IN ('to', 'cc', 'bcc')
                        AND c.delivery_status IN ('sent', 'bounced')
                        AND c.untracked_reason <> %(logged_as_task)s
                ))
        ),
        emails AS (
            -- An email that reached several of the record's people counts once, at its first
            -- copy's time.
            SELECT record_id,
                MIN(at) AS first_email_at,
                MAX(at) FILTER (WHERE NOT incoming) AS last_sent_at,
                MAX(at) FILTER (WHERE incoming) AS last_received_at,
                COUNT(*) FILTER (WHERE NOT incoming AND at >= %(since)s) AS sent_30d,
                COUNT(*) FILTER (WHERE incoming AND at >= %(since)s) AS received_30d
            FROM (
                SELECT record_id, email_id, incoming, MIN(at) AS at
                FROM mail GROUP BY record_id, email_id, incoming
            ) AS once
            GROUP BY record_id
        ),
        people AS (
            -- What adds up without repeats from the people's own metrics (computed just
            -- before): each open, click and task of theirs is one person's.
            SELECT p.record_id,
                MAX(a.last_activity_at) AS last_activity_at,
                SUM(a.human_opens_30d) AS opens_30d,
                SUM(a.human_clicks_30d) AS clicks_30d,
                SUM(a.activities_30d - a.emails_sent_30d - a.emails_received_30d
                    - a.human_opens_30d - a.human_clicks_30d) AS tasks_30d
            FROM ({kind.people}) AS p
            JOIN crm_activitymetric AS a ON a.contact_id = p.contact_id
            WHERE TRUE {only("p.record_id")}
            GROUP BY p.record_id
        ),
        events AS (
            -- Opens and clicks on the copies of an email related to the record that went to
            -- anyone but its people (theirs are counted above).
            SELECT e.{kind.related_column} AS record_id,
                MAX(t.occurred_at) AS last_engaged_at,
                COUNT(*) FILTER (WHERE t.kind = 'open' AND t.occurred_at >= %(since)s)
                    AS opens_30d,
                COUNT(*) FILTER (WHERE t.kind = 'click' AND t.occurred_at >= %(since)s)
                    AS clicks_30d
            FROM crm_emailmessage AS e
            JOIN crm_emailmessagerelation AS r ON r.email_id = e.id
            JOIN tracking_trackingevent AS t ON t.relation_id = r.id
            WHERE t.label = 'human' AND NOT t.internal AND {profiled}
                AND e.{kind.related_column} IS NOT NULL {only(f"e.{kind.related_column}")}
                AND NOT EXISTS (
                    SELECT 1 FROM ({kind.people}) AS q
                    WHERE q.record_id = e.{kind.related_column} AND q.contact_id = r.contact_id
                )
            GROUP BY e.{kind.related_column}
        ),
        tasks AS (
            -- The record's own done tasks, but for those its people's metrics count already.
            SELECT t.{kind.task_column} AS record_id,
                MAX(t.completed_at) AS last_task_at,
                COUNT(*) FILTER (WHERE t.completed_at >= %(since)s) AS tasks_30d
            FROM crm_task AS t
            WHERE t.status = 'completed' AND t.completed_at IS NOT NULL
                AND t.{kind.task_column} IS NOT NULL {only(f"t.{kind.task_column}")}
                AND NOT EXISTS (
                    SELECT 1 FROM ({kind.people}) AS q
                    WHERE q.record_id = t.{kind.task_column} AND q.contact_id = t.who_contact_id
                )
            GROUP BY t.{kind.task_column}
        ),
        facts AS (
            SELECT x.id AS record_id, x.created_at,
                m.first_email_at,
                m.last_sent_at AS last_email_sent_at,
                m.last_received_at AS last_email_received_at,
                {
        _greatest(
            "m.last_sent_at",
            "m.last_received_at",
            "n.last_activity_at",
            "v.last_engaged_at",
            "k.last_task_at",
        )
    } AS last_activity_at,
                COALESCE(m.sent_30d, 0) AS emails_sent_30d,
                COALESCE(m.received_30d, 0) AS emails_received_30d,
                COALESCE(n.opens_30d, 0) + COALESCE(v.opens_30d, 0) AS human_opens_30d,
                COALESCE(n.clicks_30d, 0) + COALESCE(v.clicks_30d, 0) AS human_clicks_30d,
                COALESCE(m.sent_30d, 0) + COALESCE(m.received_30d, 0)
                    + COALESCE(n.opens_30d, 0) + COALESCE(v.opens_30d, 0)
                    + COALESCE(n.clicks_30d, 0) + COALESCE(v.clicks_30d, 0)
                    + COALESCE(n.tasks_30d, 0) + COALESCE(k.tasks_30d, 0) AS activities_30d
            FROM {kind.table} AS x
            LEFT JOIN emails AS m ON m.record_id = x.id
            LEFT JOIN people AS n ON n.record_id = x.id
            LEFT JOIN events AS v ON v.record_id = x.id
            LEFT JOIN tasks AS k ON k.record_id = x.id
            WHERE TRUE {only("x.id")}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _task_facts(kind: _MetricKind, only: Callable[[str], str]) -> str:
    """A CTE `tasks`: the record's done tasks and calls (an open task is a plan, not activity)."""
    return f"""
        tasks AS (
            SELECT {kind.task_column} AS record_id,
                MAX(completed_at) AS last_task_at,
                COUNT(*) FILTER (WHERE completed_at >= %(since)s) AS tasks_30d
            FROM crm_task
            WHERE status = 'completed' AND completed_at IS NOT NULL
                AND {kind.task_column} IS NOT NULL {only(kind.task_column)}
            GROUP BY {kind.task_column}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _greatest(*columns: str) -> str:
    """The latest of these times, ignoring NULLs (NULL when all are)."""
    if connection.vendor == "postgresql":
        return f"GREATEST({', '.join(columns)})"
    # SQLite's many-argument MAX() is NULL if any argument is; times are stored as ISO text, so
    # '' sorts below every one of them.
    return f"NULLIF(MAX({', '.join(f'COALESCE({c}, {chr(39) * 2})' for c in columns)}), '')"


def _whole_days_since(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (%(now)s - {column})) / 86400))::integer"
    return f"MAX(0, CAST(julianday(%(now)s) - julianday({column}) AS INTEGER))"


def _processing_allowed(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Leave out people under Don't Process or Forget: Openrate makes no work from their data."""
    return queryset.exclude(individual__has_opted_out_processing=True).exclude(
        individual__should_forget=True
    )


def follow_ups_create(*, now: datetime | None = None) -> int:
    """A follow-up Task for each Contact, Lead and open Opportunity quiet for Setup's days.

    Quiet means no activity (or, with none ever, no existence) for `no_activity_days`. The
    candidates are read from the stored metrics, which can only be older than the truth (they
    under-state activity), then recomputed, so a call logged since the last recompute counts.
    The insert relies on the one-open-follow-up-per-record unique indexes: however many runs
    race, a record gets one. Returns how many records were found due.
    """
    now = now or timezone.now()
    days = OrgSettings.load().no_activity_days
    cutoff = now - timedelta(days=days)
    quiet = Q(created_at__lte=cutoff) & (
        Q(activity__last_activity_at__isnull=True) | Q(activity__last_activity_at__lte=cutoff)
    )
    open_follow_up = Q(tasks__kind=Task.Kind.FOLLOW_UP) & ~Q(tasks__status=Task.Status.COMPLETED)
    people = {
        Contact: _processing_allowed(Contact.objects.filter(quiet)),
        Lead: _processing_allowed(Lead.objects.filter(quiet).exclude(status=Lead.Status.CONVERTED)),
        Opportunity: Opportunity.objects.open().filter(quiet),
    }
    candidates = {
        model: ids_of(queryset.exclude(pk__in=queryset.filter(open_follow_up)), "pk")
        for model, queryset in people.items()
    }
    if not any(candidates.values()):
        return 0
    activity_metrics_recompute(
        contact_ids=candidates[Contact],
        lead_ids=candidates[Lead],
        account_ids=(),
        opportunity_ids=candidates[Opportunity],
        now=now,
    )
    today = timezone.localdate(now)
    tasks: list[Task] = []
    for model, queryset in people.items():
        names = ("name",) if model is Opportunity else ("first_name", "last_name")
        due = queryset.filter(pk__in=candidates[model]).values_list(
            "pk", "owner_id", "created_at", "activity__last_activity_at", *names
        )
        record_field = (
            "who_contact_id"
            if model is Contact
            else "who_lead_id"
            if model is Lead
            else "what_opportunity_id"
        )
        for pk, owner_id, created_at, last_activity_at, *name in due.iterator():
            quiet_since = last_activity_at or created_at
            if quiet_since > cutoff:
                continue  # the recompute found activity the stored metrics had not seen
            quiet_days = (now - quiet_since).days
            about = "on" if model is Opportunity else "with"
            tasks.append(
                Task(
                    owner_id=owner_id,
                    subject=f"No activity for {quiet_days} days: follow up {about} "
                    f"{' '.join(filter(None, name))}"[:255],
                    description=f"Nothing has happened on this record for {quiet_days} days "
                    f"(Setup asks for a follow-up after {days}).",
                    kind=Task.Kind.FOLLOW_UP,
                    due_date=today,
                    **{record_field: pk},
                )
            )
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def follow_ups_close(
    *, contact_ids: Collection[int], lead_ids: Collection[int], now: datetime | None = None
) -> int:
    """Complete the open follow-ups of these people (and their opportunities) that are no
    longer quiet: their stored metrics, recomputed first by the caller, show activity within
    Setup's days. Returns how many closed."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=OrgSettings.load().no_activity_days)
    opportunity_ids = ids_of(
        OpportunityContactRole.objects.filter(contact__in=contact_ids), "opportunity_id"
    )
    active = (
        Q(who_contact__in=contact_ids, who_contact__activity__last_activity_at__gt=cutoff)
        | Q(who_lead__in=lead_ids, who_lead__activity__last_activity_at__gt=cutoff)
        | Q(
            what_opportunity__in=opportunity_ids,
            what_opportunity__activity__last_activity_at__gt=cutoff,
        )
    )
    due = Task.objects.filter(kind=Task.Kind.FOLLOW_UP).exclude(status=Task.Status.COMPLETED)
    return Task.objects.filter(pk__in=due.filter(active).values("pk")).update(
        status=Task.Status.COMPLETED, completed_at=now
    )


def engagement_alerts_create(
    *,
    contact_ids: Collection[int] | None = None,
    lead_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> int:
    """A Task for the owner of each person with Setup's number of human opens and clicks
    within 24 hours: once per person per day (a unique index, not a check). Every person's
    when no ids are given, else just those; returns how many were due.
    """
    now = now or timezone.now()
    org = OrgSettings.load()
    threshold = org.engagement_alert_threshold
    full = contact_ids is None and lead_ids is None
    today = timezone.localdate(now)
    tasks: list[Task] = []
    for model, column, ids in (
        (Contact, "contact_id", contact_ids),
        (Lead, "lead_id", lead_ids),
    ):
        counts: dict[int, tuple[int, int]] = {}
        for chunk in [None] if full else sql.chunks(ids or (), METRICS_CHUNK):
            counts |= _engagement_counts(column, chunk, now=now, threshold=threshold)
        if not counts:
            continue
        # Don't Profile: an alert is a judgement of the person's engagement.
        people = _processing_allowed(model.objects.filter(pk__in=counts)).exclude(
            person_flagged(DONT_PROFILE, org)
        )
        if model is Lead:
            people = people.exclude(status=Lead.Status.CONVERTED)
        for person in people.only("pk", "owner_id", "first_name", "last_name"):
            opens, clicks = counts[person.pk]
            tasks.append(
                Task(
                    owner_id=person.owner_id,
                    subject=_alert_subject(person.name, opens, clicks)[:255],
                    description=f"{opens} human opens and {clicks} clicks in the 24 hours to "
                    f"{timezone.localtime(now):%Y-%m-%d %H:%M}: a good moment to get in touch.",
                    kind=Task.Kind.ENGAGEMENT_ALERT,
                    alert_date=today,
                    due_date=today,
                    priority=Task.Priority.HIGH,
                    who_contact=person if model is Contact else None,
                    who_lead=person if model is Lead else None,
                )
            )
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def _engagement_counts(
    column: str, ids: list[int] | None, *, now: datetime, threshold: int
) -> dict[int, tuple[int, int]]:
    """(human opens, human clicks) in the last 24 hours of each person over the threshold."""
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "now": adapt(now),
        "since": adapt(now - ALERT_WINDOW),
        "threshold": threshold,
    }
    scope = ""
    if ids is not None:
        params |= {f"id{index}": pk for index, pk in enumerate(ids)}
        scope = f"AND r.{column} IN ({', '.join(f'%(id{i})s' for i in range(len(ids)))})"
    query = f"""
        SELECT r.{column},
            COUNT(*) FILTER (WHERE t.kind = 'open'),
            COUNT(*) FILTER (WHERE t.kind = 'click')
        FROM tracking_trackingevent AS t
        JOIN crm_emailmessagerelation AS r ON r.id = t.relation_id
        WHERE t.label = 'human' AND NOT t.internal
            AND t.occurred_at > %(since)s AND t.occurred_at <= %(now)s
            AND r.{column} IS NOT NULL {scope}
        GROUP BY r.{column}
        HAVING COUNT(*) >= %(threshold)s
    """  # noqa: S608 -- only constants and placeholders are interpolated
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {pk: (opens, clicks) for pk, opens, clicks in cursor.fetchall()}


def _alert_subject(name: str, opens: int, clicks: int) -> str:
    def times(count: int) -> str:
        return "once" if count == 1 else f"{count} times"

    if not clicks:
        return f"{name} opened your email {times(opens)} today"
    if not opens:
        return f"{name} clicked a link in your email {times(clicks)} today"
    return f"{name} opened your email {times(opens)} and clicked {times(clicks)} today"
