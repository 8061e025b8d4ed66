"""Ingestion: buffered events become labelled TrackingEvents and set-based counter updates."""

import gc
import logging
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import TrackedLink
from tests.tracking.conftest import CHROME, call, setup_change
from tracking import buffer, ingestion
from tracking.ingestion import PHASES, events_ingest
from tracking.models import BufferedEvent, TrackingEvent
from tracking.recount import counters_recount_all

APPLE_PROXY = {"User-Agent": "Mozilla/5.0"}
GMAIL_PROXY = {
    "User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
}


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def test_a_human_open_marks_the_email_opened(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})

    assert events_ingest().stored == 1

    event = TrackingEvent.objects.get()
    assert (event.kind, event.label, event.reason) == ("open", "human", "no machine signal")
    assert event.client.startswith("Chrome") and event.os.startswith("Windows")
    sent_email.relation.refresh_from_db()
    assert (sent_email.relation.human_opens, sent_email.relation.machine_opens) == (1, 0)
    assert sent_email.relation.first_opened_at == event.occurred_at
    sent_email.email.refresh_from_db()
    assert sent_email.email.is_opened and sent_email.email.times_opened == 1
    assert sent_email.email.first_opened_at == sent_email.email.last_opened_at == event.occurred_at
    assert not BufferedEvent.objects.exists()


def test_an_apple_privacy_prefetch_is_a_machine_open_that_does_not_mark_it_opened(
    app, sent_email
) -> None:
    call(app, sent_email.pixel, headers=APPLE_PROXY, remote_addr="17.58.1.20")
    call(app, sent_email.pixel, headers=GMAIL_PROXY, remote_addr="66.249.84.1")

    events_ingest()

    assert sorted(TrackingEvent.objects.values_list("label", flat=True)) == [
        "apple_mpp",
        "image_proxy",
    ]
    sent_email.relation.refresh_from_db()
    assert (sent_email.relation.human_opens, sent_email.relation.machine_opens) == (0, 2)
    assert sent_email.relation.first_opened_at is None
    sent_email.email.refresh_from_db()
    assert not sent_email.email.is_opened and sent_email.email.times_opened == 0


def test_with_machine_open_filtering_off_machine_opens_count_as_opens(app, sent_email) -> None:
    setup_change(machine_open_filtering=False)
    call(app, sent_email.pixel, headers=APPLE_PROXY, remote_addr="17.58.1.20")

    events_ingest()

    sent_email.email.refresh_from_db()
    assert sent_email.email.is_opened and sent_email.email.times_opened == 1
    assert TrackingEvent.objects.get().label == "apple_mpp"  # still labelled for what it is


def test_a_human_click_counts_for_the_recipient_and_the_link(app, sent_email) -> None:
    call(app, sent_email.click, headers={"User-Agent": CHROME})

    events_ingest()

    link = TrackedLink.objects.get(url="https://example.com/pricing")
    assert (link.human_clicks, link.machine_clicks) == (1, 0)
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_clicks == 1
    assert TrackingEvent.objects.get().link == link


def test_a_click_seconds_after_delivery_is_a_scanner(app, sent_email) -> None:
    sent_email.relation.sent_at = timezone.now() - timedelta(seconds=2)
    sent_email.relation.save(update_fields=["sent_at"])

    call(app, sent_email.click, headers={"User-Agent": CHROME})
    events_ingest()

    event = TrackingEvent.objects.get()
    assert event.label == "scanner" and "after delivery" in event.reason
    sent_email.relation.refresh_from_db()
    assert (sent_email.relation.human_clicks, sent_email.relation.machine_clicks) == (0, 1)


def test_following_the_honeypot_and_clicking_several_links_at_once_is_a_scanner(
    app, sent_email
) -> None:
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    call(app, sent_email.honeypot, headers={"User-Agent": CHROME})

    events_ingest()

    reasons = dict(TrackingEvent.objects.values_list("link__is_honeypot", "reason"))
    assert set(TrackingEvent.objects.values_list("label", flat=True)) == {"scanner"}
    assert reasons[True] == "honeypot link followed"
    assert "links within one second" in reasons[False]


def test_ingesting_the_same_events_twice_counts_them_once(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    raw, _ = buffer.read_database(10)

    events_ingest()
    BufferedEvent.objects.bulk_create(
        BufferedEvent(
            **{
                f: getattr(r, f)
                for f in ("event_id", "kind", "token", "received_at", "ip", "user_agent", "method")
            }
        )
        for r in raw
    )
    events_ingest()

    assert TrackingEvent.objects.count() == 1
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == 1


def test_the_ip_is_truncated_unless_setup_allows_full_ips(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="198.51.100.77")
    events_ingest()
    setup_change(store_full_ip=True)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME}, remote_addr="2001:db8::1234:5678")
    events_ingest()

    assert list(TrackingEvent.objects.order_by("pk").values_list("ip", flat=True)) == [
        "198.51.100.0",
        "2001:db8::1234:5678",
    ]


