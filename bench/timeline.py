"""Benchmark: a Contact page (with its Activity Timeline) for a person with 10,000 emails.

Renders the page through Django's full stack (middleware, session, views, templates) on
PostgreSQL, and compares it in the same run with the same page for a contact with no email at
all (the baseline: what the page costs whatever the history). Target: under 200 ms.

    .venv/bin/python bench/timeline.py          (make bench runs it)
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process
from bench.measure import time_page, write_results

DATABASE = "openrate_bench_timeline"
EMAILS = 10_000
TASKS = 500
RUNS = 40
TARGET_MS = 200.0


def main() -> int:
    start_in_process(DATABASE, renders_pages=True)
    busy, quiet, user = _data()
    from django.test import Client

    client = Client()
    client.force_login(user)
    results = {
        "baseline: contact with no email": time_page(client, quiet.get_absolute_url(), runs=RUNS),
        f"contact with {EMAILS:,} emails and {TASKS} tasks": time_page(
            client, busy.get_absolute_url(), runs=RUNS
        ),
        "its next timeline page (load more)": time_page(client, _more_url(client, busy), runs=RUNS),
    }
    print(f"\nContact page with its Activity Timeline ({RUNS} requests each, PostgreSQL)")
    print(f"{'page':<45} {'median ms':>10} {'p95 ms':>8}")
    for name, page in results.items():
        print(f"{name:<45} {page.median_ms:>10.1f} {page.p95_ms:>8.1f}")
    busy_median = results[f"contact with {EMAILS:,} emails and {TASKS} tasks"].median_ms
    base_median = results["baseline: contact with no email"].median_ms
    print(
        f"\n10,000-email page: {busy_median:.1f} ms median, {busy_median / base_median:.2f}x "
        f"the empty page; target under {TARGET_MS:.0f} ms: "
        f"{'met' if busy_median < TARGET_MS else 'MISSED'}"
    )
    write_results(
        "timeline",
        {
            name: {"median_ms": page.median_ms, "p95_ms": page.p95_ms}
            for name, page in results.items()
        },
    )
    return 0 if busy_median < TARGET_MS else 1


def _data():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from bench.data import analyze, create_user
    from crm.models import Contact, EmailMessage, EmailMessageRelation, Role, Task

    user = create_user("bench", role=Role.REP)
    busy = Contact.objects.create(last_name="Busy", email="busy@example.com", owner=user)
    quiet = Contact.objects.create(last_name="Quiet", email="quiet@example.com", owner=user)
    now = timezone.now()
    emails = EmailMessage.objects.bulk_create(
        (
            EmailMessage(
                subject=f"Email {i}",
                html_body="<p>" + "Body text. " * 50 + "</p>",
                text_body="Body text. " * 50,
                from_address=user.email,
                sender=user,
                status="sent",
                delivery_status="sent",
                is_tracked=True,
                message_date=now - timedelta(hours=i),
            )
            for i in range(EMAILS)
        ),
        batch_size=2000,
    )
    EmailMessageRelation.objects.bulk_create(
        (
            EmailMessageRelation(
                email=email,
                relation_type="to",
                address=busy.email,
                contact=busy,
                delivery_status="sent",
                is_tracked=True,
                human_opens=i % 4,
            )
            for i, email in enumerate(emails)
        ),
        batch_size=2000,
    )
    Task.objects.bulk_create(
        Task(
            subject=f"Task {i}",
            owner=user,
            who_contact=busy,
            status="completed" if i % 5 else "not_started",
            completed_at=now - timedelta(hours=3 * i) if i % 5 else None,
            due_date=(now + timedelta(days=i % 30)).date(),
        )
        for i in range(TASKS)
    )
    analyze()
    return busy, quiet, user


def _more_url(client, contact) -> str:  # type: ignore[no-untyped-def]
    """The "Load more" link the page shows: the second page of the timeline."""
    from urllib.parse import urlencode

    from django.urls import reverse
    from django.utils import timezone

    from crm.timeline import timeline

    page = timeline(contact)
    month = timezone.localtime(page.entries[-1].when).strftime("%Y-%m")
    query = urlencode({"before": page.next_cursor, "month": month})
    return f"{reverse('crm:timeline', args=['contact', contact.pk])}?{query}"


if __name__ == "__main__":
    raise SystemExit(main())
