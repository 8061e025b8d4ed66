"""Timing ingestion: drain the whole buffer with `events_ingest`, as the Celery task does.

`bench/run.py` drains what its HTTP load buffered. Run on its own, this file times ingestion
alone, on PostgreSQL + Redis, against a floor measured in the same run:

- the floor: the same rows (the buffered events' ids, times, recipients, links, addresses and
  user agents, read from the stream), already labelled, inserted into an empty copy of the
  events table with the same indexes (what storing costs, nothing else; only the statements
  are timed), by as many processes as ingestion has consumers (one process's rate printed
  beside it);
- `events_ingest` draining the Redis stream: verify tokens, label, insert idempotently, add to
  the recipients', emails' and links' counters.

    .venv/bin/python bench/ingest.py          (make bench runs it)

Targets: 20,000 events/s, and at least 70% of the floor's rate in the same run (issue #21).
Exits 1 if the stored events or the counters do not reconcile.
"""

from __future__ import annotations

import os
import queue
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCH_SIZE = 5000
CONSUMER = "bench"
TARGET_PER_SECOND = 20_000.0
TARGET_SHARE_OF_FLOOR = 0.70

EVENTS = 200_000
RECIPIENTS = 20_000
CLICK_SHARE = 0.3  # three events in ten are clicks
ENTRY_SIZE = 20  # events per stream entry, as the fast path's 2 ms batches hold under load
DISTINCT_IPS = 2_000
FLOOR_RUNS = 3
# Ingesting processes draining the stream at once, as Celery worker processes do (one consumer
# each in the stream's consumer group).
CONSUMERS = int(os.environ.get("BENCH_CONSUMERS", "2"))
DATABASE = os.environ.get("BENCH_DATABASE", "openrate_bench_ingest")


@dataclass(frozen=True)
class DrainResult:
    read: int
    stored: int
    batches: int
    seconds: float
    # Seconds in each of ingestion's phases (tracking.ingestion.PHASES), summed over batches
    # and consumers: where the consumers' time went.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": round(self.events_per_second, 1)}


def drain(*, limit_seconds: float, consumer: str = CONSUMER) -> DrainResult:
    """Call `events_ingest` until a call reads nothing (or the time limit passes)."""
    from tracking.ingestion import PHASES, events_ingest

    read = stored = batches = 0
    phases = dict.fromkeys(PHASES, 0.0)
    started = time.perf_counter()
    while time.perf_counter() - started < limit_seconds:
        result = events_ingest(batch_size=BATCH_SIZE, consumer=consumer)
        if result.read == 0:
            break
        read += result.read
        stored += result.stored
        batches += 1
        for phase, seconds in result.seconds.items():
            phases[phase] += seconds
    return DrainResult(
        read=read,
        stored=stored,
        batches=batches,
        seconds=time.perf_counter() - started,
        phases=phases,
    )


