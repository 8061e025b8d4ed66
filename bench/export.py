"""Benchmark: exporting the data of a person with 10,000 emails and 100,000 events.

On PostgreSQL, in a database of its own, it generates with set-based SQL a person (a Contact)
with 10,000 emails (HTML and text bodies), 100,000 opens and clicks and 10,000 delivery events on
their copies, 200 inbound messages of 20 kB each and 500 tasks, and the same history for someone
else (the export must skip it). Then it builds the person's archive (`export_build`, what the
Celery job runs) three times untraced, for the time and the growth of the process's peak
resident memory (`getrusage`), and three times under tracemalloc, for Python's peak allocation.
Target: under 100 MB; exits 1 if it misses.

    .venv/bin/python bench/export.py
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process
from bench.measure import write_results

DATABASE = "openrate_bench_export"
EMAILS = 10_000  # per person
EVENTS_PER_EMAIL = 10  # 100,000 opens and clicks per person
INBOUND = 200
TASKS = 500
RUNS = 3
TARGET_MB = 100.0
GENERATED_IDS = ("crm_emailmessage",)
MB = 1024 * 1024


def main() -> int:
    export_dir = tempfile.mkdtemp(prefix="openrate-bench-export-")
    start_in_process(DATABASE, EXPORT_DIR=export_dir)
    person, requester = _data()
    baseline_rss = _max_rss()
    untraced = [_run(person, requester, traced=False) for _ in range(RUNS)]
    rss_growth_mb = (_max_rss() - baseline_rss) / MB
    traced = [_run(person, requester, traced=True) for _ in range(RUNS)]
    counts = untraced[0]["counts"]
    print(f"\nExport of one person: {counts['emails']:,} email copies, {counts['events']:,} events")
    print(f"(rows by section: {counts})")
    print(
        f"{'run':<6} {'seconds':>8} {'archive MB':>11} {'traced s':>9} {'tracemalloc peak MB':>20}"
    )
    for n, (plain, with_trace) in enumerate(zip(untraced, traced, strict=True), start=1):
        print(
            f"{n:<6} {plain['seconds']:>8.1f} {plain['size'] / MB:>11.1f} "
            f"{with_trace['seconds']:>9.1f} {with_trace['peak'] / MB:>20.1f}"
        )
    peak_mb = max(run["peak"] for run in traced) / MB
    print(
        f"\nGrowth of the process's peak RSS over the three untraced runs: {rss_growth_mb:.1f} MB"
    )
    met = peak_mb < TARGET_MB and rss_growth_mb < TARGET_MB
    print(
        f"Peak memory: {peak_mb:.1f} MB (tracemalloc), {rss_growth_mb:.1f} MB (RSS growth); "
        f"target under {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}"
    )
    write_results(
        "export",
        {
            "rows": counts,
            "seconds": [run["seconds"] for run in untraced],
            "archive_bytes": untraced[0]["size"],
            "tracemalloc_peak_mb": [round(run["peak"] / MB, 1) for run in traced],
            "rss_growth_mb": round(rss_growth_mb, 1),
        },
    )
    return 0 if met else 1


def _max_rss() -> int:
    """The process's peak resident memory so far, in bytes (Linux counts it in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run(person: Any, requester: Any, *, traced: bool) -> dict[str, Any]:
    from django.conf import settings

    from dataprotection.export import export_build
    from dataprotection.models import DataRequest

    data_request = DataRequest.objects.create(
        kind="export", subject=f"Contact #{person.pk}", contact=person, requested_by=requester
    )
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    export_build(request_id=data_request.pk)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    data_request.refresh_from_db()
    assert data_request.status == "done", data_request.error
    (Path(settings.EXPORT_DIR) / data_request.file_path).unlink()
    return {
        "seconds": seconds,
        "peak": peak,
        "size": data_request.file_size,
        "counts": data_request.counts,
    }


