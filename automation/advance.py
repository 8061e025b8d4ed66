"""Advancing enrolments: beat takes the due ones a batch at a time and runs their next step.

Exactly once: a batch is claimed with `SELECT ... FOR UPDATE SKIP LOCKED` (two beat runs at
once take different enrolments), and in that one transaction the step's emails are recorded
(crm.sending, source Automated email), its tasks created, a StepRun per (enrolment, step)
inserted (unique: a second run of a step fails rather than sends) and the enrolments moved on.
A worker killed before the commit leaves nothing (the next run does the step); killed after it,
the recorded copies are still Pending and `undelivered_deliver` hands them over (delivery claims
each copy with a conditional UPDATE, so none goes twice).

Stops are detected set-based, not by hooks from inbound: every batch checks its own
enrolments right before it sends (replies, hard bounces, complaints, Email Opt Out, Don't
Process / Don't Market, suppression, conversion), and a sweep (`enrolments_stops_detect`) does
the same for every running enrolment so the reason shows soon after the event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from automation.eligibility import people_refusals, person_key
from automation.enrolment import arrival_due, enrolments_stop, owner_zone
from automation.models import Enrolment, EnrolmentEvent, Step, StepRun
from crm import jobs
from crm.delivery import DeliveryDeferred, emails_deliver
from crm.models import (
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    Lead,
    Task,
)
from crm.sending import SendRefused, emails_send_each

Event = EnrolmentEvent
Relation = EmailMessageRelation

# Enrolments per transaction: large enough that a batch's fixed cost is small, small enough
# that row locks are held briefly and a killed worker redoes little.
BATCH_SIZE = 200
# An auto-reply pauses an enrolment (when its sequence says so) for this long after the last one.
AUTO_REPLY_PAUSE = timedelta(days=7)
# Copies still Pending this long after their step committed lost their worker: deliver them.
RECOVER_AFTER = timedelta(minutes=5)
DEFER_ON_REFUSAL = timedelta(hours=1)

_DUE_SQL = """
    SELECT id FROM automation_enrolment
    WHERE status = 'active' AND next_due_at <= %s
    ORDER BY next_due_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""


@dataclass
class _Outcome:
    """What a batch does to one enrolment, written together at the end."""

    status: str = Enrolment.Status.ACTIVE
    step_id: int | None = None
    due: datetime | None = None
    reason: str = ""
    paused_until: datetime | None = None


@dataclass
class BatchResult:
    claimed: int = 0
    emails: list[int] = field(default_factory=list)
    tasks: int = 0