def drain_in_parallel(consumers: int, *, limit_seconds: float = 300.0) -> DrainResult:
    """Drain with `consumers` processes at once; seconds from the start to the last finishing."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(consumers) as pool:
        results = pool.starmap(
            _drain_as, [(f"{CONSUMER}-{n}", limit_seconds) for n in range(consumers)]
        )
        # Let the workers exit on their own: leaving the block terminates them with SIGTERM,
        # and run.py's SIGTERM handler (inherited through fork) could make one exit holding
        # the pool's queue lock, which hangs the other, and so the bench, for good.
        pool.close()
        pool.join()
    return DrainResult(
        read=sum(r.read for r in results),
        stored=sum(r.stored for r in results),
        batches=sum(r.batches for r in results),
        seconds=time.perf_counter() - started,
        phases={
            phase: sum(r.phases.get(phase, 0.0) for r in results) for phase in results[0].phases
        },
    )


def _drain_as(consumer: str, limit_seconds: float) -> DrainResult:
    return drain(limit_seconds=limit_seconds, consumer=consumer)


def main() -> int:
    from bench.env import (
        BenchEnv,
        PrerequisiteMissing,
        check_services,
        ensure_database,
        start_django,
    )

    bench = BenchEnv.from_environ().with_database(DATABASE)
    try:
        check_services(bench)
        ensure_database(bench)
    except PrerequisiteMissing as error:
        print(f"bench: cannot run:\n{error}", file=sys.stderr)
        return 2
    start_django(bench.variables())
    from bench import data

    print(f"Seeding {RECIPIENTS:,} recipients, buffering {EVENTS:,} events...", flush=True)
    relation_ids = data.reset_and_seed(emails=RECIPIENTS, recipients_per_email=1)
    links = data.tracked_links(relation_ids)
    client = data.redis_client()
    data.reset_stream(client)
    _buffer(client, relation_ids, links)
    data.settle_database()
    load = _load_average()
    # The floor inserts with as many processes as ingestion has consumers (one process alone
    # is slower on two cores: a floor ingestion's parallelism could beat), and that single
    # process's rate is printed beside it.
    floor = min(_floor(CONSUMERS) for _ in range(FLOOR_RUNS))
    single = min(_floor(1) for _ in range(FLOOR_RUNS)) if CONSUMERS > 1 else floor
    result = drain_in_parallel(CONSUMERS)
    stored = data.stored_events()
    counted = data.counted_opens() + data.counted_clicks()

    rate = result.events_per_second
    print(f"\nIngestion of {EVENTS:,} events, PostgreSQL + Redis, batches of {BATCH_SIZE:,}")
    print(f"  load average before the floor: {load}, after the drain: {_load_average()}")
    print(
        f"  floor (insert the same rows, already labelled), {CONSUMERS} processes: "
        f"{EVENTS / floor:>9,.0f} events/s (one process: {EVENTS / single:,.0f} events/s)"
    )
    print(
        f"  events_ingest, {CONSUMERS} consumers (verify, label, insert, count): "
        f"{rate:,.0f} events/s ({result.seconds:.2f} s, {result.batches} batches, "
        f"{result.seconds / floor:.2f}x the floor's time)"
    )
    _print_phases(result, floor)
    print(f"  reconciliation: {EVENTS:,} buffered, {stored:,} stored, {counted:,} on the counters")
    print(f"  target >= {TARGET_PER_SECOND:,.0f} events/s: ", end="")
    print("met" if rate >= TARGET_PER_SECOND else "MISSED")
    share = floor / result.seconds
    print(f"  target >= {TARGET_SHARE_OF_FLOOR:.0%} of the floor's rate: {share:.0%} ", end="")
    print("met" if share >= TARGET_SHARE_OF_FLOOR else "MISSED")
    if not stored == counted == EVENTS:
        print("bench: FAILED: the events do not reconcile", file=sys.stderr)
        return 1
    return 0


# What each of ingestion's phases does (tracking.ingestion.PHASES).
_PHASE_WORK = {
    "read": "read the stream, parse the entries",
    "label": "look the recipients up, classify, describe the client",
    "store": "COPY into the batch, insert idempotently (the floor's work)",
    "lock": "wait for the other consumer's counting (the advisory lock)",
    "count": "recipients', emails' and links' counters",
    "funnel": "campaign members' statuses",
    "rollups": "daily rollups",
    "activity": "find the people whose metrics to refresh",
    "commit": "commit (key checks, the activity task's publish), acknowledge",
}


def _print_phases(result: DrainResult, floor: float) -> None:
    """Where the consumers' time went, beside the floor's: the part of ingestion that does
    what the floor does ("store"), and the parts the floor does not do."""
    busy = sum(result.phases.values())
    if not busy or not result.stored:
        return
    print(f"  where the {CONSUMERS} consumers' {busy:.2f} s went (summed over consumers):")
    for phase, seconds in result.phases.items():
        print(
            f"    {phase:<9}{seconds:>7.2f} s {seconds / busy:>4.0%} "
            f"{seconds / result.stored * 1e6:>5.1f} us/event  {_PHASE_WORK.get(phase, '')}"
        )
    print(
        f"    the floor: {floor * CONSUMERS:.2f} s of its {CONSUMERS} processes' time "
        f"({floor * CONSUMERS / EVENTS * 1e6:.1f} us/event, its commits included)"
    )


def _load_average() -> str:
    """The machine's 1, 5 and 15-minute load: on shared cores, how quiet the run was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _buffer(client: Any, relation_ids: list[int], links: dict[int, list[int]]) -> None:
    """EVENTS events in the stream, as the fast path writes them: entries of ENTRY_SIZE."""
    from django.conf import settings

    from bench.data import USER_AGENTS
    from mailkit.tokens import make_token, signing_keys
    from tracking.buffer import EventWriter, RawEvent
    from tracking.fastpath import event_id

    key = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)[0]
    randomly = random.Random(20261123)
    now = time.time()
    writer = EventWriter(client)
    entry: list[RawEvent] = []
    for n in range(EVENTS):
        relation = relation_ids[n % len(relation_ids)]
        click = randomly.random() < CLICK_SHARE
        link = randomly.choice(links[relation]) if click else 0
        # As the fast path writes them: a time-ordered id, and the ids it read from the token.
        entry.append(
            RawEvent(
                event_id=event_id(time.time()),
                kind="click" if click else "open",
                token=make_token(relation, link, key=key),
                # Spread over the hour after sending, so few clicks fall in the scanner window.
                received_at=now - randomly.uniform(0, 3000),
                ip=f"203.0.{randomly.randrange(DISTINCT_IPS) // 250}.{n % 250 + 1}",
                user_agent=USER_AGENTS[n % len(USER_AGENTS)],
                method="GET",
                relation_id=relation,
                link_id=link,
            )
        )
        if len(entry) == ENTRY_SIZE:
            writer.write(entry)
            entry = []
    writer.write(entry)


