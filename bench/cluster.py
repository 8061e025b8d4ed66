"""Benchmark: Openrate as six hosts on this machine, with faults, reconciled exactly.

Each host is a Linux network namespace on a bridge (bench/netns.py; run as root): "data"
(a private PostgreSQL 15 initdb'd for the run, and Redis with the persistence README asks of
production: append-only file, fsync every second, noeviction), "web1" and "web2" (see below),
"lb" (nginx balancing them, logging every answer),
"work1" and "work2" (Celery workers for the ingestion, list_email and other queues; beat on
work1 only). This process seeds the database, receives the list email on an SMTP sink on the
bridge, and drives wrk (pixels and clicks of real recipients, each request tagged in its user
agent: bench/pixels.lua) through the balancer. A web node runs what README's production setup
runs: nginx answering the pixel and writing its pixel log, `manage.py ship_pixel_log` following
that log, and granian behind that nginx for everything else (clicks).

The run is a sequence of segments, each a wrk run with at most one fault, then reconciled
request by request: every answer the balancer logged with 200 or 302 must have exactly one
stored event with its tag (lost: none; doubled: more than one), and in total the events stored
= the opens and clicks on the recipients' counters = those on the daily rollups.

  steady           no fault: requests/s through the balancer, ingestion lag (a probe event
                   written to the stream each second, timed into the events table, as in
                   bench/lag.py) and the list email's rate, which starts here
  list-email-kill  the worker node sending a list email batch is SIGKILLed once the sink has
                   received 60 messages of that batch, and started again. Delivery claims and
                   records a batch's copies a group at a time (crm.delivery.CLAIM_GROUP): the
                   group in hand stays Sending (unconfirmed, never sent twice), and those of it
                   the sink did not receive are the loss window; the later groups stay Pending.
                   The batch's lease (10 minutes) is moved to now instead of waited for; beat
                   then resumes the list email, whose next run delivers those Pending copies.
  ingestion-kill   the worker node whose ingestion holds a batch's transaction open (seen in
                   pg_stat_activity by its address) is SIGKILLed and started again; the other
                   node's consumer claims the dead one's pending entries after CLAIM_IDLE_MS.
                   The node's list_email worker dies too: a list email batch it was delivering
                   leaves one more group unconfirmed (counted), and its lease, found holding
                   the list email at the end, is moved as above
  web-kill         web1 (its nginx, shipper and granian) SIGKILLed and started again under
                   load: no click is lost (the fast path writes a click to Redis before it
                   answers); a pixel hit only if nginx answered it in the microseconds before
                   it wrote its log line (PIXEL_KILL_WINDOW; the shipper resumes at its place
                   saved in Redis). A request the balancer retries on web2 after web1 recorded
                   it is one event (the balancer's stamp)
  redis-term       Redis stopped with SIGTERM and started again on the same append-only file
  redis-kill       Redis SIGKILLed and started again: up to about a second of writes is lost

At the end (the run waits for the list email to complete, which it does only once no copy is
Pending) members = messages received + copies left Sending unreceived (the window, at most one
group per kill that hit a batch), no one received two, no copy is Pending and those left
Sending are marked unconfirmed.

    .venv/bin/python bench/cluster.py            (20,000 members; BENCH_CLUSTER_MEMBERS changes it)
    .venv/bin/python bench/cluster.py --ci       (2,000 members, about 20 s of wrk: .ci/run)

Exit status: 0 reconciled, 1 a double anywhere, or a pixel hit or a click lost outside its
documented window, 2 a prerequisite is missing.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from bench.env import BenchEnv, PrerequisiteMissing, find_tools, recreate_database, start_django
from bench.measure import RESULTS, write_results

TRACKED_COPIES = 2_000  # sent earlier: wrk's pixels and clicks are theirs
CLICK_SHARE = 0.3
# The window within which a loss is the documented one (seconds before the fault): Redis's
# appendfsync everysec (a second, and the fsync that may itself take up to another).
REDIS_KILL_WINDOW = 2.5
# A pixel's only window: nginx writes a hit's log line microseconds after its answer, so a
# SIGKILL between the two loses that hit. Its answer is then logged by the balancer no earlier
# than a few milliseconds before the fault (and up to the balancer's own lag after it).
PIXEL_KILL_WINDOW = 0.005
# The balancer logs an answer when it has passed it on: under load that is up to this long
# after the web node answered (its p99 through the balancer reaches ~100 ms on two cores).
BALANCER_LAG = 0.25
SETTLE_TIMEOUT = 240.0
# A list email with no message for this long while a batch's lease is held has a dead batch.
STALL_SECONDS = 15.0


@dataclass(frozen=True)
class Mode:
    members: int
    steady_seconds: int
    fault_seconds: int
    connections: int = 32


@dataclass
class Segment:
    name: str
    seconds: int
    fault: Callable[[Segment], None] | None = None
    settle: bool = True  # reconcile right after (False: with the next segment that settles)
    fault_at: float | None = None  # time.time() of the fault
    note: str = ""
    wrk: Any = None
    load: str = ""
    settle_seconds: float = 0.0  # from the end of wrk until the buffer was empty
    outcome: dict[str, Any] = field(default_factory=dict)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="the short run CI makes")
    parser.add_argument("--members", type=int, help="list email members")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args()
    mode = (
        Mode(members=2_000, steady_seconds=8, fault_seconds=4)
        if args.ci
        else Mode(members=20_000, steady_seconds=30, fault_seconds=10)
    )
    members = args.members or int(os.environ.get("BENCH_CLUSTER_MEMBERS", mode.members))
    mode = Mode(members, mode.steady_seconds, mode.fault_seconds)
    if os.geteuid() != 0:
        print("bench: cannot run: network namespaces need root", file=sys.stderr)
        return 2
    try:
        tools = find_tools()
    except PrerequisiteMissing as error:
        print(f"bench: cannot run:\n{error}", file=sys.stderr)
        return 2
    from bench.cluster_nodes import Cluster, NodeFailed

    workdir = Path(tempfile.mkdtemp(prefix="openrate-cluster-"))
    cluster = Cluster(workdir, web_workers=1)
    finished = threading.Event()

    def clean_up() -> None:
        if finished.is_set():
            return
        finished.set()
        try:
            cluster.close()
        finally:
            logs = RESULTS / "cluster-logs"
            shutil.rmtree(logs, ignore_errors=True)
            shutil.copytree(cluster.logs, logs, dirs_exist_ok=True)
            if args.keep:
                print(f"Kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(clean_up)
    # A SIGTERM (make, CI's timeout) unwinds like Ctrl-C, so the finally below runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run = Run(cluster, tools, mode)
        run.prepare()
        run.segments()
        figures = run.report()
    except NodeFailed as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        clean_up()
    write_results("cluster", figures)
    if not figures["reconciled"]:
        print("bench: FAILED: " + "; ".join(figures["failures"]), file=sys.stderr)
        return 1
    return 0


class Run:
    def __init__(self, cluster: Any, tools: dict[str, str], mode: Mode) -> None:
        self.cluster = cluster
        self.tools = tools
        self.mode = mode
        self.requests_file = cluster.workdir / "requests.tsv"
        self.loads = {"start": _load()}
        self.lags: list[float] = []
        self.probes_written = 0
        self.list_email: dict[str, Any] = {}
        self.list_email_kill: dict[str, Any] = {}
        self.batches_killed = 0  # worker node kills while a list email batch was in delivery
        self.stalls = 0  # leases of such batches moved at the end
        self.done: list[Segment] = []
        self.probes: _Probes | None = None

    # --- setup ---------------------------------------------------------------------------

    def prepare(self) -> None:
        from bench.netns import GATEWAY
        from bench.sink import Sink

        cluster = self.cluster
        print("Network: 6 hosts on a bridge; PostgreSQL and Redis on data...", flush=True)
        cluster.open_network()
        cluster.start_data()
        self.sink = Sink(hostname=GATEWAY)
        self.sink.controller.start()
        bench = BenchEnv(database_url=cluster.database_url, redis_url=cluster.redis_url)
        recreate_database(bench.database_url)
        variables = cluster.environment(bench.variables(), sink_port=self.sink.port)
        print("Migrating and seeding...", flush=True)
        start_django(variables)
        from bench import data

        self.relation_ids = data.reset_and_seed(emails=TRACKED_COPIES, recipients_per_email=1)
        self._write_requests(data.tracked_links(self.relation_ids))
        self.campaign_id, self.user_id = data.campaign_with_members(self.mode.members)
        data.analyze()
        self.redis = data.redis_client()
        print("Starting web1, web2, lb, work1 (with beat) and work2...", flush=True)
        cluster.start_app(variables, self.tools)

    def _write_requests(self, links: dict[int, list[int]]) -> None:
        """Pixel and click paths of the tracked copies, with a mail client each (wrk's lines)."""
        import random

        from django.conf import settings

        from bench.data import USER_AGENTS
        from mailkit.tokens import make_token, signing_keys

        key = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)[0]
        randomly = random.Random(21)
        lines = []
        for n, relation in enumerate(self.relation_ids):
            agent = USER_AGENTS[n % len(USER_AGENTS)]
            lines.append(f"/t/o/{make_token(relation, key=key)}.gif\t{agent}")
            if randomly.random() < CLICK_SHARE / (1 - CLICK_SHARE) and links.get(relation):
                link = randomly.choice(links[relation])
                lines.append(f"/t/c/{make_token(relation, link, key=key)}\t{agent}")
        self.requests_file.write_text("\n".join(lines) + "\n")

    # --- the segments --------------------------------------------------------------------

    def segments(self) -> None:
        seconds = self.mode.fault_seconds
        plan = [
            Segment("steady", self.mode.steady_seconds),
            # The next one claims the dead node's stream entries after a minute: the two kills
            # wait for that minute together, each still reconciled on its own requests.
            Segment("list-email-kill", seconds, self._kill_list_email_node, settle=False),
            Segment("ingestion-kill", seconds, self._kill_ingesting_node),
            Segment("web-kill", seconds, self._kill_web_node),
            Segment("redis-term", seconds, lambda s: self._restart_redis(s, signal.SIGTERM)),
            Segment("redis-kill", seconds, lambda s: self._restart_redis(s, signal.SIGKILL)),
        ]
        waiting: list[Segment] = []
        for segment in plan:
            self._run_segment(segment)
            waiting.append(segment)
            if segment.settle:
                segment.settle_seconds = self._settle()
                if self.probes is not None:  # the probes have landed
                    self.lags = self.probes.finish()
                    self.probes_written += self.probes.written
                    self.probes = None
                for done in waiting:
                    self._reconcile(done)
                waiting = []
        self._finish_list_email()

    def _run_segment(self, segment: Segment) -> None:
        from bench import wrk

        segment.load = _load()
        print(f"Segment {segment.name}: wrk for {segment.seconds} s (load {segment.load})...")
        sys.stdout.flush()
        fault = (
            threading.Thread(target=segment.fault, args=(segment,), daemon=True)
            if segment.fault
            else None
        )
        probes = _Probes(self.redis, self.relation_ids) if segment.name == "steady" else None
        if probes:
            probes.start()
            self.probes = probes
        if fault:
            fault.start()
        segment.wrk, _ = wrk.run(
            self.tools["wrk"],
            self.cluster.balancer,
            self.requests_file,
            threads=2,
            connections=self.mode.connections,
            seconds=segment.seconds,
            script_args=[segment.name],  # pixels.lua tags each request with it
        )
        if probes:
            probes.producer.stop.set()
            probes.producer.join()
        if fault:
            fault.join(timeout=120)
        print(
            f"  {segment.wrk.requests_per_second:,.0f} requests/s, p99 {segment.wrk.p99_ms:.1f} ms"
            + (f"; {segment.note}" if segment.note else ""),
            flush=True,
        )

    # --- the faults ----------------------------------------------------------------------

    def _kill_list_email_node(self, segment: Segment) -> None:
        """Arm the sink: the node sending the next batch that delivers 60 messages is SIGKILLed
        from the sink's own thread, in the middle of that batch."""
        fired = threading.Event()

        def on_message(peer: str, in_session: int) -> None:
            if fired.is_set() or in_session < 60:
                return
            node = self.cluster.node_at(peer)
            segment.fault_at = time.time()
            self.cluster.kill(node)
            self.list_email_kill.update(node=node, received_at_kill=self.sink.messages)
            fired.set()

        self.sink.on_message = on_message
        # Queued only now: a batch takes about half a second, so a list email queued before
        # the steady segment could be done before the sink is armed.
        self._start_list_email()
        if not fired.wait(timeout=segment.seconds + 90):
            self.sink.on_message = None
            segment.note = "the list email was not sending: no node killed"
            return
        self.sink.on_message = None
        node = self.list_email_kill["node"]
        segment.note = f"{node} killed in a list email batch"
        self.batches_killed += 1
        time.sleep(2)
        self.cluster.start(node)
        self._lease_over()

    def _lease_over(self) -> None:
        """A dead batch holds the list email's lease for 10 minutes: as if they had passed."""
        from django.db import connection
        from django.utils import timezone

        from campaigns.models import ListEmail

        ListEmail.objects.filter(campaign_id=self.campaign_id).update(next_batch_at=timezone.now())
        connection.close()

    def _batch_in_delivery(self) -> bool:
        """A list email batch is being delivered (its copies claimed a group at a time): the
        list email names it, or some of its copies are Sending. A run resuming a stopped batch
        delivers it after the list email stopped naming it (campaigns.list_email), so the
        name alone misses a kill there."""
        from django.db import connection

        from campaigns.models import ListEmail
        from crm.models import EmailMessageRelation

        try:
            return (
                ListEmail.objects.filter(
                    campaign_id=self.campaign_id, delivering_batch__isnull=False
                ).exists()
                or EmailMessageRelation.objects.filter(
                    email__campaign_id=self.campaign_id,
                    delivery_status=EmailMessageRelation.Delivery.SENDING,
                ).exists()
            )
        finally:
            connection.close()

    def _kill_ingesting_node(self, segment: Segment) -> None:
        """SIGKILL the worker node whose ingestion has a batch's transaction open."""
        import psycopg

        workers = [self.cluster.address["work1"], self.cluster.address["work2"]]
        deadline = time.monotonic() + segment.seconds + 30
        with psycopg.connect(self.cluster.database_url, autocommit=True) as db:
            while time.monotonic() < deadline:
                row = db.execute(
                    "SELECT host(client_addr), now() - xact_start FROM pg_stat_activity "
                    "WHERE datname = current_database() AND xact_start IS NOT NULL "
                    "AND query ILIKE '%%ingest_batch%%' AND host(client_addr) = ANY(%s)",
                    [workers],
                ).fetchone()
                if row is not None:
                    node = self.cluster.node_at(row[0])
                    # The node also runs a list_email worker: if a batch is in delivery, this
                    # kill may stop it too (a second group left unconfirmed, the lease held).
                    in_delivery = self._batch_in_delivery()
                    segment.fault_at = time.time()
                    self.cluster.kill(node)
                    self.batches_killed += in_delivery
                    segment.note = (
                        f"{node} killed {row[1].total_seconds() * 1000:.0f} ms into a batch"
                    )
                    break
                time.sleep(0.005)
            else:
                segment.note = "no ingestion batch seen: no node killed"
                return
        time.sleep(2)
        self.cluster.start(node)

    def _kill_web_node(self, segment: Segment) -> None:
        time.sleep(segment.seconds / 3)
        segment.fault_at = time.time()
        self.cluster.kill("web1")
        self.cluster.start("web1")
        self.cluster.wait_for_http("web1")
        segment.note = f"web1 back after {time.time() - segment.fault_at:.1f} s"

    def _restart_redis(self, segment: Segment, sig: signal.Signals) -> None:
        time.sleep(segment.seconds / 3)
        segment.fault_at = time.time()
        self.cluster.kill("data", sig, only="redis")
        self.cluster.start("data", only="redis")
        self.cluster.wait_for_redis()
        segment.note = f"Redis back after {time.time() - segment.fault_at:.1f} s"

    # --- waiting and reconciling ---------------------------------------------------------

    def _settle(self) -> float:
        """Until the stream (new and pending entries) and the fallback table are empty;
        returns how long that took."""
        import redis

        from bench import data
        from tracking import buffer

        started = time.monotonic()
        time.sleep(1.0)  # the web nodes' writers and nginx's log buffer
        deadline = started + SETTLE_TIMEOUT
        quiet = 0
        while time.monotonic() < deadline:
            try:
                left = self.redis.xlen(buffer.STREAM) + data.buffered_rows()
            except redis.RedisError:
                left = -1
            quiet = quiet + 1 if left == 0 else 0
            if quiet >= 4:
                return time.monotonic() - started - 1.5
            time.sleep(0.5)
        print(f"  the buffer did not empty within {SETTLE_TIMEOUT:.0f} s", flush=True)
        return SETTLE_TIMEOUT

    def _reconcile(self, segment: Segment) -> None:
        """Each answer the balancer logged for this segment against the events stored for it."""
        from django.db import connection

        answered: dict[str, float] = {}  # request tag -> when nginx answered it
        pixels: set[str] = set()  # the tags of pixel requests (the rest are clicks)
        other: Counter[str] = Counter()
        # Answered by a second web node after the first failed (nginx's proxy_next_upstream):
        # two upstream statuses. Each is one event all the same (the balancer's stamp).
        retried: set[str] = set()
        marker = f" or/{segment.name}/"
        with self.cluster.access_log.open(errors="replace") as log:
            for line in log:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 6 or marker not in parts[5]:
                    continue
                tag = parts[5].split(" or/", 1)[1]
                if parts[1] in ("200", "302"):
                    answered[tag] = float(parts[0])
                    if "," in parts[3]:
                        retried.add(tag)
                    if parts[4].startswith("/t/o/"):
                        pixels.add(tag)
                else:
                    other[parts[1]] += 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT substring(user_agent from ' or/(.*)$'), count(*) "
                "FROM tracking_trackingevent WHERE user_agent LIKE %s GROUP BY 1",
                [f"% or/{segment.name}/%"],
            )
            stored = dict(cursor.fetchall())
        lost = [tag for tag in answered if tag not in stored]

        def before_fault(tags: list[str]) -> list[float] | None:
            """The first and last of when the tags were answered, in seconds before the fault."""
            times = (
                sorted(segment.fault_at - answered[tag] for tag in tags) if segment.fault_at else []
            )
            return [times[0], times[-1]] if times else None

        lost_pixels = [tag for tag in lost if tag in pixels]
        segment.outcome = {
            "answered_200_302": len(answered),
            "other_answers": dict(other),
            "events_stored": sum(stored.values()),
            "lost": len(lost),
            # Served by the web nodes' nginx and shipped from its log: PIXEL_KILL_WINDOW only.
            "lost_pixels": len(lost_pixels),
            "lost_seconds_before_fault": before_fault(lost),
            "lost_pixels_seconds_before_fault": before_fault(lost_pixels),
            "doubled": sum(n - 1 for n in stored.values() if n > 1),
            "retried_on_another_node": len(retried),
            # Of those, the pixel hits both web nodes' nginx logged: two records, one event.
            "retried_pixels_logged_twice": self._logged_by_both(retried),
            "stored_without_200": sum(1 for tag in stored if tag not in answered),
        }
        segment.outcome |= self._totals()
        self.done.append(segment)
        o = segment.outcome
        print(
            f"  {segment.name}: {o['answered_200_302']:,} answered, {o['events_stored']:,} "
            f"stored, lost {o['lost']} ({o['lost_pixels']} pixels), doubled {o['doubled']} "
            f"(retried on another node {o['retried_on_another_node']}, pixels of them logged by "
            f"both {o['retried_pixels_logged_twice']}), "
            f"stored without a 200/302 "
            f"{o['stored_without_200']} (other answers: {o['other_answers'] or 'none'}); "
            f"in all {o['total_stored']:,} stored, {o['total_counted']:,} counted, "
            f"{o['total_rollups']:,} on the rollups",
            flush=True,
        )

    def _logged_by_both(self, tags: set[str]) -> int:
        """How many of these requests' tags both web nodes' pixel logs hold."""
        if not tags:
            return 0
        logged: list[set[str]] = []
        for name in ("web1", "web2"):
            found: set[str] = set()
            with (self.cluster.workdir / name / "pixel.log").open(errors="replace") as log:
                for line in log:
                    if " or/" in line:
                        tag = line.rstrip("\n").rsplit(" or/", 1)[1]
                        if tag in tags:
                            found.add(tag)
            logged.append(found)
        return len(logged[0] & logged[1])

    def _totals(self) -> dict[str, Any]:
        from django.db.models import F, Sum

        from bench import data
        from crm.models import EmailDailyStat

        kinds = ("opens_human", "opens_apple_mpp", "opens_image_proxy", "opens_scanner")
        rollups = EmailDailyStat.objects.aggregate(
            total=Sum(
                sum((F(name) for name in kinds[1:]), F(kinds[0]))
                + F("opens_bot")
                + F("clicks_human")
                + F("clicks_machine")
            )
        )
        untagged = data.stored_events() - _count_tagged()
        return {
            "total_stored": data.stored_events(),
            "total_counted": data.counted_opens() + data.counted_clicks(),
            "total_rollups": int(rollups["total"] or 0),
            "probe_events_written": self.probes_written,
            "probe_events_stored": untagged,
        }

    # --- the list email ------------------------------------------------------------------

    def _start_list_email(self) -> None:
        from bench.lag import BODY
        from campaigns.list_email import list_email_create
        from campaigns.models import Campaign
        from crm.models import User

        campaign = Campaign.objects.get(pk=self.campaign_id)
        self.list_email["started"] = time.monotonic()
        self.list_email["id"] = list_email_create(
            campaign=campaign,
            sender=User.objects.get(pk=self.user_id),
            subject="Spring for {{first_name}}",
            html_body=BODY,
            members=campaign.members.all(),
        ).pk

    def _finish_list_email(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.models import ListEmail
        from crm.delivery import UNCONFIRMED
        from crm.models import EmailMessageRelation as Relation

        members = self.mode.members
        deadline = time.monotonic() + max(300, members / 20)
        status = ""
        received, progress_at = -1, time.monotonic()
        while time.monotonic() < deadline:
            status, due = ListEmail.objects.values_list("status", "next_batch_at").get(
                pk=self.list_email["id"]
            )
            if status == ListEmail.Status.COMPLETED:
                break
            if self.sink.messages != received:
                received, progress_at = self.sink.messages, time.monotonic()
            elif (
                time.monotonic() - progress_at > STALL_SECONDS
                and due is not None
                and due > timezone.now() + timedelta(minutes=5)
            ):
                # No message for a while and a batch's lease held: a batch the ingestion
                # fault's kill stopped too. Its lease is moved as the list email fault's is.
                self.stalls += 1
                self._lease_over()
                progress_at = time.monotonic()
            time.sleep(1)
        finished = time.monotonic()
        with self.sink.lock:
            received = dict(self.sink.received)
        copies = Relation.objects.filter(
            email__campaign_id=self.campaign_id, relation_type=Relation.Type.TO
        )
        left_sending = dict(
            copies.filter(delivery_status=Relation.Delivery.SENDING).values_list(
                "address", "refusal_reason"
            )
        )
        self.list_email |= {
            "status": status,
            "members": members,
            "received": len(received),
            "received_twice": sum(1 for n in received.values() if n > 1),
            "left_pending": copies.filter(delivery_status=Relation.Delivery.PENDING).count(),
            "left_sending": len(left_sending),
            "left_sending_unconfirmed": sum(1 for r in left_sending.values() if r == UNCONFIRMED),
            "left_sending_received": sum(1 for a in left_sending if a in received),
            "lost": sum(1 for a in left_sending if a not in received),
            "seconds": finished - self.list_email.pop("started"),
            "batches_killed": self.batches_killed,
            "stalled_leases_moved": self.stalls,
            **self.list_email_kill,
        }
        sending = self.sink.last_at - self.sink.first_at
        self.list_email["sending_seconds"] = sending
        self.list_email["rate"] = len(received) / sending if sending else 0.0

    # --- the report ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        from crm.delivery import CLAIM_GROUP

        self.loads["end"] = _load()
        failures: list[str] = []
        segments = {s.name: s for s in self.done}
        for segment in self.done:
            o = segment.outcome
            if o["doubled"]:
                failures.append(f"{segment.name}: {o['doubled']} events doubled")
            window = {"web-kill": PIXEL_KILL_WINDOW, "redis-kill": REDIS_KILL_WINDOW}.get(
                segment.name
            )
            if o["lost"] and not _within(o["lost_seconds_before_fault"], window):
                failures.append(f"{segment.name}: {o['lost']} events lost outside its window")
            if segment.name == "web-kill" and o["lost"] > o["lost_pixels"]:
                failures.append(
                    f"web-kill: {o['lost'] - o['lost_pixels']} clicks lost (a click is written "
                    f"before its redirect is answered)"
                )
            if o["lost_pixels"] and not (
                segment.name == "web-kill"
                and _within(o["lost_pixels_seconds_before_fault"], PIXEL_KILL_WINDOW)
            ):
                failures.append(
                    f"{segment.name}: {o['lost_pixels']} pixel hits lost outside nginx's "
                    f"window between its answer and its log line"
                )
            if segment.fault and segment.fault_at is None:
                failures.append(f"{segment.name}: the fault did not happen ({segment.note})")
        last = self.done[-1].outcome
        if not last["total_stored"] == last["total_counted"] == last["total_rollups"]:
            failures.append("events stored, counted and on the rollups differ")
        if last["probe_events_written"] != last["probe_events_stored"]:
            failures.append("probe events written and stored differ")
        mail = self.list_email
        if mail["status"] != "completed":
            failures.append(f"the list email did not complete ({mail['status']})")
        if mail["received_twice"]:
            failures.append(f"{mail['received_twice']} members received the list email twice")
        if mail["received"] + mail["lost"] != mail["members"]:
            failures.append("list email: received + left Sending unreceived != members")
        if mail["left_sending"] > CLAIM_GROUP * max(1, mail["batches_killed"]):
            failures.append(
                f"list email: {mail['left_sending']} left Sending, more than a group for each "
                f"of the {mail['batches_killed']} kills that hit a batch"
            )
        if mail["left_sending_unconfirmed"] != mail["left_sending"]:
            failures.append("list email: copies left Sending not marked unconfirmed")
        if mail["left_pending"]:
            failures.append(f"list email: {mail['left_pending']} copies never delivered")
        steady = segments["steady"]
        lags = sorted(self.lags)
        figures = {
            "mode": vars(self.mode),
            "loads": self.loads,
            "requests_per_second": steady.wrk.requests_per_second,
            "p50_ms": steady.wrk.p50_ms,
            "p99_ms": steady.wrk.p99_ms,
            "lag_median_seconds": statistics.median(lags) if lags else None,
            "lag_p95_seconds": lags[int(0.95 * (len(lags) - 1))] if lags else None,
            "lag_max_seconds": lags[-1] if lags else None,
            "probes": len(lags),
            "list_email": mail,
            "segments": {
                s.name: {
                    "note": s.note,
                    "load": s.load,
                    "settle_seconds": s.settle_seconds,
                    "wrk": s.wrk.as_dict(),
                    **s.outcome,
                }
                for s in self.done
            },
            "reconciled": not failures,
            "failures": failures,
        }
        self._print(figures)
        return figures

    def _print(self, f: dict[str, Any]) -> None:
        mail = f["list_email"]
        print(
            f"\nOpenrate on six hosts (2 web, 2 worker, data, balancer), loads {f['loads']}\n"
            f"  through the balancer (steady): {f['requests_per_second']:,.0f} requests/s, "
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"
        )
        if f["probes"]:
            print(
                f"  ingestion lag ({f['probes']} probes): median {f['lag_median_seconds']:.2f} s, "
                f"p95 {f['lag_p95_seconds']:.2f} s, max {f['lag_max_seconds']:.2f} s"
            )
        print(
            f"  list email: {mail['members']:,} members, {mail['received']:,} received "
            f"{mail['seconds']:.0f} s after it was queued ({mail['rate']:.0f} emails/s from the "
            f"first to the last, the faults' pauses included), "
            f"{mail['received_twice']} twice; "
            f"left Sending (unconfirmed): {mail['left_sending']} "
            f"({mail['left_sending_received']} of them received, {mail['lost']} lost); "
            f"left Pending: {mail['left_pending']}; worker kills that hit a batch: "
            f"{mail['batches_killed']}, dead leases moved at the end: "
            f"{mail['stalled_leases_moved']}"
        )
        print(
            "\n  segment          answered    stored    lost  pixels  doubled  settled  lost "
            "answered (ms before the fault)"
        )
        for name, s in f["segments"].items():
            window = s["lost_seconds_before_fault"]
            print(
                f"  {name:<16}{s['answered_200_302']:>10,}{s['events_stored']:>10,}"
                f"{s['lost']:>8,}{s['lost_pixels']:>8,}{s['doubled']:>9,}"
                f"{s['settle_seconds']:>7.0f} s  "
                + (f"{window[0] * 1000:+.0f} to {window[1] * 1000:+.0f}" if window else "-")
                + (f"   ({s['note']})" if s["note"] else "")
            )
        verdict = "reconciled" if f["reconciled"] else "NOT reconciled: " + "; ".join(f["failures"])
        print(f"\n  {verdict}")


def _within(seconds_before_fault: list[float] | None, window: float | None) -> bool:
    """Whether losses answered this long before a fault (first, last) are its window's: answered
    at most `window` before it, or logged by the balancer at most BALANCER_LAG after it."""
    return (
        window is not None
        and seconds_before_fault is not None
        and seconds_before_fault[0] >= -BALANCER_LAG
        and seconds_before_fault[1] <= window
    )


class _Probes:
    """bench/lag.py's producer writing probe events (20/s, one timed each second) while a
    thread watches for them in the events table."""

    def __init__(self, client: Any, relation_ids: list[int]) -> None:
        from bench.lag import Producer

        self.producer = Producer(client, relation_ids, events_per_second=20)
        self.lags: list[float] = []
        self.written = 0
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self.producer.start()
        self._watcher.start()

    def finish(self) -> list[float]:
        """After the producer stopped and the buffer emptied: each probe's lag."""
        self.written = self.producer.written
        time.sleep(0.5)  # the watcher's last look
        self._stop.set()
        self._watcher.join()
        return self.lags

    def _watch(self) -> None:
        from django.db import connection

        from tracking.models import TrackingEvent

        landed: set[str] = set()
        while not self._stop.is_set():
            with self.producer.lock:
                waiting = {k: v for k, v in self.producer.probes.items() if k not in landed}
            if waiting:
                found = TrackingEvent.objects.filter(
                    event_id__in=[uuid.UUID(k) for k in waiting]
                ).values_list("event_id", flat=True)
                now = time.monotonic()
                for value in found:
                    landed.add(value.hex)
                    self.lags.append(now - waiting[value.hex])
            self._stop.wait(0.2)
        connection.close()


def _count_tagged() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_trackingevent WHERE user_agent LIKE '% or/%'")
        return int(cursor.fetchone()[0])


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    raise SystemExit(main())
