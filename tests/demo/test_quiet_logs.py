"""`make run`'s logs stay quiet: beat's polling tasks are logged only when a run did something,
and the embedded broker's URL names a host, so kombu has nothing to warn about."""

import logging
from types import SimpleNamespace
from uuid import uuid4

import pytest
from celery.app.trace import LOG_RECEIVED, build_tracer
from kombu import Connection

import tracking.tasks
from config.celery import app as celery_app
from tests.demo.conftest import fresh_setting


def _run_as_the_worker(task_name: str) -> None:
    """Run a task through Celery's own tracer, which logs its outcome as a worker's does."""
    task = celery_app.tasks[task_name]
    tracer = build_tracer(task.name, task, app=celery_app, eager=False)
    tracer(str(uuid4()), (), {}, {"delivery_info": {}})


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """What each events_ingest() call reads; the task drains until a call reads nothing."""
    queue: list[int] = []
    monkeypatch.setattr(
        tracking.tasks,
        "events_ingest",
        lambda **_: SimpleNamespace(read=queue.pop(0) if queue else 0),
    )
    return queue


def test_an_ingestion_run_is_logged_only_when_it_read_events(
    reads: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="celery")

    _run_as_the_worker("tracking.tasks.ingest_events")
    assert caplog.messages == []

    reads.append(3)
    _run_as_the_worker("tracking.tasks.ingest_events")
    (line,) = caplog.messages
    assert "tracking.tasks.ingest_events" in line and line.endswith(": 3")


def test_beat_and_the_worker_say_nothing_about_sending_or_receiving_a_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="celery")
    received = {"id": "1", "name": "tracking.tasks.ingest_events", "args": "()", "kwargs": "{}"}

    # As celery.beat and celery.worker.strategy write them.
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "ingest", "tracking.tasks.ingest_events"
    )
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, received)
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "influence", "campaigns.tasks.recompute_influence"
    )

    assert caplog.messages == [
        "Scheduler: Sending due task influence (campaigns.tasks.recompute_influence)"
    ]


def test_the_embedded_broker_connects_without_a_hostname_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kombu")
    embedded = fresh_setting("CELERY_BROKER_URL")
    assert embedded.startswith("filesystem://")

    with Connection(embedded) as connection:
        connection.info()

    assert "No hostname was supplied" not in caplog.text