# The floor's batches, set before its processes are forked (they inherit them).
_FLOOR_BATCHES: list[list[Any]] = []


def _floor(processes: int = 1) -> float:
    """Seconds to insert the buffered events, already labelled, into an empty indexed copy of
    the events table (a plain table: what routing rows to a month costs the real insert counts
    against it), by `processes` processes at once, each its share of the batches (as the
    consumers share the stream): from the first's start to the last's end. The same rows
    ingestion will store: the ids, times, recipients, links, addresses and user agents read
    from the stream, labelled with constants; only the statements and their commits are timed,
    their parameters built before (psycopg still turns the lists into arrays inside them)."""
    import multiprocessing
    from datetime import UTC, datetime

    from django.db import connection, connections, transaction

    from bench import data
    from tracking import buffer

    events = [
        event
        for _, fields in data.redis_client().xrange(buffer.STREAM)
        for event in buffer._events_from_fields(fields)
    ]
    if len(events) != EVENTS:
        raise RuntimeError(f"the floor read {len(events):,} events from the stream, not {EVENTS:,}")
    _FLOOR_BATCHES[:] = [
        [
            [event.event_id for event in chunk],
            [event.kind for event in chunk],
            [event.relation_id for event in chunk],
            [event.link_id or None for event in chunk],
            [datetime.fromtimestamp(event.received_at, tz=UTC) for event in chunk],
            ["human"] * len(chunk),
            ["no machine signal"] * len(chunk),
            [event.ip for event in chunk],
            [event.user_agent for event in chunk],
            [event.method for event in chunk],
            ["Other"] * len(chunk),
            ["Chrome"] * len(chunk),
            ["Windows"] * len(chunk),
        ]
        for chunk in (events[n : n + BATCH_SIZE] for n in range(0, len(events), BATCH_SIZE))
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_floor")
        cursor.execute("CREATE TABLE bench_floor (LIKE tracking_trackingevent INCLUDING ALL)")
    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(processes, timeout=120)
    times = context.Queue()
    workers = [
        context.Process(target=_floor_share, args=(n, processes, ready, times), daemon=True)
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    spans: list[Any] = []
    deadline = time.monotonic() + 600
    try:
        while len(spans) < processes:
            try:
                spans.append(times.get(timeout=1))
            except queue.Empty:
                if any(w.exitcode not in (None, 0) for w in workers):
                    raise RuntimeError("a floor process was killed: see above") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the floor's processes took over 600 s") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    if any(span is None for span in spans):
        raise RuntimeError("a floor process failed: see its traceback above")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_floor")
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _floor_share(n: int, processes: int, ready: Any, times: Any) -> None:
    """One floor process: its share of the batches, timed from when all are ready."""
    from django.db import connection

    try:
        times.put(_floor_timed(_FLOOR_BATCHES[n::processes], ready))
    except BaseException:
        times.put(None)  # the parent stops waiting; the traceback goes to stderr
        ready.abort()
        raise
    finally:
        connection.close()


def _floor_timed(mine: list[list[Any]], ready: Any) -> tuple[float, float]:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # connected before the clock starts
    ready.wait()
    started = time.perf_counter()  # CLOCK_MONOTONIC: one clock for every process
    for parameters in mine:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_floor (event_id, kind, relation_id, link_id, occurred_at, "
                "label, reason, ip, user_agent, method, device, client, os) "
                "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::bigint[], %s::bigint[], "
                "%s::timestamptz[], %s::varchar[], %s::varchar[], %s::inet[], %s::varchar[], "
                "%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[]) "
                "ON CONFLICT (event_id, occurred_at) DO NOTHING RETURNING event_id",
                parameters,
            )
            cursor.fetchall()
    return started, time.perf_counter()


if __name__ == "__main__":
    sys.exit(main())
