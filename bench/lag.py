"""Benchmark: ingestion lag while a list email to 100,000 members is sending.

Runs the processes production runs, on PostgreSQL + Redis (the bench's own database and Redis
db): a Celery worker for the `list_email` queue, one for `ingestion`, one for the other queues,
and beat; the list email is delivered over SMTP to a sink on loopback (aiosmtpd, in this
process) that counts what it receives. While the list email sends, this process writes tracking
events into the buffer as the fast path does (EVENTS_PER_SECOND, on copies sent earlier) and,
every second, a probe event whose arrival in the events table it watches: a probe's lag is from
being buffered to being stored. Beat starts ingestion every TRACKING_INGEST_INTERVAL seconds (5
by default), so most of a lag is that wait; the target is under 10 s while the list email sends.

Then it reconciles: members sent = messages the sink received, events buffered = events stored
= events on the counters. Exits 1 if they do not.

    .venv/bin/python bench/lag.py                    (make bench runs it; about 10 minutes)
    BENCH_LAG_MEMBERS=10000 .venv/bin/python bench/lag.py      (a shorter run)
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import ROOT, BenchEnv, PrerequisiteMissing, check_services, recreate_database
from bench.measure import write_results
from bench.servers import stop
from bench.sink import Sink

MEMBERS = int(os.environ.get("BENCH_LAG_MEMBERS", "100000"))
EVENTS_PER_SECOND = int(os.environ.get("BENCH_LAG_EVENTS_PER_SECOND", "200"))
INGEST_INTERVAL = os.environ.get("TRACKING_INGEST_INTERVAL", "5")
TRACKED_COPIES = 2_000  # sent earlier: the events are theirs
TARGET_LAG_SECONDS = 10.0
BODY = (
    "<p>Hi {{first_name}},</p><p>Our spring release is out: see "
    '<a href="https://example.com/spring">what is new</a> and '
    '<a href="https://example.com/demo">book a demo</a>.</p><p>{{sender_name}}</p>'
)
# The processes production runs (README, "Running at scale"): one worker per kind of work.
WORKERS = {
    "list_email": "list_email",
    "ingestion": "ingestion",
    "other": "celery,inbound,housekeeping",
}


def main() -> int:
    # A Redis db of its own (its queues are emptied first), unless BENCH_LAG_REDIS_URL says.
    bench = dataclasses.replace(
        BenchEnv.from_environ().with_database("openrate_bench_lag"),
        redis_url=os.environ.get("BENCH_LAG_REDIS_URL", "redis://127.0.0.1:6379/12"),
    )
    try:
        check_services(bench)
    except PrerequisiteMissing as error:
        print(f"bench: cannot run:\n{error}", file=sys.stderr)
        return 2
    recreate_database(bench.database_url)
    sink = Sink()
    sink.controller.start()
    variables = bench.variables() | {
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
        "TRACKING_INGEST_INTERVAL": INGEST_INTERVAL,
    }
    from bench.env import start_django

    start_django(variables)
    from bench import data

    print(f"Seeding {TRACKED_COPIES:,} sent copies and {MEMBERS:,} campaign members...", flush=True)
    relation_ids = data.reset_and_seed(emails=TRACKED_COPIES, recipients_per_email=1)
    client = data.redis_client()
    data.reset_stream(client)
    client.flushdb()  # the queues too: only this run's tasks
    campaign_id, user_id = data.campaign_with_members(MEMBERS)
    data.analyze()

    processes = _start_processes(variables)
    try:
        result = _run(client, relation_ids, campaign_id, user_id, sink)
    finally:
        for process in processes:
            stop(process)
        sink.controller.stop()
    return _report(result)


def _start_processes(variables: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    celery = str(Path(sys.executable).with_name("celery"))
    logs = Path(tempfile.mkdtemp(prefix="openrate-lag-"))
    commands = [
        [celery, "-A", "config", "worker", "--loglevel=WARNING", "--concurrency=1",
         f"--hostname={name}@%h", f"--queues={queues}"]
        for name, queues in WORKERS.items()
    ]  # fmt: skip
    commands.append(
        [celery, "-A", "config", "beat", "--loglevel=WARNING", f"--schedule={logs / 'beat'}"]
    )
    processes = []
    for n, command in enumerate(commands):
        log = (logs / f"process-{n}.log").open("wb")
        processes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=variables,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    print(f"Started {len(processes)} processes (logs in {logs})", flush=True)
    return processes


class Producer(threading.Thread):
    """Tracking events into the buffer at a steady rate, as the fast path writes them, and a
    probe event each second whose arrival in the events table is timed."""

    def __init__(
        self, client: Any, relation_ids: list[int], events_per_second: int = EVENTS_PER_SECOND
    ) -> None:
        super().__init__(daemon=True)
        self.events_per_second = events_per_second
        self.client = client
        self.relation_ids = relation_ids
        self.stop = threading.Event()
        self.written = 0
        self.probes: dict[str, float] = {}  # event id (hex) -> when it was buffered
        self.lock = threading.Lock()

    def run(self) -> None:
        from django.conf import settings

        from bench.data import USER_AGENTS
        from mailkit.tokens import make_token, signing_keys
        from tracking.buffer import EventWriter, RawEvent
        from tracking.fastpath import event_id

        key = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)[0]
        writer = EventWriter(self.client)
        randomly = random.Random(20261203)
        tick = 0.05  # an entry every 50 ms, as a busy web worker's flushes are
        per_tick = max(1, round(self.events_per_second * tick))
        next_probe = time.monotonic()
        while not self.stop.is_set():
            started = time.monotonic()
            entry = []
            probe = started >= next_probe
            for n in range(per_tick):
                relation = randomly.choice(self.relation_ids)
                entry.append(
                    RawEvent(
                        event_id=event_id(time.time()),
                        kind="open",
                        token=make_token(relation, 0, key=key),
                        received_at=time.time(),
                        ip=f"198.51.100.{n % 250 + 1}",
                        user_agent=USER_AGENTS[n % len(USER_AGENTS)],
                        method="GET",
                        relation_id=relation,
                    )
                )
            writer.write(entry)
            if probe:
                with self.lock:
                    self.probes[entry[0].event_id] = time.monotonic()
                next_probe += 1.0
            self.written += len(entry)
            self.stop.wait(max(0.0, tick - (time.monotonic() - started)))


def _run(
    client: Any, relation_ids: list[int], campaign_id: int, user_id: int, sink: Sink
) -> dict[str, Any]:
    from campaigns.list_email import list_email_create
    from campaigns.models import Campaign, ListEmail
    from crm.models import User
    from tracking.models import TrackingEvent

    producer = Producer(client, relation_ids)
    producer.start()
    time.sleep(2 * float(INGEST_INTERVAL))  # ingestion running before the send starts
    campaign = Campaign.objects.get(pk=campaign_id)
    # Its recipients are written here first (100,000 rows, seconds in which this process checks
    # no probe); the send starts when that commits and its first batch is queued.
    list_email = list_email_create(
        campaign=campaign,
        sender=User.objects.get(pk=user_id),
        subject="Spring for {{first_name}}",
        html_body=BODY,
        members=campaign.members.all(),
    )
    started = time.monotonic()
    lags: list[tuple[float, float]] = []  # (seconds into the send, lag)
    landed: set[str] = set()

    def watch() -> None:
        with producer.lock:
            waiting = {k: v for k, v in producer.probes.items() if k not in landed}
        if not waiting:
            return
        found = TrackingEvent.objects.filter(
            event_id__in=[uuid.UUID(k) for k in waiting]
        ).values_list("event_id", flat=True)
        now = time.monotonic()
        for value in found:
            key = value.hex
            landed.add(key)
            if waiting[key] >= started:  # buffered once the list email was sending
                lags.append((waiting[key] - started, now - waiting[key]))

    sent_at = None
    last_report = 0.0
    while True:
        watch()
        status = ListEmail.objects.values_list("status", flat=True).get(pk=list_email.pk)
        elapsed = time.monotonic() - started
        if elapsed - last_report >= 30:
            last_report = elapsed
            print(
                f"  {elapsed:5.0f} s: {sink.messages:,} received by the sink, "
                f"lag so far max {max((lag for _, lag in lags), default=0):.1f} s",
                flush=True,
            )
        if status == ListEmail.Status.COMPLETED and sink.messages >= MEMBERS:
            sent_at = time.monotonic()
            break
        if elapsed > 3600:
            print("bench: the list email did not finish within an hour", file=sys.stderr)
            break
        time.sleep(0.25)
    producer.stop.set()
    producer.join()
    lags_while_sending = list(lags)
    # The last events: give ingestion a few intervals to store them.
    deadline = time.monotonic() + 6 * float(INGEST_INTERVAL) + 30
    while time.monotonic() < deadline:
        watch()
        if TrackingEvent.objects.count() >= producer.written and len(landed) == len(
            producer.probes
        ):
            break
        time.sleep(0.5)
    from bench import data

    return {
        "members": MEMBERS,
        "send_seconds": (sent_at or time.monotonic()) - started,
        "received": sink.messages,
        "received_twice": sink.twice(),
        "events_written": producer.written,
        "events_stored": data.stored_events(),
        "events_counted": data.counted_opens() + data.counted_clicks(),
        "probes": len(producer.probes),
        "probes_landed": len(landed),
        "lags": lags_while_sending,
    }


def _report(result: dict[str, Any]) -> int:
    timed = result.pop("lags")
    lags = sorted(lag for _, lag in timed)
    worst = sorted(timed, key=lambda pair: -pair[1])[:5]
    figures = {
        **result,
        "emails_per_second": result["received"] / result["send_seconds"],
        "lag_median_seconds": statistics.median(lags) if lags else None,
        "lag_p95_seconds": lags[int(0.95 * (len(lags) - 1))] if lags else None,
        "lag_max_seconds": lags[-1] if lags else None,
        "ingest_interval_seconds": float(INGEST_INTERVAL),
        "events_per_second": EVENTS_PER_SECOND,
    }
    print(
        f"\nList email to {MEMBERS:,} members over SMTP, with tracking events at "
        f"{EVENTS_PER_SECOND}/s (beat ingests every {INGEST_INTERVAL} s)"
    )
    print(
        f"  list email: {figures['received']:,} received in {figures['send_seconds']:.0f} s "
        f"({figures['emails_per_second']:.0f} emails/s)"
    )
    if lags:
        print(
            f"  ingestion lag while it sent ({len(lags)} probes): median "
            f"{figures['lag_median_seconds']:.1f} s, p95 {figures['lag_p95_seconds']:.1f} s, "
            f"max {figures['lag_max_seconds']:.1f} s (target < {TARGET_LAG_SECONDS:.0f} s: "
            f"{'met' if figures['lag_max_seconds'] < TARGET_LAG_SECONDS else 'MISSED'})"
        )
        print(
            "  the longest: "
            + ", ".join(f"{lag:.1f} s at {at:.0f} s into the send" for at, lag in worst)
        )
    print(
        f"  reconciliation: {MEMBERS:,} members, {result['received']:,} received "
        f"({result['received_twice']} twice); {result['events_written']:,} events buffered, "
        f"{result['events_stored']:,} stored, {result['events_counted']:,} counted; "
        f"{result['probes_landed']}/{result['probes']} probes stored"
    )
    write_results("lag", figures)
    reconciled = (
        result["received"] == MEMBERS
        and result["received_twice"] == 0
        and result["events_written"] == result["events_stored"] == result["events_counted"]
    )
    if not reconciled:
        print("bench: FAILED: the counts do not reconcile", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
