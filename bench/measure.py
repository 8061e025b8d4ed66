"""Timing what a benchmark measures, and keeping its figures in bench/results/<name>.json."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from django.test import Client

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class PageTimings:
    """One page requested again and again through Django's full stack."""

    timings_ms: list[float]
    queries: int  # the warm-up request's

    @property
    def median_ms(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p95_ms(self) -> float:
        return sorted(self.timings_ms)[int(len(self.timings_ms) * 0.95) - 1]


def time_page(
    client: Client, url: str, query: dict[str, object] | None = None, *, runs: int
) -> PageTimings:
    """One warm-up request, whose queries are counted, then `runs` timed ones; each must be 200."""
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return execute(sql, params, many, context)

    # CaptureQueriesContext would see none: each request resets connection.queries.
    with connection.execute_wrapper(count):
        response = client.get(url, query)
    assert response.status_code == 200, (url, response.status_code)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url, query)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return PageTimings(timings_ms=timings, queries=len(queries))


def best_seconds(work: Callable[[], object], *, runs: int = 3) -> float:
    """The fastest of `runs` calls of `work`: the one the rest of the machine disturbed least."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path