def test_events_go_through_a_real_redis_stream_and_are_removed_after_commit(
    tracking_app, sent_email, redis_client
) -> None:
    app = tracking_app(client=redis_client)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    assert redis_client.xlen(buffer.STREAM) == 2
    assert not BufferedEvent.objects.exists()

    assert events_ingest().stored == 2

    assert redis_client.xlen(buffer.STREAM) == 0
    assert redis_client.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 0
    sent_email.relation.refresh_from_db()
    assert (sent_email.relation.human_opens, sent_email.relation.human_clicks) == (1, 1)


def test_a_worker_that_dies_before_acknowledging_loses_nothing_and_counts_nothing_twice(
    tracking_app, sent_email, redis_client, monkeypatch
) -> None:
    app = tracking_app(client=redis_client)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})

    def die(*args, **kwargs):
        raise SystemExit("worker killed after commit, before XACK")

    with monkeypatch.context() as patch:
        patch.setattr(buffer, "acknowledge_stream", die)
        with pytest.raises(SystemExit):
            events_ingest(consumer="dead-worker")
    monkeypatch.setattr(buffer, "CLAIM_IDLE_MS", 0)  # the dead worker's entries are up for grabs

    events_ingest(consumer="new-worker")

    assert TrackingEvent.objects.count() == 1
    assert redis_client.xlen(buffer.STREAM) == 0
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == 1


def test_the_timeline_fields_name_the_last_clicked_link_and_the_machine_open(
    app, sent_email
) -> None:
    call(app, sent_email.pixel, headers=APPLE_PROXY, remote_addr="17.58.1.20")
    call(app, sent_email.click, headers={"User-Agent": CHROME})

    events_ingest()

    sent_email.relation.refresh_from_db()
    assert sent_email.relation.last_clicked_link.url == "https://example.com/pricing"
    assert sent_email.relation.machine_open_label == "apple_mpp"
    sent_email.email.refresh_from_db()
    assert sent_email.email.times_clicked == 1


def _buffer(sent_email, *moments: float, event_id: str | None = None, client=None) -> None:
    """Human opens of the sent email's pixel, at the given times (seconds since the epoch)."""
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    buffer.EventWriter(client).write(
        [
            buffer.RawEvent(event_id or uuid.uuid4().hex, "open", token, at, "", CHROME, "GET")
            for at in moments
        ]
    )


def test_counters_add_up_across_batches_and_keep_the_earliest_and_latest_open(
    app, sent_email
) -> None:
    now = timezone.now().timestamp()
    _buffer(sent_email, now - 60, now - 30)
    events_ingest()
    # A late event from earlier than both: it moves the first open, not the last.
    _buffer(sent_email, now - 600)
    events_ingest()

    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == 3
    assert sent_email.relation.first_opened_at.timestamp() == pytest.approx(now - 600)
    assert sent_email.relation.last_opened_at.timestamp() == pytest.approx(now - 30)
    sent_email.email.refresh_from_db()
    assert sent_email.email.times_opened == 3
    assert sent_email.email.first_opened_at == sent_email.relation.first_opened_at
    assert sent_email.email.last_opened_at == sent_email.relation.last_opened_at


def test_the_same_event_twice_in_one_stream_batch_is_stored_and_counted_once(
    sent_email, redis_client
) -> None:
    now = timezone.now().timestamp()
    _buffer(sent_email, now, now, event_id=uuid.uuid4().hex, client=redis_client)

    assert events_ingest().stored == 1

    sent_email.relation.refresh_from_db()
    assert TrackingEvent.objects.count() == 1 and sent_email.relation.human_opens == 1


def test_switching_machine_open_filtering_recounts_what_was_counted_the_other_way(
    app, sent_email
) -> None:
    call(app, sent_email.pixel, headers=APPLE_PROXY, remote_addr="17.58.1.20")
    events_ingest()
    sent_email.email.refresh_from_db()
    assert not sent_email.email.is_opened  # filtering on: a machine open is not an open

    setup_change(machine_open_filtering=False)
    assert counters_recount_all() == 1

    sent_email.email.refresh_from_db()
    assert sent_email.email.is_opened and sent_email.email.times_opened == 1
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.first_opened_at is not None