def due_ids(*, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` due active enrolments (call inside a transaction): the partial index
    enrolment_due_active serves it; rows another run holds are skipped, not waited for."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_DUE_SQL, [now, limit])
            return [row[0] for row in cursor.fetchall()]
    return list(
        Enrolment.objects.filter(status=Enrolment.Status.ACTIVE, next_due_at__lte=now)
        .order_by("next_due_at")
        .values_list("pk", flat=True)[:limit]
    )


def enrolments_advance(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Run every due step, a batch per transaction, delivering each batch's emails after its
    commit; returns how many steps were run or waits ended."""
    now = now or timezone.now()
    enrolments_resume(now=now)
    total = 0
    while True:
        result = enrolments_batch_advance(now=now, batch_size=batch_size)
        emails_hand_over(result.emails)
        total += result.claimed
        # An enrolment that ran a step and reached another one due now is taken by a later
        # batch of this run; a batch that finds nothing due ends it.
        if not result.claimed:
            return total


def emails_hand_over(email_ids: list[int]) -> None:
    if not email_ids:
        return
    try:
        emails_deliver(email_ids=email_ids, claim_together=True)
    except DeliveryDeferred:
        # The mail server is away: the pipeline's own task retries each with its backoff.
        for email_id in email_ids:
            jobs.enqueue(jobs.DELIVER_EMAIL, email_id, countdown=30)


def enrolments_batch_advance(*, now: datetime, batch_size: int = BATCH_SIZE) -> BatchResult:
    """Claim one batch of due enrolments and run each one's next step, in one transaction."""
    with transaction.atomic():
        ids = due_ids(now=now, limit=batch_size)
        if not ids:
            return BatchResult()
        enrolments = list(
            Enrolment.objects.filter(pk__in=ids).select_related(
                "sequence",
                "owner",
                "current_step__template",
                "contact__individual",
                "contact__account",
                "lead__individual",
            )
        )
        result = BatchResult(claimed=len(enrolments))
        outcomes: dict[int, _Outcome] = {}
        events: list[Event] = []
        _stop_refused(enrolments, outcomes, events, now)
        _pause_auto_replies(enrolments, outcomes, events, now)
        steps = _steps_of({e.sequence_id for e in enrolments})
        to_run: dict[int, Step] = {}
        for enrolment in enrolments:
            if enrolment.pk in outcomes:
                continue
            step = enrolment.current_step
            if step is None or step.kind == Step.Kind.WAIT:
                # The wait is over: on to the step after it.
                step = _after(steps, step, enrolment.sequence_id) if step else None
            step = _through_waits(enrolment, step, steps, outcomes, events, now)
            if step is not None:
                to_run[enrolment.pk] = step
        by_pk = {e.pk: e for e in enrolments}
        runs: list[StepRun] = []
        result.emails = _run_emails(by_pk, to_run, steps, outcomes, events, runs, now)
        result.tasks = _run_tasks(by_pk, to_run, steps, outcomes, events, runs, now)
        # The backstop of exactly once: a second run of a step breaks this unique insert.
        StepRun.objects.bulk_create(runs)
        _write(outcomes, now)
        Event.objects.bulk_create(events, batch_size=1000)
    return result


def _steps_of(sequence_ids: set[int]) -> dict[int, list[Step]]:
    steps: dict[int, list[Step]] = defaultdict(list)
    for step in (
        Step.objects.filter(sequence_id__in=sequence_ids)
        .select_related("template")
        .order_by("sequence_id", "position")
    ):
        steps[step.sequence_id].append(step)
    return steps


def _after(steps: dict[int, list[Step]], step: Step, sequence_id: int) -> Step | None:
    return next((s for s in steps[sequence_id] if s.position > step.position), None)


def _through_waits(
    enrolment: Enrolment,
    step: Step | None,
    steps: dict[int, list[Step]],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    now: datetime,
) -> Step | None:
    """The step to run now, or None with the outcome set: finished, or waiting at a wait."""
    if step is None:
        outcomes[enrolment.pk] = _Outcome(status=Enrolment.Status.FINISHED)
        events.append(Event(enrolment=enrolment, kind=Event.Kind.FINISHED, at=now))
        return None
    if step.kind == Step.Kind.WAIT:
        due = arrival_due(step, now, enrolment.owner)
        outcomes[enrolment.pk] = _Outcome(step_id=step.pk, due=due)
        events.append(_waiting(enrolment, step, due, now))
        return None
    return step


def _waiting(enrolment: Enrolment, step: Step, due: datetime, now: datetime) -> Event:
    local = due.astimezone(owner_zone(enrolment.owner))
    return Event(
        enrolment=enrolment,
        kind=Event.Kind.WAITING,
        step=step,
        detail=f"{step.describe()}: until {local:%a %d %b %Y %H:%M} ({local.tzname()})",
        at=now,
    )


def _move_on(
    enrolment: Enrolment,
    step: Step,
    steps: dict[int, list[Step]],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    now: datetime,
) -> None:
    """After running `step`: to the next step (a wait starts now), or finished."""
    following = _after(steps, step, enrolment.sequence_id)
    if following is None:
        outcomes[enrolment.pk] = _Outcome(status=Enrolment.Status.FINISHED, step_id=step.pk)
        events.append(Event(enrolment=enrolment, kind=Event.Kind.FINISHED, at=now))
        return
    due = arrival_due(following, now, enrolment.owner)
    outcomes[enrolment.pk] = _Outcome(step_id=following.pk, due=due)
    if following.kind == Step.Kind.WAIT:
        events.append(_waiting(enrolment, following, due, now))


def _stop_refused(
    enrolments: list[Enrolment],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    now: datetime,
) -> None:
    """Stop those whose person may no longer be written to, or who answered: checked right
    before their step runs (the sweep finds them sooner)."""
    reasons = stop_reasons(ids=[e.pk for e in enrolments])
    refusals = people_refusals([e.person for e in enrolments])  # type: ignore[misc]
    for enrolment in enrolments:
        reason = reasons.get(enrolment.pk) or refusals.get(person_key(enrolment.person))  # type: ignore[arg-type]
        if reason:
            outcomes[enrolment.pk] = _Outcome(status=Enrolment.Status.STOPPED, reason=reason)
            events.append(
                Event(
                    enrolment=enrolment,
                    kind=Event.Kind.STOPPED,
                    step=enrolment.current_step,
                    detail=reason[:255],
                    at=now,
                )
            )


def _pause_auto_replies(
    enrolments: list[Enrolment],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    now: datetime,
) -> None:
    """Pause (where the sequence says so) those whose mailbox answered automatically lately."""
    pausing = [e.pk for e in enrolments if e.sequence.pause_on_auto_reply and e.pk not in outcomes]
    if not pausing:
        return
    latest = dict(
        EmailMessage.objects.filter(
            incoming=True,
            is_auto_reply=True,
            created_at__gt=now - AUTO_REPLY_PAUSE,
            reply_to_message__in=StepRun.objects.filter(enrolment_id__in=pausing).values("email"),
        )
        .values_list("reply_to_message_id")
        .annotate(last=Max("created_at"))
        .values_list("reply_to_message_id", "last")
    )
    if not latest:
        return
    by_email = dict(
        StepRun.objects.filter(email_id__in=latest).values_list("email_id", "enrolment_id")
    )
    last_of: dict[int, datetime] = {}
    for email_id, when in latest.items():
        enrolment_id = by_email[email_id]
        last_of[enrolment_id] = max(when, last_of.get(enrolment_id, when))
    for enrolment in enrolments:
        if enrolment.pk not in last_of:
            continue
        until = last_of[enrolment.pk] + AUTO_REPLY_PAUSE
        reason = f"Auto-replies (out of office): paused until {until:%d %b %Y}"
        outcomes[enrolment.pk] = _Outcome(
            status=Enrolment.Status.PAUSED,
            step_id=enrolment.current_step_id,
            due=enrolment.next_due_at,
            reason=reason,
            paused_until=until,
        )
        events.append(
            Event(
                enrolment=enrolment,
                kind=Event.Kind.PAUSED,
                step=enrolment.current_step,
                detail=reason,
                at=now,
            )
        )


def _run_emails(
    by_pk: dict[int, Enrolment],
    to_run: dict[int, Step],
    steps: dict[int, list[Step]],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    runs: list[StepRun],
    now: datetime,
) -> list[int]:
    """Each email step's enrolments, a send per (step, owner): emails_send_each records one
    email per person (policy, merge fields, tracked links) and checks the daily limit once."""
    groups: dict[tuple[int, int], list[Enrolment]] = defaultdict(list)
    for pk, step in to_run.items():
        if step.kind == Step.Kind.EMAIL:
            groups[(step.pk, by_pk[pk].owner_id)].append(by_pk[pk])
    handed: list[int] = []
    threaded: list[tuple[int, int]] = []  # (new email, the email it answers)
    for group in groups.values():
        step = to_run[group[0].pk]
        template = step.template
        if template is None:
            _defer(
                group,
                step,
                "The step has no template",
                now + DEFER_ON_REFUSAL,
                outcomes,
                events,
                now,
            )
            continue
        try:
            emails = emails_send_each(
                sender=group[0].owner,
                people=[e.person for e in group],  # type: ignore[misc]
                subject=template.subject,
                html_body=template.html_body,
                source=EmailMessage.Source.AUTOMATION,
                template=template,
            )
        except SendRefused as error:
            # Setup's daily limit (or email switched off): the step waits, recorded.
            _defer(group, step, str(error), _next_day(now), outcomes, events, now)
            continue
        previous = _previous_emails(group, step) if step.thread == Step.Thread.REPLY else {}
        for enrolment, email in zip(group, emails, strict=True):
            runs.append(StepRun(enrolment=enrolment, step=step, email=email, ran_at=now))
            events.append(
                Event(
                    enrolment=enrolment,
                    kind=Event.Kind.EMAIL_SENT,
                    step=step,
                    detail=f"{template.name} (#{email.pk})"[:255],
                    at=now,
                )
            )
            if enrolment.pk in previous:
                threaded.append((email.pk, previous[enrolment.pk]))
            _move_on(enrolment, step, steps, outcomes, events, now)
            handed.append(email.pk)
    _thread(threaded)
    return handed


def _previous_emails(group: list[Enrolment], step: Step) -> dict[int, int]:
    """Each enrolment's latest email from an earlier step: the one a reply step answers."""
    previous: dict[int, int] = {}
    for enrolment_id, email_id in (
        StepRun.objects.filter(
            enrolment_id__in=[e.pk for e in group],
            email__isnull=False,
            step__position__lt=step.position,
        )
        .order_by("enrolment_id", "step__position")
        .values_list("enrolment_id", "email_id")
    ):
        previous[enrolment_id] = email_id
    return previous


def _thread(pairs: list[tuple[int, int]]) -> None:
    """Put each new email in its previous email's thread as a reply to it ("Re: " subject):
    delivery then gives each copy In-Reply-To / References. One UPDATE per 500."""
    for chunk in (pairs[i : i + 500] for i in range(0, len(pairs), 500)):
        values = " UNION ALL ".join(["SELECT %s AS id, %s AS prev_id"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE crm_emailmessage SET
                    reply_to_message_id = prev.id,
                    thread_identifier = COALESCE(
                        NULLIF(prev.thread_identifier, ''), prev.message_identifier
                    ),
                    subject = CASE WHEN prev.subject LIKE 'Re: %%' THEN prev.subject
                                   ELSE 'Re: ' || prev.subject END
                FROM ({values}) AS v JOIN crm_emailmessage prev ON prev.id = v.prev_id
                WHERE crm_emailmessage.id = v.id
                """,  # noqa: S608 -- only placeholders are interpolated
                [value for pair in chunk for value in pair],
            )


def _run_tasks(
    by_pk: dict[int, Enrolment],
    to_run: dict[int, Step],
    steps: dict[int, list[Step]],
    outcomes: dict[int, _Outcome],
    events: list[Event],
    runs: list[StepRun],
    now: datetime,
) -> int:
    """A task for the owner per enrolment at a task step: one INSERT."""
    pending = [(by_pk[pk], step) for pk, step in to_run.items() if step.kind == Step.Kind.TASK]
    tasks = Task.objects.bulk_create(
        Task(
            subject=f"{Step.TaskKind(step.task_kind or 'custom').label}: "
            f"{step.task_subject or enrolment.sequence.name}"[:255],
            description=f"Sequence {enrolment.sequence.name}, step {step.position}.",
            owner=enrolment.owner,
            who_contact=enrolment.contact,
            who_lead=enrolment.lead,
            due_date=now.astimezone(owner_zone(enrolment.owner)).date(),
            subtype=Task.Subtype.CALL
            if step.task_kind == Step.TaskKind.CALL
            else Task.Subtype.TASK,
        )
        for enrolment, step in pending
    )
    for (enrolment, step), task in zip(pending, tasks, strict=True):
        runs.append(StepRun(enrolment=enrolment, step=step, task=task, ran_at=now))
        events.append(
            Event(
                enrolment=enrolment,
                kind=Event.Kind.TASK_CREATED,
                step=step,
                detail=task.subject,
                at=now,
            )
        )
        _move_on(enrolment, step, steps, outcomes, events, now)
    return len(tasks)


def _defer(
    group: list[Enrolment],
    step: Step,
    reason: str,
    until: datetime,
    outcomes: dict[int, _Outcome],
    events: list[Event],
    now: datetime,
) -> None:
    for enrolment in group:
        outcomes[enrolment.pk] = _Outcome(step_id=step.pk, due=until)
        events.append(
            Event(
                enrolment=enrolment,
                kind=Event.Kind.DEFERRED,
                step=step,
                detail=f"Not sent yet: {reason}"[:255],
                at=now,
            )
        )


def _next_day(now: datetime) -> datetime:
    """The daily limits reset at the site's midnight (crm.sending counts the site's day)."""
    local = timezone.localtime(now, timezone=timezone.get_default_timezone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _write(outcomes: dict[int, _Outcome], now: datetime) -> None:
    """The batch's enrolments: one UPDATE per distinct outcome (a batch shares few)."""
    groups: dict[tuple[str, int | None, datetime | None, str, datetime | None], list[int]] = (
        defaultdict(list)
    )
    for pk, outcome in outcomes.items():
        key = (outcome.status, outcome.step_id, outcome.due, outcome.reason, outcome.paused_until)
        groups[key].append(pk)
    for (status, step_id, due, reason, paused_until), ids in groups.items():
        fields: dict[str, object] = {
            "status": status,
            "stop_reason": reason[:255],
            "paused_until": paused_until,
            "updated_at": now,
        }
        if status != Enrolment.Status.STOPPED:
            fields["current_step_id"] = step_id
        fields["next_due_at"] = (
            due if status in (Enrolment.Status.ACTIVE, Enrolment.Status.PAUSED) else None
        )
        Enrolment.objects.filter(pk__in=ids).update(**fields)


def stop_reasons(*, ids: list[int] | None = None) -> dict[int, str]:
    """Why running enrolments must stop, set-based (a query per cause): a reply (never an
    auto-reply) or hard bounce on one of their emails, a complaint, Email Opt Out, conversion.
    `ids` limits it to those enrolments; None checks every running one (the sweep)."""
    running = Enrolment.objects.running()
    if ids is not None:
        running = running.filter(pk__in=ids)
    their_copies = Relation.objects.filter(
        email_id__in=StepRun.objects.filter(enrolment=OuterRef(OuterRef("pk"))).values("email_id"),
        relation_type=Relation.Type.TO,
    )
    complained = EmailSuppression.objects.filter(reason=EmailSuppression.Reason.COMPLAINT)
    causes: list[tuple[str, Q]] = [
        (
            "Replied",
            Q(
                Exists(
                    Relation.objects.filter(
                        email_id__in=StepRun.objects.filter(
                            enrolment=OuterRef(OuterRef("pk"))
                        ).values("email_id"),
                        relation_type=Relation.Type.TO,
                        replied_at__isnull=False,
                    )
                )
            ),
        ),
        ("Hard bounce", Q(Exists(their_copies.filter(bounce_category=Relation.Bounce.HARD)))),
        (
            "Spam complaint",
            Q(Exists(complained.filter(address=Lower(OuterRef("contact__email")))))
            | Q(Exists(complained.filter(address=Lower(OuterRef("lead__email"))))),
        ),
        (
            "Unsubscribed (Email Opt Out)",
            Q(contact__has_opted_out_of_email=True) | Q(lead__has_opted_out_of_email=True),
        ),
        ("Lead converted", Q(lead__status=Lead.Status.CONVERTED)),
    ]
    reasons: dict[int, str] = {}
    for reason, condition in causes:
        for pk in running.filter(condition).exclude(pk__in=reasons).values_list("pk", flat=True):
            reasons[pk] = reason
    return reasons


def enrolments_stops_detect(*, now: datetime | None = None) -> int:
    """The sweep: stop every running enrolment that must stop, each with its reason."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for pk, reason in stop_reasons().items():
        by_reason[reason].append(pk)
    return sum(
        enrolments_stop(ids=ids, reason=reason, now=now) for reason, ids in by_reason.items()
    )


def enrolments_resume(*, now: datetime | None = None) -> int:
    """Enrolments paused by auto-replies whose pause is over go on (the next batch re-checks)."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Enrolment.objects.filter(
                status=Enrolment.Status.PAUSED, paused_until__lte=now
            ).values_list("pk", flat=True)
        )
        if not ids:
            return 0
        Enrolment.objects.filter(pk__in=ids, status=Enrolment.Status.PAUSED).update(
            status=Enrolment.Status.ACTIVE, stop_reason="", paused_until=None, next_due_at=now
        )
        Event.objects.bulk_create(
            Event(
                enrolment_id=pk, kind=Event.Kind.RESUMED, detail="No auto-reply for a week", at=now
            )
            for pk in ids
        )
    return len(ids)


def undelivered_deliver(*, now: datetime | None = None) -> int:
    """Automated emails whose copies are still Pending well after their step committed (the
    worker died between the commit and the delivery): deliver them now, once."""
    now = now or timezone.now()
    email_ids = list(
        Relation.objects.filter(
            delivery_status=Relation.Delivery.PENDING,
            email__source=EmailMessage.Source.AUTOMATION,
            email__created_at__lt=now - RECOVER_AFTER,
        )
        .values_list("email_id", flat=True)
        .distinct()[:1000]
    )
    emails_hand_over(email_ids)
    return len(email_ids)
