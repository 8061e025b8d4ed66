"""`make bench`: how fast is the open pixel, compared with what it could and would be?

Three servers answer the same pixel URLs, one after the other, under the same load (wrk, 2
threads, 64 keep-alive connections, 10 s each, every request a random recipient's token):

(b) nginx serving the 43-byte GIF as a static file: the physical reference, what this machine
    can do when a request costs nothing but HTTP.
(a) the production fast path: granian (WSGI) running `config.wsgi:application`, which verifies
    the token and appends the event to the Redis stream.
(c) the naive design: the same pixel as an ordinary Django view that inserts one row into
    PostgreSQL per hit (bench/naive/), under the same granian with the same workers.

Then ingestion: the events (a) buffered are drained into PostgreSQL by `events_ingest`, timed,
and the counts reconciled: every request answered must be exactly one stored TrackingEvent.

All three get the same number of worker processes, one per core by default; wrk, Redis and
PostgreSQL run on the same cores, so the absolute figures are this machine's and the ratios are
the point. Numbers on a shared virtual machine move by 10-20% from run to run.

Counting: wrk's total is the responses it read. Requests still in flight when it stops (at most
one per connection) can still be answered, and recorded, by the server, so the pixel script also
counts requests sent. The bench checks 200s seen by wrk <= events stored <= requests sent, and
that the events the server buffered and the events stored are exactly equal.

Targets (issue #21): (a) >= 50% of (b)'s requests/s, (a) >= 5x (c), (a)'s p99 under
10 ms, ingestion >= 20,000 events/s. Results go to stdout and bench/results/latest.json.
Exit status: 0 measured (1 with --strict if a target was missed), 1 counts do not reconcile,
2 a prerequisite is missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/run.py` puts bench/ first, not the project

from bench.env import (  # noqa: E402
    BenchEnv,
    PrerequisiteMissing,
    check_services,
    ensure_database,
    find_tools,
    start_django,
)
from bench.measure import RESULTS, write_results  # noqa: E402

TARGET_SHARE_OF_NGINX = 0.50
TARGET_TIMES_NAIVE = 5.0
TARGET_P99_MS = 10.0
TARGET_INGEST_PER_SECOND = 20_000.0


def main() -> int:
    args = _arguments()
    bench = BenchEnv.from_environ()
    try:
        tools = find_tools()
        check_services(bench)
        ensure_database(bench)
    except PrerequisiteMissing as error:
        print(f"bench: cannot run:\n{error}", file=sys.stderr)
        return 2
    # A SIGTERM (e.g. from make) unwinds like an exception, so every server still gets stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    start_django(bench.variables())
    from bench.servers import ServerFailed

    with tempfile.TemporaryDirectory(prefix="openrate-bench-") as tmp:
        try:
            report = Bench(args=args, bench=bench, tools=tools, workdir=Path(tmp)).run()
        except ServerFailed as error:
            print(f"bench: FAILED: {error}", file=sys.stderr)
            return 1
    report.print()
    written = write_results("latest", report.as_dict())
    print(f"\nWritten to {written.relative_to(ROOT)}")
    if not report.reconciled:
        print("bench: FAILED: the event counts do not reconcile (see above)", file=sys.stderr)
        return 1
    if args.strict and not all(target.met for target in report.targets):
        print("bench: a target was missed (--strict)", file=sys.stderr)
        return 1
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="granian workers and nginx worker_processes, the same for all three servers",
    )
    parser.add_argument(
        "--granian-args",
        default="",
        help='extra granian flags for (a) and (c), e.g. "--blocking-threads 1"',
    )
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=10, help="recipients per email")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args()


@dataclass(frozen=True)
class Target:
    name: str
    value: str
    goal: str
    met: bool


@dataclass
class Report:
    settings: dict[str, Any]
    runs: dict[str, Any] = field(default_factory=dict)  # label -> wrk.WrkResult
    cpu: dict[str, Any] = field(default_factory=dict)  # label -> cpu.CpuUse during its run
    ingestion: Any = None  # ingest.DrainResult
    reconciliation: list[tuple[str, int]] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    naive_reconciliation: list[tuple[str, int]] = field(default_factory=list)
    shipped_reconciliation: list[tuple[str, int]] = field(default_factory=list)
    pixel_catch_up_seconds: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    explanation: str = ""

    @property
    def reconciled(self) -> bool:
        return all(ok for _, ok in self.checks)

    @property
    def targets(self) -> list[Target]:
        fast, nginx, naive = (self.runs[key] for key in ("a", "b", "c"))
        pixel = self.runs["p"]
        share = self.pixel_sustained / nginx.requests_per_second
        times = fast.requests_per_second / naive.requests_per_second
        ingest = self.ingestion.events_per_second
        return [
            Target(
                "(p)/(b) requests/s",
                f"{share:.0%}",
                f">= {TARGET_SHARE_OF_NGINX:.0%}",
                share >= TARGET_SHARE_OF_NGINX,
            ),
            Target(
                "(p) p99 latency",
                f"{pixel.p99_ms:.2f} ms",
                f"< {TARGET_P99_MS:.0f} ms",
                pixel.p99_ms < TARGET_P99_MS,
            ),
            Target(
                "(a)/(c) requests/s",
                f"{times:.1f}x",
                f">= {TARGET_TIMES_NAIVE:.0f}x",
                times >= TARGET_TIMES_NAIVE,
            ),
            Target(
                "ingestion",
                f"{ingest:,.0f} events/s",
                f">= {TARGET_INGEST_PER_SECOND:,.0f} events/s",
                ingest >= TARGET_INGEST_PER_SECOND,
            ),
        ]

    @property
    def pixel_sustained(self) -> float:
        """(p)'s requests/s with the shipping it had not done when wrk stopped charged to it:
        its requests over wrk's time plus the shipper's catch-up."""
        run = self.runs["p"]
        seconds = run.completed / run.requests_per_second + self.pixel_catch_up_seconds
        return float(run.completed / seconds)

    @property
    def fast_path_share(self) -> float:
        """(a) against (b): the Python fast path, which serves clicks everywhere and the pixel
        where nginx is not in front of it (embedded mode)."""
        return float(self.runs["a"].requests_per_second / self.runs["b"].requests_per_second)

    def print(self) -> None:
        s = self.settings
        print(
            f"\nOpenrate bench: {s['cores']} cores, wrk -t{s['wrk_threads']} "
            f"-c{s['connections']} -d{s['seconds']}s, {s['workers']} worker(s) per server, "
            f"{s['distinct_tokens']:,} distinct tokens"
            + (f", granian {s['granian_args']}" if s["granian_args"] else "")
            + "\n"
        )
        names = {
            "b": "(b) nginx, static GIF (reference)",
            "p": "(p) nginx pixel + log shipper",
            "a": "(a) fast path: granian + Redis",
            "c": "(c) naive Django view + PG insert",
        }
        print(
            f"  {'server':<36}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'requests':>11}{'errors':>8}"
        )
        for key in ("b", "p", "a", "c"):
            run = self.runs[key]
            errors = run.non_2xx + run.socket_errors
            print(
                f"  {names[key]:<36}{run.requests_per_second:>12,.0f}{run.p50_ms:>9.2f}"
                f"{run.p99_ms:>9.2f}{run.completed:>11,}{errors:>8,}"
            )
        print("\n  where the CPU went (other, kernel: work the bench did not start)")
        for key in ("b", "p", "a", "c"):
            if key in self.cpu:
                print(f"    {names[key][:3]} {self.cpu[key].summary(self.runs[key].completed)}")
        print(f"  load average before the run: {s['load_average']}")
        drained = self.ingestion
        print(
            f"\n  ingestion: {drained.stored:,} events in {drained.seconds:.2f} s = "
            f"{drained.events_per_second:,.0f} events/s ({drained.batches} batches of up to "
            f"{s['ingest_batch_size']:,}, {s['ingest_consumers']} consumers)"
        )
        labels = ", ".join(f"{label} {count:,}" for label, count in sorted(self.labels.items()))
        print(f"  stored events by label: {labels}")
        print("\n  targets")
        for target in self.targets:
            verdict = "met" if target.met else "MISSED"
            print(f"    {target.name:<22}{target.value:>20}   {target.goal:<26}{verdict}")
        print(
            f"    (p) counts {self.pixel_sustained:,.0f} requests/s: its requests over wrk's "
            f"time plus the {self.pixel_catch_up_seconds:.2f} s the shipper needed after it"
        )
        print(
            f"    (a) fast path (clicks; the pixel in embedded mode): {self.fast_path_share:.0%} "
            f"of (b), p99 {self.runs['a'].p99_ms:.2f} ms (not a target: see README)"
        )
        print("\n  reconciliation of (p)")
        for name, count in self.shipped_reconciliation:
            print(f"    {name:<62}{count:>11,}")
        print("\n  reconciliation of (a)")
        for name, count in self.reconciliation:
            print(f"    {name:<62}{count:>11,}")
        print(f"    -> {self.explanation}")
        for name, ok in self.checks:
            print(f"    {'ok  ' if ok else 'FAIL'} {name}")
        print("\n  (c) for comparison (rows in the BufferedEvent table)")
        for name, count in self.naive_reconciliation:
            print(f"    {name:<62}{count:>11,}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "runs": {
                "p_nginx_pixel_log": self.runs["p"].as_dict(),
                "a_fast_path": self.runs["a"].as_dict(),
                "b_nginx": self.runs["b"].as_dict(),
                "c_naive": self.runs["c"].as_dict(),
            },
            "cpu_us_per_request": {
                key: use.per_request_us(self.runs[key].completed) for key, use in self.cpu.items()
            },
            "ingestion": self.ingestion.as_dict(),
            "stored_events_by_label": self.labels,
            "targets": [vars(target) for target in self.targets],
            "reconciliation": dict(self.reconciliation),
            "checks": {name: ok for name, ok in self.checks},
            "explanation": self.explanation,
            "naive_reconciliation": dict(self.naive_reconciliation),
            "shipped_reconciliation": dict(self.shipped_reconciliation),
            "fast_path_share_of_nginx": self.fast_path_share,
            "pixel_sustained_requests_per_second": self.pixel_sustained,
            "pixel_catch_up_seconds": self.pixel_catch_up_seconds,
        }


class Bench:
    def __init__(
        self, *, args: argparse.Namespace, bench: BenchEnv, tools: dict[str, str], workdir: Path
    ) -> None:
        from bench import data, ingest

        self.args = args
        self.bench = bench
        self.tools = tools
        self.workdir = workdir
        self.requests_file = workdir / "pixels.tsv"
        self.redis = data.redis_client()
        self.report = Report(
            settings={
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3])
                if Path("/proc/loadavg").exists()
                else "unknown",
                "cores": os.cpu_count(),
                "wrk_threads": args.threads,
                "connections": args.connections,
                "seconds": args.seconds,
                "workers": args.workers,
                "granian_args": args.granian_args,
                "emails": args.emails,
                "recipients_per_email": args.recipients,
                "ingest_batch_size": ingest.BATCH_SIZE,
                "ingest_consumers": ingest.CONSUMERS,
                "versions": _versions(tools, self.redis),
                "commit": _git_commit(),
            }
        )

    def run(self) -> Report:
        from bench import data, ingest, servers

        print("Seeding the bench database...", flush=True)
        relation_ids = data.reset_and_seed(
            emails=self.args.emails, recipients_per_email=self.args.recipients
        )
        data.reset_stream(self.redis)
        self.report.settings["distinct_tokens"] = data.write_pixel_requests(
            self.requests_file, relation_ids
        )
        data.settle_database()
        workers = self.args.workers
        extra = shlex.split(self.args.granian_args)

        self.report.runs["b"] = self._load(
            "(b) nginx",
            lambda port: servers.nginx_command(
                self.tools["nginx"], self.workdir / "nginx", port=port, workers=workers
            ),
        )

        # (p) before (a): its events are counted and cleared before (a) fills the stream.
        shipped: dict[str, int] = {}
        pixel_log = self.workdir / "nginx-pixel" / "pixel.log"
        shipper = [sys.executable, str(ROOT / "manage.py"), "ship_pixel_log", str(pixel_log)]
        shipper += ["--source", "bench"]
        self.report.runs["p"] = self._load(
            "(p) nginx + shipper",
            lambda port: servers.nginx_pixel_log_command(
                self.tools["nginx"],
                self.workdir / "nginx-pixel",
                port=port,
                workers=workers,
                log=pixel_log,
                shipper=shipper,
            ),
            after=lambda: shipped.update(
                catch_up_seconds=self._caught_up(pixel_log),
                events=_settled(lambda: data.buffered_events(self.redis)),
            ),
        )
        self._reconcile_shipped(shipped["events"], shipped["catch_up_seconds"])
        data.reset_stream(self.redis)
        self.redis.delete(f"openrate:pixel-log:bench:{pixel_log}")

        appended: dict[str, int] = {}

        def count_buffered() -> None:
            appended["events"] = _settled(lambda: data.buffered_events(self.redis))
            appended["fallback_rows"] = data.buffered_rows()

        self.report.runs["a"] = self._load(
            "(a) fast path",
            lambda port: (
                servers.granian_command(
                    self.tools["granian"], "config.wsgi:application", port=port, workers=workers
                )
                + extra
            ),
            after=count_buffered,
        )

        print(f"Draining the buffer with {ingest.CONSUMERS} events_ingest processes...", flush=True)
        self.report.ingestion = ingest.drain_in_parallel(ingest.CONSUMERS)
        self._reconcile(appended["events"], appended["fallback_rows"])
        self.report.labels = data.stored_events_by_label()
        data.settle_database()

        naive_rows: dict[str, int] = {}
        self.report.runs["c"] = self._load(
            "(c) naive view",
            lambda port: (
                servers.granian_command(
                    self.tools["granian"],
                    "bench.naive.wsgi:application",
                    port=port,
                    workers=workers,
                )
                + extra
            ),
            env=self.bench.variables("bench.naive.settings"),
            after=lambda: naive_rows.update(rows=_settled(data.buffered_rows)),
        )
        naive = self.report.runs["c"]
        self.report.naive_reconciliation = [
            ("requests wrk completed with 200", naive.ok),
            ("requests wrk sent (completed + in flight when it stopped)", naive.sent),
            ("rows the naive view inserted", naive_rows["rows"]),
        ]
        data.clear_buffered_rows()  # left there, they would be ingested by whoever runs next
        return self.report

    def _load(
        self,
        name: str,
        command: Callable[[int], list[str]],
        *,
        env: dict[str, str] | None = None,
        after: Callable[[], object] | None = None,
    ) -> Any:
        """Start a server, put wrk's load on it, run `after` while it is still up, stop it."""
        from bench import cpu, servers, wrk

        port = servers.free_port()
        slug = name.split()[0].strip("()")
        print(f"Measuring {name} for {self.args.seconds} s...", flush=True)
        with servers.serve(
            name,
            command(port),
            port=port,
            env=env or self.bench.variables(),
            cwd=ROOT,
            log=self.workdir / f"server-{slug}.log",
        ) as server:
            with cpu.measured(server.process.pid) as use:
                result, output = wrk.run(
                    self.tools["wrk"],
                    server.url,
                    self.requests_file,
                    threads=self.args.threads,
                    connections=self.args.connections,
                    seconds=self.args.seconds,
                )
            self.report.cpu[slug] = use
            if after is not None:
                after()
        # Kept beside latest.json: the first place to look when a run shows errors.
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"wrk-{slug}.txt").write_text(output)
        shutil.copyfile(server.log, RESULTS / f"server-{slug}.log")
        return result

    def _caught_up(self, pixel_log: Path, limit: float = 120.0) -> float:
        """Seconds after wrk stopped until the shipper's saved place reached the log's end: the
        work it left for later, which (p)'s rate is charged with."""
        stopped = time.monotonic()
        key = f"openrate:pixel-log:bench:{pixel_log}"
        while time.monotonic() - stopped < limit:
            place = self.redis.hget(key, "offset")
            if place is not None and int(place) >= pixel_log.stat().st_size:
                break
            time.sleep(0.02)
        return time.monotonic() - stopped

    def _reconcile_shipped(self, shipped: int, catch_up_seconds: float) -> None:
        """(p): every hit nginx answered with a 200 is one event on the stream; requests in
        flight when wrk stopped may have been answered (and logged) too."""
        run = self.report.runs["p"]
        self.report.pixel_catch_up_seconds = catch_up_seconds
        self.report.shipped_reconciliation = [
            ("requests wrk completed with 200", run.ok),
            ("requests wrk sent (completed + in flight when it stopped)", run.sent),
            ("events the shipper put on the stream", shipped),
            ("ms the shipper still needed after wrk stopped", round(catch_up_seconds * 1000)),
        ]
        self.report.checks.append(
            (
                "(p) every 200 wrk saw was shipped once (200s <= events <= sent)",
                run.ok <= shipped <= run.sent,
            )
        )

    def _reconcile(self, appended: int, fallback_rows: int) -> None:
        from bench import data

        fast = self.report.runs["a"]
        drained = self.report.ingestion
        rows = data.stored_events()
        left = data.buffered_events(self.redis)
        opens = data.counted_opens()
        in_flight = fast.sent - fast.completed
        self.report.reconciliation = [
            ("requests wrk completed with 200", fast.ok),
            ("requests wrk completed with another status", fast.non_2xx),
            ("requests wrk sent", fast.sent),
            ("  of which still in flight when wrk stopped (sent - completed)", in_flight),
            ("events the server appended (stream + fallback table)", appended),
            ("  of which in the database fallback table", fallback_rows),
            ("events ingestion read from the buffer", drained.read),
            ("TrackingEvent rows after the drain", rows),
            ("opens counted on the recipients (human + machine)", opens),
            ("events left in the buffer", left),
        ]
        self.report.checks = [
            ("every appended event was stored exactly once", rows == appended == drained.read),
            ("the buffer is empty after the drain", left == 0),
            ("every 200 wrk saw has its event", fast.ok <= rows and fast.non_2xx == 0),
            ("no event without a request (events <= requests sent)", rows <= fast.sent),
            ("the recipients' counters add up to the stored events", opens == rows),
        ]
        answered_late = rows - fast.ok
        self.report.explanation = (
            f"{answered_late:,} of the {in_flight:,} requests in flight when wrk stopped were "
            "still answered and recorded by the server"
            + (": every request sent was recorded exactly once" if rows == fast.sent else "")
        )


def _settled(count: Callable[[], int], quiet_seconds: float = 1.0, limit: float = 15.0) -> int:
    """`count()` once it has stopped changing: requests wrk left in flight finish server-side."""
    last = count()
    deadline = time.monotonic() + limit
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds and time.monotonic() < deadline:
        time.sleep(0.1)
        now = count()
        if now != last:
            last, quiet_since = now, time.monotonic()
    return last


def _versions(tools: dict[str, str], redis_client: Any) -> dict[str, str]:
    from django.db import connection

    def first_line(command: list[str]) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return (done.stdout + done.stderr).strip().splitlines()[0]

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {
        "python": platform.python_version(),
        "granian": first_line([tools["granian"], "--version"]),
        "nginx": first_line([tools["nginx"], "-v"]),
        "wrk": first_line([tools["wrk"], "-v"]),
        "postgresql": postgres,
        "redis": str(redis_client.info("server")["redis_version"]),
    }


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
