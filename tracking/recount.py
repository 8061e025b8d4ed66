"""Recounting opens and clicks from the stored events, set-based, when they must be counted
again: Setup switched machine-open filtering or changed its internal addresses and IP ranges
(every email), the demo data, a repair.

Ingestion adds each new event to the counters (tracking.ingestion); this recomputes them from
every stored event of the recipients named, with the same rules: internal events count nowhere,
and a human click opens a copy whose pixel never loaded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from django.db import connection, transaction

from crm import jobs, sql
from crm.internal import InternalRules
from crm.models import EmailMessageRelation, OrgSettings, TrackedLink
from crm.rollups import first_day_held_in_full
from tracking.classify import Label
from tracking.models import TrackingEvent
from tracking.rollups import INGEST_LOCK, rollups_rebuild

# recount() names at most this many ids per statement (SQLite allows 32,766 parameters).
CHUNK = 10_000
RECOUNT_COUNTERS = "tracking.tasks.recount_counters"
RECOUNT_INTERNAL = "tracking.tasks.recount_internal"
_INTERNAL_FIELDS = {"internal_addresses", "internal_ip_ranges"}


def recount_when_setup_changed(*, fields: Collection[str]) -> None:
    """crm's setup_changed hook: once the change commits, queue a recount of every email's
    figures when what counts changed. Machine-open filtering decides which opens count; the
    internal addresses and ranges decide which events are engagement at all (and the rollups
    then change too)."""
    if _INTERNAL_FIELDS & set(fields):
        jobs.enqueue(RECOUNT_INTERNAL)  # recounts everything, filtering included
    elif "machine_open_filtering" in fields:
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
    human = f"label = '{Label.HUMAN}' AND NOT internal"
    machine = f"label <> '{Label.HUMAN}' AND NOT internal"
    # What counts (the email's figures, last clicked), and what opens a copy.
    counts = f"NOT internal AND (label = '{Label.HUMAN}' {counted})"
    opened = f"((kind = 'open' AND {counts}) OR (kind = 'click' AND {human}))"
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
                        AND NOT e.internal AND (e.label = '{Label.HUMAN}' {counted})
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ),
                machine_open_label = COALESCE((
                    SELECT e.label FROM tracking_trackingevent AS e
                    WHERE e.relation_id = crm_emailmessagerelation.id AND e.kind = 'open'
                        AND e.label <> '{Label.HUMAN}' AND NOT e.internal
                    ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1
                ), '')
            FROM (
                SELECT relation_id,
                    COUNT(*) FILTER (WHERE kind = 'open' AND {human}) AS human_opens,
                    COUNT(*) FILTER (WHERE kind = 'open' AND {machine}) AS machine_opens,
                    COUNT(*) FILTER (WHERE kind = 'click' AND {human}) AS human_clicks,
                    COUNT(*) FILTER (WHERE kind = 'click' AND {machine}) AS machine_clicks,
                    MIN(occurred_at) FILTER (WHERE {opened}) AS first_opened_at,
                    MAX(occurred_at) FILTER (WHERE {opened}) AS last_opened_at,
                    MAX(occurred_at) FILTER (WHERE kind = 'click' AND {counts}) AS last_clicked_at
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
                is_opened = a.first_opened_at IS NOT NULL,
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
                    COUNT(*) FILTER (WHERE {machine}) AS machine
                FROM tracking_trackingevent
                WHERE link_id IN ({sql.placeholders(ids)})
                GROUP BY link_id
            ) AS a
            WHERE crm_trackedlink.id = a.link_id
            """,
            ids,
        )


def internal_recount_all() -> int:
    """After Setup changed its internal addresses or IP ranges: mark every stored event
    internal or not by the new rules, then recount every counter, link and rollup from them.
    Returns how many recipients were recounted."""
    internal_marks_refresh()
    total = counters_recount_all(links=True)
    rollups_rebuild(since=first_day_held_in_full(OrgSettings.load().email_log_retention_months))
    return total


@transaction.atomic
def internal_marks_refresh() -> None:
    """Mark the stored events internal by Setup's rules now (crm.internal), set-based: clear
    every mark, then mark the events of internal recipients' copies, then those from internal
    IP ranges. The addresses are matched in SQL; the ranges on the distinct stored IPs, which
    are far fewer than the events (SQLite has no network type to match them in SQL)."""
    org = OrgSettings.load()
    rules = InternalRules.from_setup(
        org.internal_addresses, org.internal_ip_ranges, full_ip=org.store_full_ip
    )
    events = TrackingEvent.objects.order_by()
    events.filter(internal=True).update(internal=False)
    if rules.addresses or rules.domains:
        copies = EmailMessageRelation.objects.filter(rules.address_q("address")).values("pk")
        events.filter(relation__in=copies).update(internal=True)
    if rules.networks:
        distinct = events.exclude(ip=None).values_list("ip", flat=True).distinct()
        matched = [str(ip) for ip in distinct.iterator() if rules.ip_is_internal(str(ip))]
        for start in range(0, len(matched), CHUNK):
            events.filter(ip__in=matched[start : start + CHUNK]).update(internal=True)


def counters_recount_all(*, links: bool = False) -> int:
    """Recount every recipient with events, and their emails, from the stored events, a chunk
    of recipients per transaction: machine-open filtering decides which opens count, so
    switching it must recount what was counted the other way. Links count human and machine
    clicks apart, whatever the setting: they are recounted only when asked (`links`), when the
    events that count changed. Returns how many recipients."""
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
        link_ids: set[int] = set()
        if links:
            link_ids = set(
                TrackedLink.objects.filter(email__relations__in=ids)
                .order_by()
                .values_list("pk", flat=True)
            )
        with transaction.atomic():
            recount(
                relation_ids=set(ids),
                link_ids=link_ids,
                machine_open_filtering=machine_open_filtering,
            )
        last, total = ids[-1], total + len(ids)


def _execute(query: str, params: Sequence[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(query, list(params))
