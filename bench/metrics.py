"""Benchmark: the full activity-metrics recompute for 100,000 contacts and 2,000,000 emails.

On PostgreSQL, in a database of its own, it generates the rows with set-based SQL (generate_series),
then times in the same run:

- the floor: one hand-written aggregate query computing the contacts' figures from the same rows
  (emails, their recipients, human opens and clicks, done tasks) into a temporary table;
- Openrate's full recompute (`activity_metrics_recompute()`), which computes the same figures and
  upserts them into ActivityMetric, then rolls the contacts up into their accounts.

Best of three each. Target: the recompute within 3x of the floor; exits 1 if it misses.

    .venv/bin/python bench/metrics.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process
from bench.measure import best_seconds

DATABASE = "openrate_bench_metrics"
CONTACTS = 100_000
ACCOUNTS = 10_000
EMAILS = 2_000_000
EVERY_NTH_INCOMING = 5  # one email in five is a person writing back
EVENTS = 1_000_000
TASKS = 100_000
RUNS = 3
TARGET_RATIO = 3.0
# Tables whose id sequences must go on past the generated rows.
GENERATED_IDS = ("crm_user", "crm_account", "crm_contact", "crm_emailmessage", "crm_task")

# The floor: the contacts' figures in one statement, written by hand for this schema.
FLOOR = """
CREATE TEMP TABLE floor AS
SELECT c.id,
    m.first_email_at, m.last_sent_at, m.last_received_at,
    GREATEST(m.last_sent_at, m.last_received_at, v.last_engaged_at, k.last_task_at)
        AS last_activity_at,
    COALESCE(m.sent_30d, 0) AS sent_30d, COALESCE(m.received_30d, 0) AS received_30d,
    COALESCE(v.opens_30d, 0) AS opens_30d, COALESCE(v.clicks_30d, 0) AS clicks_30d,
    COALESCE(m.sent_30d, 0) + COALESCE(m.received_30d, 0) + COALESCE(v.opens_30d, 0)
        + COALESCE(v.clicks_30d, 0) + COALESCE(k.tasks_30d, 0) AS activities_30d,
    FLOOR(EXTRACT(EPOCH FROM (now() - COALESCE(GREATEST(m.last_sent_at, m.last_received_at,
        v.last_engaged_at, k.last_task_at), c.created_at))) / 86400)::int AS inactive_days
