"""Timing event classification (`tracking.classify.classify`) from a cold start.

A stream of 200,000 opens and clicks with 5,000 distinct user agents (browsers, mail clients,
crawlers and HTTP libraries; popular ones recur more often, as in real traffic) is labelled
in a fresh Python process pinned to one core, so every cache starts empty and the
crawler-user-agents patterns are compiled inside the timing. In the same run, also in fresh
processes, the baseline: ua-parser alone, one parse per distinct user agent through a cache,
which ingestion already pays for `describe_client`.

    .venv/bin/python bench/classify.py

Target: 50,000 events/s. Exits 1 if classification misses it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

EVENTS = 200_000
DISTINCT_USER_AGENTS = 5_000
DISTINCT_IPS = 20_000
CLICK_SHARE = 0.3
MACHINE_SHARE = 0.3  # of the distinct user agents
TARGET_PER_SECOND = 50_000.0
SEED = 15

_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.{patch} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.{patch} Safari/537.36 Edg/{major}.0.{build}.{patch}",
    "Mozilla/5.0 (Linux; Android {android}; SM-S{build}B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/{major}.0.{build}.{patch} Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major}.0) Gecko/20100101 "
    "Firefox/{major}.{patch}",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {ios}_{patch} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/{ios}.{patch} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android {android}; Pixel {android} Build/AP{build}; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{major}.0.{build}.{patch} "
    "Mobile Safari/537.36",
)
_MAIL_CLIENTS = (
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.{build}; Pro)",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; "
    ".NET4.0E; Microsoft Outlook 16.0.{build}; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major}.0) Gecko/20100101 "
    "Thunderbird/{major}.{patch}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{patch}) AppleWebKit/605.1.{build} "
    "(KHTML, like Gecko)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {ios}_{patch} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E{build}",
    "Outlook-iOS/709.{build}.prod.iphone (4.{patch}.0)",
)
_LIBRARIES = (
    "python-requests/2.{patch}.{major}",
    "okhttp/4.{patch}.{major}",
    "curl/8.{patch}.{major}",
    "Go-http-client/1.{patch}",
    "Apache-HttpClient/4.5.{patch} (Java/{major}.0.{build})",
    "axios/1.{patch}.{major}",
)


def user_agents(rng: random.Random, crawlers: list[str]) -> list[str]:
    """Distinct user agents: people's clients with varied versions, crawlers and libraries."""
    seen: set[str] = set()
    machines = int(DISTINCT_USER_AGENTS * MACHINE_SHARE)
    people = DISTINCT_USER_AGENTS - machines
    for pool, count in ((_BROWSERS + _MAIL_CLIENTS, people), (None, machines)):
        target = len(seen) + count
        while len(seen) < target:
            if pool is None and rng.random() < 0.7:
                seen.add(rng.choice(crawlers))
                continue
            template = rng.choice(pool if pool is not None else _LIBRARIES)
            seen.add(
                template.format(
                    major=rng.randint(60, 135),
                    build=rng.randint(1000, 9999),
                    patch=rng.randint(0, 200),
                    android=rng.randint(8, 15),
                    ios=rng.randint(12, 18),
                )
            )
    return sorted(seen)


def event_stream(path: Path) -> None:
    """Write the events as JSON lines: (kind, user agent, ip, method, seconds, links)."""
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    rng = random.Random(SEED)
    crawlers = sorted({i for entry in CRAWLER_USER_AGENTS_DATA for i in entry.get("instances", [])})
    agents = user_agents(rng, crawlers)
    # Zipf-like popularity: a few clients send most events, as in real mail traffic.
    weights = [1 / (rank + 1) for rank in range(len(agents))]
    rng.shuffle(weights)
    picks = rng.choices(agents, weights=weights, k=EVENTS)
    # Every distinct user agent appears at least once.
    picks[: len(agents)] = agents
    rng.shuffle(picks)
    ips = [
        f"198.{rng.randint(16, 19)}.{rng.randint(0, 255)}.{n % 254 + 1}"
        for n in range(DISTINCT_IPS)
    ]
    with path.open("w") as out:
        for user_agent in picks:
            kind = "click" if rng.random() < CLICK_SHARE else "open"
            ip = rng.choice(ips)
            seconds = rng.choice((rng.uniform(0, 20), rng.uniform(60, 86_400 * 3)))
            links = 1 if rng.random() < 0.98 else rng.randint(2, 5)
            out.write(json.dumps([kind, user_agent, ip, "GET", seconds, links]) + "\n")


def child(which: str, path: str) -> None:
    """One measurement in this (fresh) process; prints its figures as JSON."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    started = time.perf_counter()
    if which == "classify":
        from tracking.classify import EventFacts, classify

        imported = time.perf_counter()
        labels: dict[str, int] = {}
        for kind, user_agent, ip, method, seconds, links in rows:
            facts = EventFacts(kind, user_agent, ip, method, seconds, False, links)
            label = classify(facts).label
            labels[label] = labels.get(label, 0) + 1
    else:
        from functools import lru_cache

        import ua_parser

        imported = time.perf_counter()
        parse = lru_cache(maxsize=8192)(ua_parser.parse)
        labels = {}
        for _, user_agent, *_ in rows:
            parse(user_agent)
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "import_seconds": imported - started,
                "seconds": finished - imported,
                "events_per_second": len(rows) / (finished - imported),
                "labels": labels,
            }
        )
    )


def measure(which: str, path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(result.stdout)


def main() -> int:
    from bench.measure import write_results

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.jsonl"
        event_stream(path)
        baseline = measure("ua_parser", path)
        figures = measure("classify", path)
    print(f"{EVENTS:,} events, {DISTINCT_USER_AGENTS:,} distinct user agents, cold, one core")
    print(
        f"  baseline, ua-parser cached per user agent: {baseline['events_per_second']:,.0f} "
        f"events/s ({baseline['seconds']:.2f} s)"
    )
    print(
        f"  classify:                                  {figures['events_per_second']:,.0f} "
        f"events/s ({figures['seconds']:.2f} s; import {figures['import_seconds'] * 1000:.0f} ms)"
    )
    print(f"  labels: {figures['labels']}")
    passed = figures["events_per_second"] >= TARGET_PER_SECOND
    path = write_results(
        "classify",
        {
            "events": EVENTS,
            "distinct_user_agents": DISTINCT_USER_AGENTS,
            "baseline_ua_parser": baseline,
            "classify": figures,
            "target_events_per_second": TARGET_PER_SECOND,
            "passed": passed,
        },
    )
    print(f"{'PASS' if passed else 'FAIL'} (target {TARGET_PER_SECOND:,.0f} events/s); {path}")
    return 0 if passed else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
