"""The Celery app, configured from Django settings (the CELERY_ namespace)."""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from celery import Celery
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openrate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The filesystem broker (embedded mode) needs its folders before a worker or beat connects.
for _key in ("data_folder_in", "data_folder_out", "control_folder"):
    _folder = app.conf.broker_transport_options.get(_key)
    if _folder:
        Path(_folder).mkdir(parents=True, exist_ok=True)

# Tasks beat runs every few seconds to poll for work. Celery logs three lines per run (beat's
# "Sending due task", the worker's "received" and "succeeded"): for these, only the "succeeded"
# line of a run that did something (a result other than 0 or None) is kept, so an idle app
# has quiet logs. Failures and retries are logged as always.
POLLING_TASKS = frozenset(
    {
        "tracking.tasks.ingest_events",
        "inbound.tasks.poll_inbound_mailbox",
        "capture.tasks.sync_mailboxes",
        "capture.tasks.sync_mailbox",
        "automation.tasks.advance_enrolments",
        "automation.tasks.fire_rules",
        "automation.tasks.sweep_enrolments",
        "campaigns.tasks.resume_list_emails",
        "crm.tasks.create_engagement_alerts",
        "crm.tasks.create_follow_ups",
        "crm.tasks.send_scheduled_emails",
        "webhooks.tasks.collect_events",
        "webhooks.tasks.dispatch_deliveries",
    }
)
IDLE_RESULTS = frozenset({"0", "None"})
BEAT_SENDING = "Scheduler: Sending due task %s (%s)"


class IdlePollingFilter(logging.Filter):
    """Drops Celery's routine lines about POLLING_TASKS, and their results when idle.

    A filter runs inside the logging call, so it must never raise: beat logs a failed send
    ("Message Error: %s\n%s", with the stack as a list) from its scheduling loop, and a filter
    that raised there (testing the list against a set) stopped beat for good the first time
    Redis answered "loading the dataset" after a restart. Only lines of the known shapes are
    looked at; anything else passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "celery.beat":
            return not (
                record.msg == BEAT_SENDING
                and isinstance(args, tuple)
                and len(args) == 2
                and isinstance(args[1], str)
                and args[1] in POLLING_TASKS
            )
        if not isinstance(args, Mapping):
            return True
        name = args.get("name")
        if not isinstance(name, str) or name not in POLLING_TASKS:
            return True
        if record.msg == LOG_RECEIVED:
            return False
        if record.msg == LOG_SUCCESS:
            return str(args.get("return_value")) not in IDLE_RESULTS
        return True


_idle_polling = IdlePollingFilter()
for _logger in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_logger).addFilter(_idle_polling)
