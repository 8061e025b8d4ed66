"""Benchmark: the API's tracking event list (/api/v1/events/) over 1,000,000 events.

On PostgreSQL, in a database of its own, it generates 100,000 sent emails (one in ten by a
rep, the rest by nine others) with 10 opens and clicks each, set-based, then requests pages
through Django's full stack with a personal API token (authentication, throttling, filters,
the cursor), in the same run:

- the first page, newest first, as a manager (who sees every email) and as the rep;
- page 1,000, reached by following `next` cursors from the first page (each step timed too);
- a page deep in the list, jumped to with a cursor built for the position of the 900,000th
  event, newest first and oldest first;
- one email's events.

Each page is requested in three runs of RUNS requests; the figures are each run's median, for
the whole request and for the event query alone (the rest of a request, authentication,
middleware and rendering, costs the same on every page). The plan of the deep page is printed
(EXPLAIN ANALYZE), to show it reads the event_time_id index from the cursor's position.
Target: a deep page costs what the first costs (its event query within 1.5x of the first
page's, or 1 ms more); exits 1 if one misses.

    .venv/bin/python bench/api_events.py
"""

from __future__ import annotations

import base64
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import start_in_process
from bench.measure import write_results

DATABASE = "openrate_bench_api_events"
EMAILS = 100_000
EVENTS_PER_EMAIL = 10  # 1,000,000 events
FOLLOWED = 1_000  # pages followed by cursor
RUNS = 20  # requests per run; three runs per page
TARGET_RATIO = 1.5
TARGET_SLACK_MS = 1.0
GENERATED_IDS = ("crm_emailmessage", "crm_emailmessagerelation", "tracking_trackingevent")
EVENTS = "/api/v1/events/"


def main() -> int:
    start_in_process(DATABASE, ALLOWED_HOSTS="testserver", API_RATE_LIMIT="100000000/min")
    from django.db import connection

    from bench.data import generating

    started = time.perf_counter()
    manager, rep = _people()
    with connection.cursor() as cursor, generating(cursor, sequences=GENERATED_IDS):
        _generate(cursor, rep_id=rep.pk)
        cursor.execute("VACUUM ANALYZE tracking_trackingevent")
    print(f"Generated the rows in {time.perf_counter() - started:.0f} s")

    from django.test import Client

    from api.tokens import token_create

    clients = {}
    for user in (manager, rep):
        _, text = token_create(user=user, name="bench")
        clients["manager" if user == manager else "rep"] = Client(
            headers={"Authorization": f"Bearer {text}"}
        )
    client = clients["manager"]

    followed_ms, deep_url = _follow(client, f"{EVENTS}?page_size=25", FOLLOWED)
    pages = {
        "first page (manager)": f"{EVENTS}?page_size=25",
        "first page (rep: one email in ten)": f"{EVENTS}?page_size=25",
        f"page {FOLLOWED:,} by following next (manager)": deep_url,
        "jump to event 900,000, newest first": _jump(900_000, newest_first=True),
        "jump to event 900,000, oldest first": _jump(900_000, newest_first=False),
        "one email's events": f"{EVENTS}?email=4242",
    }
    results: dict[str, list[tuple[float, float]]] = {}
    for name, url in pages.items():
        who = clients["rep" if "(rep" in name else "manager"]
        results[name] = [_median_ms(who, url) for _ in range(3)]

    print(f"\nAPI event list over {EMAILS * EVENTS_PER_EMAIL:,} tracking events, 25 per page")
    print(f"{'page':<40} {'request ms, runs 1-3':>24} {'event query ms, runs 1-3':>26}")
    for name, runs in results.items():
        request = " ".join(f"{ms:>7.1f}" for ms, _ in runs)
        query = " ".join(f"{ms:>7.2f}" for _, ms in runs)
        print(f"{name:<40} {request:>24} {query:>26}")
    print(
        f"\nfollowing next from page 1 to page {FOLLOWED:,}: {statistics.median(followed_ms):.1f} "
        f"ms median per page, {max(followed_ms):.1f} ms the slowest"
    )
    _explain(connection, _jump_position(900_000, newest_first=True))

    first = min(query for _, query in results["first page (manager)"])
    deep = max(
        min(query for _, query in runs)
        for name, runs in results.items()
        if name.startswith(("page", "jump"))
    )
    met = deep <= max(first * TARGET_RATIO, first + TARGET_SLACK_MS)
    print(
        f"\ndeepest page's event query {deep:.2f} ms, the first page's {first:.2f} ms "
        f"({deep / first:.2f}x); target within {TARGET_RATIO}x or {TARGET_SLACK_MS:.0f} ms more: "
        f"{'met' if met else 'MISSED'}"
    )
    write_results(
        "api_events",
        {
            name: {
                "request_median_ms": [ms for ms, _ in runs],
                "event_query_median_ms": [ms for _, ms in runs],
            }
            for name, runs in results.items()
        }
        | {
            "followed_median_ms": statistics.median(followed_ms),
            "followed_max_ms": max(followed_ms),
        },
    )
    return 0 if met else 1


