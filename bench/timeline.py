"""Benchmark: a Contact page (with its Activity Timeline) for a person with 10,000 emails.

Renders the page through Django's full stack (middleware, session, views, templates) on
PostgreSQL, and compares it in the same run with the same page for a contact with no email at
all (the baseline: what the page costs whatever the history). Target: under 200 ms.

    .venv/bin/python bench/timeline.py          (make bench runs it)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "openrate_bench_timeline"
EMAILS = 10_000
TASKS = 500
RUNS = 40
TARGET_MS = 200.0


def main() -> int:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
    os.environ.setdefault("REDIS_URL", "")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    _create_database()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # as in production
    busy, quiet, user = _data()
    from django.test import Client

    client = Client()
    client.force_login(user)
    results = {
        "baseline: contact with no email": _time(client, quiet.get_absolute_url()),
        f"contact with {EMAILS:,} emails and {TASKS} tasks": _time(client, busy.get_absolute_url()),
        "its next timeline page (load more)": _time(client, _more_url(client, busy)),
    }
    print(f"\nContact page with its Activity Timeline ({RUNS} requests each, PostgreSQL)")
    print(f"{'page':<45} {'median ms':>10} {'p95 ms':>8}")
    for name, timings in results.items():
        print(f"{name:<45} {statistics.median(timings):>10.1f} {_p95(timings):>8.1f}")
    busy_median = statistics.median(results[f"contact with {EMAILS:,} emails and {TASKS} tasks"])
    base_median = statistics.median(results["baseline: contact with no email"])
    print(
        f"\n10,000-email page: {busy_median:.1f} ms median, {busy_median / base_median:.2f}x "
        f"the empty page; target under {TARGET_MS:.0f} ms: "
        f"{'met' if busy_median < TARGET_MS else 'MISSED'}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.json").write_text(
        json.dumps(
            {
                name: {"median_ms": statistics.median(t), "p95_ms": _p95(t)}
                for name, t in results.items()
            },
            indent=2,
        )
    )
    return 0 if busy_median < TARGET_MS else 1


def _create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _data():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from crm.models import Contact, EmailMessage, EmailMessageRelation, Task, User

    user = User.objects.create_user("bench", "bench@openrate.example", "pw")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="Sales Rep"))
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
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return busy, quiet, user


def _time(client, url: str) -> list[float]:  # type: ignore[no-untyped-def]
    client.get(url)  # warm up
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return timings


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


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


if __name__ == "__main__":
    raise SystemExit(main())