def _data() -> tuple[Any, Any]:
    from django.db import connection

    from bench.data import create_user, generating
    from crm.models import Contact, Role

    requester = create_user("bench-admin", role=Role.ADMIN, is_staff=True)
    person = Contact.objects.create(
        first_name="Ada", last_name="Lovelace", email="ada@example.com", owner=requester
    )
    other = Contact.objects.create(
        first_name="Bob", last_name="Builder", email="bob@example.com", owner=requester
    )
    started = time.perf_counter()
    with connection.cursor() as cursor, generating(cursor, sequences=GENERATED_IDS):
        for n, contact in enumerate((person, other)):
            _generate(cursor, contact=contact, first_id=n * EMAILS, owner_id=requester.pk)
    print(f"Generated the rows in {time.perf_counter() - started:.0f} s")
    return person, requester


def _generate(cursor: Any, *, contact: Any, first_id: int, owner_id: int) -> None:
    from bench.data import insert_select

    insert_select(
        cursor,
        "crm_emailmessage",
        {
            "id": f"{first_id} + i",
            "subject": "'Email ' || i",
            "html_body": "'<p>' || repeat('Body text with a link. ', 40) || '</p>'",
            "text_body": "repeat('Body text with a link. ', 40)",
            "from_address": "'rep@openrate.example'",
            "status": "'sent'",
            "delivery_status": "'sent'",
            "is_tracked": "true",
            "message_date": "now() - random() * interval '365 days'",
        },
        f"generate_series(1, {EMAILS}) AS i",
    )
    insert_select(
        cursor,
        "crm_emailmessagerelation",
        {
            "email_id": "e.id",
            "relation_type": "'to'",
            "address": f"'{contact.email}'",
            "name": f"'{contact.first_name} {contact.last_name}'",
            "contact_id": str(contact.pk),
            "delivery_status": "'sent'",
            "sent_at": "e.message_date",
            "is_tracked": "true",
            "tokens_by_purpose": "true",
        },
        f"crm_emailmessage AS e WHERE e.id > {first_id} AND e.id <= {first_id + EMAILS}",
    )
    relations = f"crm_emailmessagerelation AS r WHERE r.contact_id = {contact.pk}"
    insert_select(
        cursor,
        "tracking_trackingevent",
        {
            "relation_id": "r.id",
            "kind": "CASE WHEN random() < 0.8 THEN 'open' ELSE 'click' END",
            "label": "CASE WHEN random() < 0.7 THEN 'human' ELSE 'apple_mpp' END",
            "reason": "'no machine signal'",
            "occurred_at": "r.sent_at + random() * interval '7 days'",
            "ip": "('198.51.100.' || (n % 250))::inet",
            "user_agent": "'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'",
            "method": "'GET'",
            "client": "'Chrome 131'",
            "os": "'Windows 10'",
            "device": "'Other'",
        },
        f"crm_emailmessagerelation AS r CROSS JOIN generate_series(1, {EVENTS_PER_EMAIL}) AS n "
        f"WHERE r.contact_id = {contact.pk}",
    )
    insert_select(
        cursor,
        "crm_emailevent",
        {"relation_id": "r.id", "kind": "'sent'", "occurred_at": "r.sent_at"},
        relations,
    )
    insert_select(
        cursor,
        "inbound_inboundmessage",
        {
            "fingerprint": f"'bench-{contact.pk}-' || r.id",
            "source": "'imap'",
            "kind": "'reply'",
            "status": "'processed'",
            "subject": "'Re: Email'",
            "from_address": f"'{contact.email}'",
            "relation_id": "r.id",
            "raw": "convert_to(repeat('A line of the message as it was received. ', 480), 'UTF8')",
            "received_at": "now()",
        },
        f"{relations} AND r.id % {EMAILS // INBOUND} = 0",
    )
    insert_select(
        cursor,
        "crm_task",
        {
            "subject": "'Call ' || i",
            "status": "'completed'",
            "owner_id": str(owner_id),
            "who_contact_id": str(contact.pk),
            "completed_at": "now() - random() * interval '365 days'",
        },
        f"generate_series(1, {TASKS}) AS i",
    )


if __name__ == "__main__":
    raise SystemExit(main())
