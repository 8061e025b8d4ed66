"""Celery queues by kind of work: every task of Openrate's lands in a queue some worker reads,
and the kinds that must not wait behind each other (ingestion, inbound mail, a rep's single
email, housekeeping) are never in the list email's queue."""

import re
from pathlib import Path

from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
OUR_APPS = ("crm", "tracking", "inbound", "capture", "campaigns", "reports", "automation")
OUR_APPS += ("webhooks", "imports", "dataprotection")


def _queue_of(task_name: str) -> str:
    options = app.amqp.router.route({}, task_name, (), {})
    return options["queue"].name


def _our_tasks() -> list[str]:
    return sorted(name for name in app.tasks if name.split(".")[0] in OUR_APPS)


def test_every_task_goes_to_a_queue_the_workers_read() -> None:
    tasks = _our_tasks()
    assert {name.split(".")[0] for name in tasks} == set(OUR_APPS)  # every app's are registered
    assert {
        name: _queue_of(name)
        for name in tasks
        if _queue_of(name) not in settings.CELERY_QUEUE_NAMES
    } == {}
    # Each queue holds some work: a queue nobody sends to is a worker started for nothing.
    assert {_queue_of(name) for name in tasks} == set(settings.CELERY_QUEUE_NAMES)


def test_list_email_has_a_queue_of_its_own() -> None:
    assert _queue_of("campaigns.tasks.send_list_email_batch") == "list_email"
    assert _queue_of("tracking.tasks.ingest_events") == "ingestion"
    assert _queue_of("inbound.tasks.poll_inbound_mailbox") == "inbound"
    assert _queue_of("capture.tasks.sync_mailbox") == "inbound"
    assert _queue_of("crm.tasks.deliver_email") == "celery"
    assert _queue_of("dataprotection.tasks.retention_enforce") == "housekeeping"
    in_list_email = [name for name in _our_tasks() if _queue_of(name) == "list_email"]
    assert sorted(in_list_email) == [
        "campaigns.tasks.resume_list_emails",
        "campaigns.tasks.send_list_email_batch",
    ]


def test_beats_tasks_are_routed_like_any_other() -> None:
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert _queue_of(str(entry["task"])) in settings.CELERY_QUEUE_NAMES


def test_make_runs_worker_and_the_readme_name_every_queue() -> None:
    run_all = (ROOT / "bin" / "run-all").read_text()
    (queues,) = re.findall(r"--queues=([\w,]+)", run_all)
    assert tuple(queues.split(",")) == settings.CELERY_QUEUE_NAMES
    readme = (ROOT / "README.md").read_text()
    for queue in settings.CELERY_QUEUE_NAMES:
        assert f"--queues={queue}" in readme or f",{queue}" in readme, queue
