"""Enrolling people in a sequence, and an owner stopping, pausing or resuming an enrolment."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.eligibility import Person, people_refusals, person_key
from automation.models import Enrolment, EnrolmentEvent, Rule, Sequence, Step
from automation.schedule import business_days_after, next_weekday_at
from crm.models import Contact, Lead, User

Event = EnrolmentEvent


class EnrolRefused(Exception):
    """The sequence cannot take anyone (archived, no steps); the message says why."""


@dataclass
class EnrolPlan:
    """Who a confirmation would enrol, and who is skipped and why."""

    eligible: list[Person] = field(default_factory=list)
    skipped: list[tuple[Person, str]] = field(default_factory=list)


def owner_zone(owner: User) -> ZoneInfo:
    return ZoneInfo(owner.time_zone or settings.TIME_ZONE)


def wait_end(step: Step, start: datetime, zone: ZoneInfo) -> datetime:
    if step.wait_kind == Step.WaitKind.WEEKDAY_TIME and step.wait_time is not None:
        return next_weekday_at(start, step.wait_weekday or 0, step.wait_time, zone)
    return business_days_after(start, step.wait_days or 0, zone)


def arrival_due(step: Step, now: datetime, owner: User) -> datetime:
    """When an enrolment arriving at this step is next due: a wait's end, or now."""
    return wait_end(step, now, owner_zone(owner)) if step.kind == Step.Kind.WAIT else now


def enrolment_plan(*, sequence: Sequence, people: Seq[Person]) -> EnrolPlan:
    """Split people into those the sequence may take and those skipped with the reason:
    the list email policy (eligibility) and anyone already going through it."""
    refusals = people_refusals(people)
    running = Enrolment.objects.running().filter(sequence=sequence)
    contact_ids = [p.pk for p in people if isinstance(p, Contact)]
    lead_ids = [p.pk for p in people if isinstance(p, Lead)]
    busy = {
        ("contact", pk)
        for pk in running.filter(contact_id__in=contact_ids).values_list("contact_id", flat=True)
    } | {
        ("lead", pk)
        for pk in running.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True)
    }
    plan = EnrolPlan()
    for person in people:
        key = person_key(person)
        if key in refusals:
            plan.skipped.append((person, refusals[key]))
        elif key in busy:
            plan.skipped.append((person, "Already in this sequence"))
        else:
            plan.eligible.append(person)
    return plan


def people_enrol(
    *,
    sequence: Sequence,
    people: Seq[Person],
    by: User | None,
    rule: Rule | None = None,
    now: datetime | None = None,
) -> tuple[list[Enrolment], EnrolPlan]:
    """Enrol those the plan allows (the record's owner runs the steps); returns the enrolments
    made and the plan with the skipped ones."""
    now = now or timezone.now()
    if not sequence.is_active:
        raise EnrolRefused("This sequence is archived: activate it before enrolling anyone.")
    first = sequence.steps.order_by("position").first()
    if first is None:
        raise EnrolRefused("This sequence has no steps yet: add one before enrolling anyone.")
    with transaction.atomic():
        # One enrolment at a time per sequence: two pages enrolling the same person both see
        # them free, then the running-once constraint would fail the slower one's whole batch.
        Sequence.objects.select_for_update().filter(pk=sequence.pk).first()
        plan = enrolment_plan(sequence=sequence, people=people)
        owners = {
            user.pk: user
            for user in User.objects.filter(pk__in={p.owner_id for p in plan.eligible})
        }
        enrolments = Enrolment.objects.bulk_create(
            Enrolment(
                sequence=sequence,
                contact=person if isinstance(person, Contact) else None,
                lead=person if isinstance(person, Lead) else None,
                owner_id=person.owner_id,
                enrolled_by=by,
                rule=rule,
                current_step=first,
                next_due_at=arrival_due(first, now, owners[person.owner_id]),
                created_at=now,
            )
            for person in plan.eligible
        )
        how = f"by rule {rule.name}" if rule else (f"by {by.display_name}" if by else "")
        Event.objects.bulk_create(
            Event(enrolment=e, kind=Event.Kind.ENROLLED, step=first, detail=how[:255], at=now)
            for e in enrolments
        )
    return enrolments, plan


def enrolment_stop(*, enrolment: Enrolment, by: User, now: datetime | None = None) -> bool:
    """The owner (or a manager) stops it; False when it was no longer running."""
    return _change(
        enrolment,
        running=True,
        status=Enrolment.Status.STOPPED,
        kind=Event.Kind.STOPPED,
        detail=f"Stopped by {by.display_name}",
        now=now,
    )


def enrolment_pause(*, enrolment: Enrolment, by: User, now: datetime | None = None) -> bool:
    return _change(
        enrolment,
        running=False,
        status=Enrolment.Status.PAUSED,
        kind=Event.Kind.PAUSED,
        detail=f"Paused by {by.display_name}",
        now=now,
        only_from=Enrolment.Status.ACTIVE,
    )


def enrolment_resume(*, enrolment: Enrolment, by: User, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    with transaction.atomic():
        changed = Enrolment.objects.filter(pk=enrolment.pk, status=Enrolment.Status.PAUSED).update(
            status=Enrolment.Status.ACTIVE, stop_reason="", paused_until=None
        )
        if changed:
            Enrolment.objects.filter(pk=enrolment.pk, next_due_at__lt=now).update(next_due_at=now)
            Event.objects.create(
                enrolment=enrolment,
                kind=Event.Kind.RESUMED,
                detail=f"Resumed by {by.display_name}",
                at=now,
            )
    return bool(changed)


def _change(
    enrolment: Enrolment,
    *,
    running: bool,
    status: str,
    kind: str,
    detail: str,
    now: datetime | None,
    only_from: str | None = None,
) -> bool:
    now = now or timezone.now()
    current = Enrolment.objects.filter(pk=enrolment.pk)
    current = current.filter(status=only_from) if only_from else current.running()
    with transaction.atomic():
        changed = current.update(status=status, stop_reason=detail[:255], paused_until=None)
        if changed:
            Event.objects.create(enrolment=enrolment, kind=kind, detail=detail[:255], at=now)
    return bool(changed)


def enrolments_stop(*, ids: Seq[int], reason: str, now: datetime | None = None) -> int:
    """Stop these enrolments (those still running) with the reason: one UPDATE, one INSERT."""
    now = now or timezone.now()
    with transaction.atomic():
        stopped = list(
            Enrolment.objects.running()
            .filter(pk__in=ids)
            .select_for_update(skip_locked=False)
            .values_list("pk", "current_step_id")
        )
        if not stopped:
            return 0
        Enrolment.objects.filter(pk__in=[pk for pk, _ in stopped]).update(
            status=Enrolment.Status.STOPPED, stop_reason=reason[:255], paused_until=None
        )
        Event.objects.bulk_create(
            Event(
                enrolment_id=pk, kind=Event.Kind.STOPPED, step_id=step, detail=reason[:255], at=now
            )
            for pk, step in stopped
        )
    return len(stopped)


def lead_enrolments_stop(*, lead_id: int, contact_id: int) -> None:
    """crm.hooks.lead_converted: a converted lead's enrolments stop (the reason is shown)."""
    ids = list(Enrolment.objects.running().filter(lead_id=lead_id).values_list("pk", flat=True))
    if ids:
        enrolments_stop(ids=ids, reason="Lead converted")
