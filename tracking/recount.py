"""Recounting opens and clicks from the stored events, set-based, when they must be counted
again: Setup switched machine-open filtering (every email), the demo data, a repair.

Ingestion adds each new event to the counters (tracking.ingestion); this recomputes them from
every stored event of the recipients named.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from django.db import connection, transaction

from crm import jobs, sql
from crm.models import EmailMessageRelation, OrgSettings
from tracking.classify import Label
from tracking.models import TrackingEvent
from tracking.rollups import INGEST_LOCK

# recount() names at most this many ids per statement (SQLite allows 32,766 parameters).
CHUNK = 10_000
RECOUNT_COUNTERS = "tracking.tasks.recount_counters"


def recount_when_filtering_switched(*, fields: Collection[str]) -> None:
    """crm's setup_changed hook: machine-open filtering decides which opens count, so switching
    it queues a recount of every email's figures, once the change commits."""
    if "machine_open_filtering" in fields:
        jobs.enqueue(RECOUNT_COUNTERS)


def recount(*, relation_ids: set[int], link_ids: set[int], machine_open_filtering: bool) -> None:
    """Recount recipients, their emails and links from all their stored events (set-based).

    Ingestion adds to the counters instead; this is for events written some other way (the
    demo data) and for repairs.
    """
    if connection.vendor == "postgresql":
        # Serialise recounts so each one sees the events every earlier one committed.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])
    counted = "" if machine_open_filtering else "OR TRUE"
    human = f"label = '{Label.HUMAN}'"
    for ids in sql.chunks(relation_ids, CHUNK):
        _execute(
            f"""
            UPDATE crm_emailmessagerelation SET
                human_opens = a.human_opens,
                machine_opens = a.machine_opens,
                human_clicks = a.human_clicks,
                machine_clicks = a.machine_clicks,
                first_opened_at = a.first_opened_at,
                last_opened_at = a.last_opened_at,
                last_clicked_at = a.last_clicked_at,
                last_clicked_link_id = (
                    SELECT e.link_id FROM tracking_trackingevent AS e
                    WHERE e.relation_id = crm_emailmessagerelation.id AND e.kind = 'click'
                        AND (e.{human} {counted})
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ),
                machine_open_label = COALESCE((
                    SELECT e.label FROM tracking_trackingevent AS e
                    WHERE e.relation_id = crm_emailmessagerelation.id AND e.kind = 'open'
                        AND NOT e.{human}
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ), '')
            FROM (
                SELECT relation_id,
                    COUNT(*) FILTER (WHERE kind = 'open' AND {human}) AS human_opens,
                    COUNT(*) FILTER (WHERE kind = 'open' AND NOT {human}) AS machine_opens,
                    COUNT(*) FILTER (WHERE kind = 'click' AND {human}) AS human_clicks,
                    COUNT(*) FILTER (WHERE kind = 'click' AND NOT {human}) AS machine_clicks,
                    MIN(occurred_at) FILTER (WHERE kind = 'open' AND ({human} {counted}))
                        AS first_opened_at,
                    MAX(occurred_at) FILTER (WHERE kind = 'open' AND ({human} {counted}))
                        AS last_opened_at,
                    MAX(occurred_at) FILTER (WHERE kind = 'click' AND ({human} {counted}))
                        AS last_clicked_at
                FROM tracking_trackingevent
                WHERE relation_id IN ({sql.placeholders(ids)})
                GROUP BY relation_id
            ) AS a
            WHERE crm_emailmessagerelation.id = a.relation_id
            """,
            ids,
        )
    opens = "r.human_opens" if machine_open_filtering else "r.human_opens + r.machine_opens"
    clicks = "r.human_clicks" if machine_open_filtering else "r.human_clicks + r.machine_clicks"
    email_ids = list(
        EmailMessageRelation.objects.filter(pk__in=relation_ids)
        .order_by()  # the model's default ordering would join the emails for nothing
        .values_list("email_id", flat=True)
        .distinct()
    )
    for ids in sql.chunks(email_ids, CHUNK):
        _execute(
            f"""
            UPDATE crm_emailmessage SET
                times_opened = a.opens,
                times_clicked = a.clicks,
                is_opened = a.opens > 0,
                first_opened_at = a.first_opened_at,
                last_opened_at = a.last_opened_at
            FROM (
                SELECT r.email_id, SUM({opens}) AS opens, SUM({clicks}) AS clicks,
                    MIN(r.first_opened_at) AS first_opened_at,
                    MAX(r.last_opened_at) AS last_opened_at
                FROM crm_emailmessagerelation AS r
                WHERE r.email_id IN ({sql.placeholders(ids)})
                GROUP BY r.email_id
            ) AS a
            WHERE crm_emailmessage.id = a.email_id
            """,
            ids,
        )
    for ids in sql.chunks(link_ids, CHUNK):
        _execute(
            f"""
            UPDATE crm_trackedlink SET human_clicks = a.human, machine_clicks = a.machine
            FROM (
                SELECT link_id,
                    COUNT(*) FILTER (WHERE {human}) AS human,
                    COUNT(*) FILTER (WHERE NOT {human}) AS machine
                FROM tracking_trackingevent
                WHERE link_id IN ({sql.placeholders(ids)})
                GROUP BY link_id
            ) AS a
            WHERE crm_trackedlink.id = a.link_id
            """,
            ids,
        )


def counters_recount_all() -> int:
    """Recount every recipient with events, and their emails, from the stored events, a chunk
    of recipients per transaction: machine-open filtering decides which opens count, so
    switching it must recount what was counted the other way. Returns how many recipients."""
    machine_open_filtering = OrgSettings.load().machine_open_filtering
    last = total = 0
    while True:
        ids = list(
            TrackingEvent.objects.filter(relation_id__gt=last)
            .order_by("relation_id")
            .values_list("relation_id", flat=True)
            .distinct()[:CHUNK]
        )
        if not ids:
            return total
        with transaction.atomic():
            # Links count human and machine clicks apart, whatever the setting.
            recount(
                relation_ids=set(ids), link_ids=set(), machine_open_filtering=machine_open_filtering
            )
        last, total = ids[-1], total + len(ids)


def _execute(query: str, params: Sequence[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(query, list(params))
