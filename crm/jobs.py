"""Queueing background work from a service: a Celery task by its name, after the commit.

A task module imports the services it calls; a service importing its task module would close
an import cycle. So a service names the task instead (the names are constants here for crm's
tasks; other apps name theirs where they queue them). Every app's AppConfig.ready() imports its
tasks module, so in every process a name resolves to the task itself and eager mode (tests)
runs it inline; a worker that has not loaded it still gets the message by name. A test checks
that each name given to enqueue() is a registered task.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction

DELIVER_EMAIL = "crm.tasks.deliver_email"
RECOMPUTE_ACTIVITY_METRICS = "crm.tasks.recompute_activity_metrics"
REFRESH_ACTIVITY = "crm.tasks.refresh_activity"


def enqueue(task_name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send_now(task_name, args, kwargs, countdown=countdown))


def send_now(
    task_name: str,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    countdown: float | None = None,
) -> None:
    """Queue the task now (enqueue() calls it after the commit)."""
    signature = current_app.signature(task_name, args=args, kwargs=kwargs or {})
    if countdown is None:
        signature.apply_async()
    else:
        signature.apply_async(countdown=countdown)
