"""Benchmark: forgetting a person with 10,000 emails and 100,000 tracking events.

Seeds (in SQL) the person's emails, copies, links, delivery events and opens, and as many of
other people's, then times `dataprotection.forget` (the person read, then erased in one
transaction) on PostgreSQL, three times on fresh data. Target: under 10 s.

    .venv/bin/python bench/forget.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process

DATABASE = "openrate_bench_forget"
EMAILS = 10_000  # theirs; as many again are other people's
EVENTS = 100_000  # theirs; as many again are other people's
RUNS = 3
TARGET_S = 10.0
ADDRESS = "ada.lovelace@analytical.example"


def main() -> int:
    start_in_process(DATABASE)
    from django.db import transaction

    from dataprotection.forget import person_forget
    from dataprotection.people import person_from

    timings: list[float] = []
    counts: dict[str, int] = {}
    for run in range(1, RUNS + 1):
        print(f"Run {run}: seeding")
        contact_id = _seed()
        started = time.perf_counter()
        with transaction.atomic():
            counts = person_forget(person=person_from("contact", contact_id))
        timings.append(time.perf_counter() - started)
        print(f"Run {run}: forgotten in {timings[-1]:.2f} s")
        assert counts["emails_erased"] == EMAILS and counts["tracking_events"] == EVENTS, counts
    median = statistics.median(timings)
    print("Floor: seeding again, then only the rewrite of their events (no forget)")
    _seed()
    floor = _events_rewrite_seconds()
    print(f"Rewriting their {EVENTS:,} events' IP and user agent alone: {floor:.2f} s")
    print(
        f"\nForgetting a person with {EMAILS:,} emails and {EVENTS:,} events (PostgreSQL): "
        f"{', '.join(f'{t:.2f}' for t in timings)} s; median {median:.2f} s; target under "
        f"{TARGET_S:.0f} s: {'met' if median < TARGET_S else 'MISSED'} ({median / floor:.1f}x the "
        f"{floor:.2f} s floor of rewriting their events alone; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    from bench.measure import write_results

    write_results(
        "forget",
        {"seconds": timings, "median_s": median, "floor_s": floor, "counts": counts},
    )
    return 0 if median < TARGET_S else 1


def _events_rewrite_seconds() -> float:
    """The one statement a forget cannot avoid: each of their events rewritten without its IP
    and user agent (every row costs its index entries). The machine's floor for this bench."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_trackingevent SET ip = NULL, user_agent = '' WHERE relation_id <= %s",
            [EMAILS],
        )
    return time.perf_counter() - started


def _seed() -> int:
    """Empty the tables a forget reads, then seed the person and as much of others; returns
    the person's Contact id."""
    from django.db import connection

    from bench.data import analyze, create_user, generating, insert_select
    from crm.models import Contact, Role, User
    from privacy.models import Individual

    with connection.cursor() as cursor:
        # The bench database is the bench's own (start_in_process made it).
        cursor.execute(
            "TRUNCATE tracking_trackingevent, crm_emailevent, crm_trackedlink, "
            "crm_emailmessagerelation, crm_emailmessage, crm_task, crm_contact, "
            "privacy_individual, privacy_forgottenaddress, privacy_auditentry, "
            "crm_linkdailystat, inbound_inboundmessage RESTART IDENTITY CASCADE"
        )
    user = User.objects.filter(username="bench").first() or create_user("bench", role=Role.REP)
    individual = Individual.objects.create(first_name="Ada", last_name="Lovelace")
    ada = Contact.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        email=ADDRESS,
        phone="+44 20 7946 0958",
        owner=user,
        individual=individual,
    )
    theirs = f"n <= {EMAILS}"
    address = f"CASE WHEN {theirs} THEN '{ADDRESS}' ELSE 'other' || n || '@example.org' END"
    with connection.cursor() as cursor, generating(cursor, sequences=_SEQUENCES):
        series = f"generate_series(1, {2 * EMAILS}) AS n"
        insert_select(cursor, "crm_emailmessage", _email(user.pk, address), series)
        insert_select(cursor, "crm_emailmessagerelation", _copy(ada.pk, address, theirs), series)
        insert_select(
            cursor,
            "crm_trackedlink",
            {"email_id": "n", "url": "'https://example.com/p?who=' || " + address, "position": "1"},
            series,
        )
        insert_select(
            cursor,
            "crm_emailevent",
            {"relation_id": "n", "kind": "'sent'", "occurred_at": "now()", "detail": "'250 OK'"},
            series,
        )
        insert_select(
            cursor, "tracking_trackingevent", _event(), f"generate_series(1, {2 * EVENTS}) AS n"
        )
    analyze()
    return ada.pk


_SEQUENCES = (
    "crm_emailmessage",
    "crm_emailmessagerelation",
    "crm_trackedlink",
    "crm_emailevent",
    "tracking_trackingevent",
)


def _email(sender_id: int, address: str) -> dict[str, Any]:
    return {
        "subject": "'Pricing for Ada Lovelace ' || n",
        "html_body": "'<p>Dear Ada Lovelace, " + "your pricing. " * 40 + "</p>'",
        "text_body": "'Dear Ada Lovelace, " + "your pricing. " * 40 + "'",
        "from_address": "'bench@openrate.example'",
        "to_addresses": f"'Ada Lovelace <' || {address} || '>'",
        "sender_id": str(sender_id),
        "status": "'sent'",
        "delivery_status": "'sent'",
        "source": "'single'",
        "is_tracked": "true",
        "message_date": "now() - n * interval '1 minute'",
    }


def _copy(contact_id: int, address: str, theirs: str) -> dict[str, Any]:
    return {
        "email_id": "n",
        "relation_type": "'to'",
        "address": address,
        "name": f"CASE WHEN {theirs} THEN 'Ada Lovelace' ELSE 'Other person' END",
        "contact_id": f"CASE WHEN {theirs} THEN {contact_id} END",
        "delivery_status": "'sent'",
        "is_tracked": "true",
        "human_opens": "5",
        "tokens_by_purpose": "true",
        "merge_values": """'{"first_name": "Ada"}'""",
    }


def _event() -> dict[str, Any]:
    # Relations 1..EMAILS are the person's copies; the next EMAILS are other people's.
    return {
        "event_id": "gen_random_uuid()",
        "kind": "'open'",
        "relation_id": f"1 + (n % {2 * EMAILS})",
        "occurred_at": "now() - n * interval '1 second'",
        "label": "'human'",
        "reason": "'no machine signal'",
        "ip": "'203.0.113.77'",
        "user_agent": "'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0'",
        "method": "'GET'",
        "internal": "false",
    }


if __name__ == "__main__":
    raise SystemExit(main())