def _people():  # type: ignore[no-untyped-def]
    from bench.data import create_user
    from crm.models import Role

    reps = [create_user(f"rep{i}", role=Role.REP) for i in range(10)]
    return create_user("manager", role=Role.MANAGER), reps[0]


def _generate(cursor, *, rep_id: int) -> None:  # type: ignore[no-untyped-def]
    """A year of email and its opens and clicks, set-based (generate_series)."""
    from bench.data import year_of_email

    year_of_email(
        cursor,
        emails=EMAILS,
        sender_id=f"{rep_id} + i % 10",
        message_date="now() - random() * interval '365 days'",
        events_per_email=EVENTS_PER_EMAIL,
    )


def _median_ms(client, url: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The median of RUNS requests: the whole request's ms, and its event query's."""
    from django.db import connection

    response = client.get(url)  # warm-up
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    requests, queries = [], []
    spent: list[float] = []

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if 'FROM "tracking_trackingevent"' in sql:
                spent.append((time.perf_counter() - started) * 1000)

    for _ in range(RUNS):
        spent.clear()
        with connection.execute_wrapper(timed):
            started = time.perf_counter()
            response = client.get(url)
            requests.append((time.perf_counter() - started) * 1000)
        queries.append(sum(spent))
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(requests), statistics.median(queries)


def _follow(client, url: str, pages: int) -> tuple[list[float], str]:  # type: ignore[no-untyped-def]
    """Follow `next` from `url` until page `pages`; each step's time, and that page's URL."""
    timings = []
    for _ in range(pages - 1):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        url = response.json()["next"]
    return timings, url


def _jump_position(nth: int, *, newest_first: bool) -> str:
    """The occurred_at of the nth event in the list's order, as a cursor names a position."""
    from django.db import connection

    direction = "DESC" if newest_first else "ASC"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT occurred_at FROM tracking_trackingevent "
            f"ORDER BY occurred_at {direction}, id {direction} OFFSET %s LIMIT 1",
            [nth - 1],
        )
        (when,) = cursor.fetchone()
    return str(when)


def _jump(nth: int, *, newest_first: bool) -> str:
    """A URL with a cursor built for the nth event (REST framework's cursor: p=<position>)."""
    cursor = base64.b64encode(
        urlencode({"p": _jump_position(nth, newest_first=newest_first)}).encode()
    ).decode()
    ordering = "" if newest_first else "&ordering=occurred_at"
    return f"{EVENTS}?page_size=25&cursor={cursor}{ordering}"


def _explain(connection, position: str) -> None:  # type: ignore[no-untyped-def]
    """The plan of the deep page's query, as the view runs it for a manager."""
    from api.views.mail import EVENT_FIELDS
    from tracking.models import TrackingEvent

    query = (
        TrackingEvent.objects.select_related("relation")
        .only(*EVENT_FIELDS)
        .filter(occurred_at__lt=position)
        .order_by("-occurred_at", "-id")[:26]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plan = [row[0] for row in cursor.fetchall()]
    print("\nplan of the deep page (newest first, from the cursor's position):")
    for line in plan:
        print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
