"""What a record's Activity Timeline shows of automation (registered as crm.hooks readers):
its enrolments' history, and the sequence step or rule behind each automated email."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import F, Q

from automation.models import EnrolmentEvent, Firing, StepRun
from crm.models import Contact, Lead
from crm.timeline import Cursor, Entry

Event = EnrolmentEvent
# The history lines the timeline shows; the emails and tasks a step made show as themselves.
SHOWN = (
    Event.Kind.ENROLLED,
    Event.Kind.DEFERRED,
    Event.Kind.PAUSED,
    Event.Kind.RESUMED,
    Event.Kind.STOPPED,
    Event.Kind.FINISHED,
)


def enrolment_entries(
    *, record: Any, window: Q, position: Cursor | None, limit: int
) -> list[Entry]:
    """A Contact's or Lead's enrolment history, newest first, as timeline entries: one query."""
    if isinstance(record, Contact):
        person = Q(enrolment__contact=record)
    elif isinstance(record, Lead):
        person = Q(enrolment__lead=record)
    else:
        return []
    events = (
        Event.objects.filter(person, kind__in=SHOWN)
        .annotate(when=F("at"))
        .filter(window)
        .select_related("enrolment__sequence", "step__template")
        .order_by("-when", "-pk")
    )
    if position:
        events = events.filter(position.before("when", "sequence"))
    return [Entry("sequence", event.at, event.pk, event) for event in events[: limit + 1]]


def email_origins(*, email_ids: Collection[int]) -> dict[int, str]:
    """Each automated email's origin, as its timeline badge says it: two queries."""
    origins = {
        email_id: f"Sequence “{name}”, step {position}"
        for email_id, name, position in StepRun.objects.filter(email_id__in=email_ids).values_list(
            "email_id", "enrolment__sequence__name", "step__position"
        )
    }
    for email_id, name in Firing.objects.filter(email_id__in=email_ids).values_list(
        "email_id", "rule__name"
    ):
        origins[email_id] = f"Rule “{name}”"
    return origins
