"""The filter that keeps an idle app's Celery logs quiet must never stop what logs through it."""

import logging
import traceback

import pytest

from config.celery import BEAT_SENDING, IdlePollingFilter

POLLING = "tracking.tasks.ingest_events"


def _beat_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.getLogger("celery.beat").makeRecord(
        "celery.beat", logging.INFO, __file__, 1, msg, args, None
    )


def test_beats_routine_line_about_a_polling_task_is_dropped_and_others_kept() -> None:
    quiet = IdlePollingFilter()

    assert not quiet.filter(_beat_record(BEAT_SENDING, "ingest-events", POLLING))
    assert quiet.filter(_beat_record(BEAT_SENDING, "nightly", "crm.tasks.recompute_metrics"))


def test_beats_failed_send_with_its_stack_passes_instead_of_raising() -> None:
    """Beat logs a send that failed (Redis still loading its data after a restart) with the
    stack as a list: testing that against a set raised inside beat's loop and stopped it."""
    record = _beat_record(
        "Message Error: %s\n%s", Exception("loading the dataset"), traceback.format_stack()
    )

    assert IdlePollingFilter().filter(record)


def test_beat_keeps_running_through_a_failed_send_logged_through_the_filter(caplog) -> None:
    logger = logging.getLogger("celery.beat")
    assert any(isinstance(f, IdlePollingFilter) for f in logger.filters)  # installed by the app

    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        logger.error("Message Error: %s\n%s", Exception("down"), traceback.format_stack())

    assert "Message Error: down" in caplog.text


@pytest.mark.parametrize("name", [["a", "list"], None, 7])
def test_a_worker_line_whose_name_is_not_a_string_passes(name) -> None:
    record = logging.getLogger("celery.app.trace").makeRecord(
        "celery.app.trace", logging.INFO, __file__, 1, "%(name)s", ({"name": name},), None
    )

    assert IdlePollingFilter().filter(record)