def test_a_run_asked_to_wait_stores_an_event_that_arrives_while_it_waits_at_once(
    sent_email, redis_client, monkeypatch
) -> None:
    import threading
    import time

    from tracking import tasks

    reads: list[tuple[float, int]] = []

    def timed(**kwargs):
        result = events_ingest(**kwargs)
        reads.append((time.monotonic(), result.read))
        return result

    monkeypatch.setattr(tasks, "events_ingest", timed)
    written: list[float] = []

    def write_later() -> None:
        time.sleep(0.4)
        _buffer(sent_email, timezone.now().timestamp(), client=redis_client)
        written.append(time.monotonic())

    writer = threading.Thread(target=write_later)
    started = time.monotonic()
    writer.start()
    assert tasks.ingest_events(wait_seconds=1.5) == 1
    writer.join()

    assert time.monotonic() - started >= 1.5  # it went on waiting after the event
    (stored_at,) = [at for at, read in reads if read]
    assert stored_at - written[0] < 0.5  # read as it arrived, not at beat's next run
    assert TrackingEvent.objects.count() == 1


def test_without_redis_a_run_does_not_wait(embedded, sent_email) -> None:
    import time

    from tracking import tasks

    started = time.monotonic()
    assert tasks.ingest_events(wait_seconds=5.0) == 0
    assert time.monotonic() - started < 1.0


def test_a_batch_runs_without_the_cyclic_collector_and_leaves_it_on(
    app, sent_email, monkeypatch
) -> None:
    from tracking import ingestion

    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    seen: list[bool] = []
    label = ingestion._label

    def labelling(*args, **kwargs):
        seen.append(gc.isenabled())
        return label(*args, **kwargs)

    monkeypatch.setattr(ingestion, "_label", labelling)

    assert events_ingest().stored == 1

    assert seen == [False]
    assert gc.isenabled()


def test_a_failing_batch_leaves_the_cyclic_collector_on(app, sent_email, monkeypatch) -> None:
    from tracking import ingestion

    call(app, sent_email.pixel, headers={"User-Agent": CHROME})

    def broken(*args, **kwargs):
        raise RuntimeError("labelling failed")

    monkeypatch.setattr(ingestion, "_label", broken)

    with pytest.raises(RuntimeError):
        events_ingest()

    assert gc.isenabled()


def test_user_agents_with_the_characters_copy_escapes_are_stored_as_they_came(
    app, sent_email
) -> None:
    """PostgreSQL's batch goes in through COPY's text format, which a tab, a line end, a
    carriage return or a backslash in a value would break if not escaped."""
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    agents = [
        f"{CHROME}\tX-Tab",
        f"{CHROME}\nX-Line",
        f"{CHROME}\r\nX-CRLF",
        f"{CHROME} C:\\Mail\\\\N \\N",
        "\\N",
        "Thunderbird/115.0 (Zoë; 日本語) ☃",
    ]
    buffer.EventWriter(None).write(
        [
            buffer.RawEvent(uuid.uuid4().hex, "open", token, 1796297737.0 + n, "", agent, "GET")
            for n, agent in enumerate(agents)
        ]
    )

    assert events_ingest().stored == len(agents)

    stored = list(
        TrackingEvent.objects.order_by("occurred_at").values_list("user_agent", flat=True)
    )
    assert stored == agents


def test_a_nul_in_a_user_agent_is_dropped_not_a_batch_that_never_stores(
    sent_email, redis_client
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite's text holds a NUL; PostgreSQL's cannot")
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    buffer.EventWriter(redis_client).write(
        [buffer.RawEvent(uuid.uuid4().hex, "open", token, 1796297737.0, "", "Mo\x00zilla", "GET")]
    )

    assert events_ingest().stored == 1
    assert TrackingEvent.objects.get().user_agent == "Mozilla"


def test_a_batch_says_where_its_time_went_phase_by_phase(
    sent_email, redis_client, tracking_app, monkeypatch, caplog
) -> None:
    app = tracking_app(client=redis_client)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    # Three steps made slow on purpose: each phase must hold its step's time and no other's.
    slow = 0.2
    for name in ("_insert", "_count", "rollups_add_batch"):
        monkeypatch.setattr(ingestion, name, _slowed(getattr(ingestion, name), slow))

    with caplog.at_level(logging.DEBUG, logger="tracking.ingestion"):
        started = time.perf_counter()
        result = events_ingest()
        wall = time.perf_counter() - started

    assert result.stored == 2
    assert tuple(result.seconds) == PHASES
    slowed = {"store", "count", "rollups"}
    assert all(result.seconds[phase] >= slow for phase in slowed), result.seconds
    assert all(result.seconds[p] < slow for p in PHASES if p not in slowed), result.seconds
    assert all(result.seconds[phase] > 0 for phase in ("read", "label", "lock", "commit"))
    assert sum(result.seconds.values()) <= wall
    (line,) = [r.getMessage() for r in caplog.records if r.name == "tracking.ingestion"]
    assert line.startswith("Ingested 2 events (2 new) in ")
    assert all(f"{phase} " in line for phase in PHASES)


def _slowed(function, seconds: float):
    def slowed(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slowed


def test_a_call_that_reads_nothing_logs_nothing(app, db, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="tracking.ingestion"):
        assert events_ingest().read == 0
    assert not [r for r in caplog.records if r.name == "tracking.ingestion"]