FROM crm_contact AS c
LEFT JOIN (
    SELECT r.contact_id,
        MIN(COALESCE(r.sent_at, e.message_date, e.created_at)) AS first_email_at,
        MAX(COALESCE(r.sent_at, e.message_date, e.created_at)) FILTER (WHERE NOT e.incoming)
            AS last_sent_at,
        MAX(COALESCE(e.message_date, e.created_at)) FILTER (WHERE e.incoming) AS last_received_at,
        COUNT(*) FILTER (WHERE NOT e.incoming
            AND COALESCE(r.sent_at, e.message_date, e.created_at) >= now() - interval '30 days')
            AS sent_30d,
        COUNT(*) FILTER (WHERE e.incoming
            AND COALESCE(e.message_date, e.created_at) >= now() - interval '30 days')
            AS received_30d
    FROM crm_emailmessagerelation AS r JOIN crm_emailmessage AS e ON e.id = r.email_id
    WHERE r.contact_id IS NOT NULL
        AND ((NOT e.incoming AND r.relation_type IN ('to', 'cc', 'bcc')
                AND r.delivery_status IN ('sent', 'bounced'))
            OR (e.incoming AND r.relation_type = 'from'))
    GROUP BY r.contact_id
) AS m ON m.contact_id = c.id
LEFT JOIN (
    SELECT r.contact_id, MAX(t.occurred_at) AS last_engaged_at,
        COUNT(*) FILTER (WHERE t.kind = 'open' AND t.occurred_at >= now() - interval '30 days')
            AS opens_30d,
        COUNT(*) FILTER (WHERE t.kind = 'click' AND t.occurred_at >= now() - interval '30 days')
            AS clicks_30d
    FROM tracking_trackingevent AS t JOIN crm_emailmessagerelation AS r ON r.id = t.relation_id
    WHERE t.label = 'human' AND r.contact_id IS NOT NULL
    GROUP BY r.contact_id
) AS v ON v.contact_id = c.id
LEFT JOIN (
    SELECT who_contact_id, MAX(completed_at) AS last_task_at,
        COUNT(*) FILTER (WHERE completed_at >= now() - interval '30 days') AS tasks_30d
    FROM crm_task WHERE status = 'completed' AND who_contact_id IS NOT NULL
    GROUP BY who_contact_id
) AS k ON k.who_contact_id = c.id
"""


def main() -> int:
    start_in_process(DATABASE)
    from django.db import connection

    from bench.data import generating

    started = time.perf_counter()
    with connection.cursor() as cursor, generating(cursor, sequences=GENERATED_IDS):
        _generate(cursor)
    print(f"Generated the rows in {time.perf_counter() - started:.0f} s")

    from crm.activity import activity_metrics_recompute
    from crm.models import ActivityMetric

    def floor() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS floor")
            cursor.execute(FLOOR)

    floor_s = best_seconds(floor, runs=RUNS)
    recompute_s = best_seconds(activity_metrics_recompute, runs=RUNS)
    rows = ActivityMetric.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM floor")
        (floor_rows,) = cursor.fetchone()
    ratio = recompute_s / floor_s
    print(
        f"\nActivity metrics, {CONTACTS:,} contacts ({ACCOUNTS:,} accounts), {EMAILS:,} emails, "
        f"{EVENTS:,} tracking events, {TASKS:,} tasks (PostgreSQL, best of {RUNS})"
    )
    print(f"{'floor: one hand-written aggregate query':<48} {floor_s:>7.2f} s  {floor_rows:,} rows")
    print(f"{'full recompute (upsert, + account rollup)':<48} {recompute_s:>7.2f} s  {rows:,} rows")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"\nratio {ratio:.2f}x (target within {TARGET_RATIO:.0f}x): {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


def _generate(cursor) -> None:  # type: ignore[no-untyped-def]
    """Every table filled by INSERT ... SELECT over generate_series: seconds, not minutes."""
    from bench.data import insert_select

    insert_select(
        cursor,
        "crm_user",
        {"id": "1", "username": "'bench'", "password": "'!'", "date_joined": "now()"},
        "(SELECT 1) AS one",
    )
    insert_select(
        cursor,
        "crm_account",
        {"id": "i", "name": "'Account ' || i", "owner_id": "1"},
        f"generate_series(1, {ACCOUNTS}) AS i",
    )
    insert_select(
        cursor,
        "crm_contact",
        {
            "id": "i",
            "last_name": "'Contact ' || i",
            "email": "'c' || i || '@example.com'",
            "owner_id": "1",
            "account_id": f"1 + i % {ACCOUNTS}",
            "created_at": "now() - interval '400 days'",
        },
        f"generate_series(1, {CONTACTS}) AS i",
    )
    # Sent over the last year; a fifth of them incoming.
    insert_select(
        cursor,
        "crm_emailmessage",
        {
            "id": "i",
            "subject": "'Email ' || i",
            "from_address": "'rep@openrate.example'",
            "incoming": f"i % {EVERY_NTH_INCOMING} = 0",
            "status": f"CASE WHEN i % {EVERY_NTH_INCOMING} = 0 THEN 'received' ELSE 'sent' END",
            "message_date": "now() - random() * interval '365 days'",
            "created_at": "now() - interval '366 days'",
        },
        f"generate_series(1, {EMAILS}) AS i",
    )
    # One row per email for the person (To, or From when incoming); outgoing ones also name the
    # sender, as every real send does. One copy in twenty failed.
    insert_select(
        cursor,
        "crm_emailmessagerelation",
        {
            "email_id": "e.id",
            "relation_type": "CASE WHEN e.incoming THEN 'from' ELSE 'to' END",
            "address": "'person@example.com'",
            "contact_id": f"1 + (e.id * 7919) % {CONTACTS}",
            "delivery_status": "CASE WHEN e.id % 20 = 1 THEN 'failed' ELSE 'sent' END",
            "sent_at": "CASE WHEN e.incoming THEN NULL ELSE e.message_date END",
        },
        "crm_emailmessage AS e",
    )
    insert_select(
        cursor,
        "crm_emailmessagerelation",
        {
            "email_id": "e.id",
            "relation_type": "'from'",
            "address": "'rep@openrate.example'",
            "user_id": "1",
            "delivery_status": "'sent'",
        },
        "crm_emailmessage AS e WHERE NOT e.incoming",
    )
    # Opens and clicks on recipients' copies, seven in ten human, within a week of the send.
    insert_select(
        cursor,
        "tracking_trackingevent",
        {
            "relation_id": "r.id",
            "kind": "CASE WHEN random() < 0.8 THEN 'open' ELSE 'click' END",
            "label": "CASE WHEN random() < 0.7 THEN 'human' ELSE 'apple_mpp' END",
            "occurred_at": "r.sent_at + random() * interval '7 days'",
            "method": "'GET'",
        },
        f"crm_emailmessagerelation AS r WHERE r.sent_at IS NOT NULL AND r.contact_id IS NOT NULL "
        f"AND random() < {EVENTS / (EMAILS * (1 - 1 / EVERY_NTH_INCOMING))}",
    )
    insert_select(
        cursor,
        "crm_task",
        {
            "subject": "'Call ' || i",
            "status": "'completed'",
            "subtype": "'call'",
            "owner_id": "1",
            "who_contact_id": f"1 + (i::bigint * 104729) % {CONTACTS}",
            "completed_at": "now() - random() * interval '365 days'",
        },
        f"generate_series(1, {TASKS}) AS i",
    )


if __name__ == "__main__":
    sys.exit(main())
