"""A sequence's steps run in order: emails (new thread or a reply in it), waits, tasks."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from automation.advance import enrolments_advance
from automation.enrolment import people_enrol
from automation.models import Enrolment, EnrolmentEvent, StepRun
from automation.schedule import business_days_after, next_weekday_at
from crm.models import EmailMessage, OrgSettings, Task

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def test_business_days_skip_the_weekend() -> None:
    friday = datetime(2026, 12, 4, 9, 30, tzinfo=PARIS)
    assert business_days_after(friday, 1, PARIS) == datetime(2026, 12, 7, 9, 30, tzinfo=PARIS)
    assert business_days_after(friday, 3, PARIS) == datetime(2026, 12, 9, 9, 30, tzinfo=PARIS)
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=PARIS)
    assert business_days_after(saturday, 1, PARIS).date().isoformat() == "2026-12-07"


def test_a_weekday_wait_is_the_next_such_day_at_that_local_time() -> None:
    # Thursday 3 Dec 2026, 20:00 UTC = 21:00 in Paris; Tuesday 09:00 Paris = 08:00 UTC.
    start = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    due = next_weekday_at(start, 1, time(9, 0), PARIS)
    assert due.astimezone(UTC) == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    # Same weekday, later today: today; earlier today: next week.
    assert next_weekday_at(start, 3, time(22, 0), PARIS).date().isoformat() == "2026-12-03"
    assert next_weekday_at(start, 3, time(8, 0), PARIS).date().isoformat() == "2026-12-10"


def test_it_sends_waits_replies_in_the_thread_and_creates_the_owners_task(
    make_sequence, make_contact, rep
) -> None:
    rep.time_zone = "Europe/Paris"
    rep.save(update_fields=["time_zone"])
    sequence = make_sequence("email", ("wait", 2), "reply", ("task", "call"))
    ada = make_contact(email="ada@example.com", first_name="Ada")
    with time_machine.travel(datetime(2026, 12, 3, 9, 0, tzinfo=UTC), tick=False):
        (enrolment,), plan = people_enrol(sequence=sequence, people=[ada], by=rep)
        assert plan.skipped == []
        assert enrolments_advance() == 1

    first = EmailMessage.objects.get(source=EmailMessage.Source.AUTOMATION)
    assert first.subject == "Hello Ada"
    assert first.sender == rep
    assert first.template == sequence.steps.get(position=1).template
    assert first.is_tracked
    assert len(mail.outbox) == 1
    enrolment.refresh_from_db()
    assert enrolment.current_step.position == 2
    # Two business days from Thursday 10:00 in Paris: Monday 10:00 Paris.
    assert enrolment.next_due_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    with time_machine.travel(datetime(2026, 12, 4, 9, 0, tzinfo=UTC), tick=False):
        assert enrolments_advance() == 0
    with time_machine.travel(datetime(2026, 12, 7, 9, 1, tzinfo=UTC), tick=False):
        assert enrolments_advance() == 2  # the reply, then the task right after it

    reply = EmailMessage.objects.exclude(pk=first.pk).get(source=EmailMessage.Source.AUTOMATION)
    assert reply.reply_to_message == first
    assert reply.thread_identifier == first.message_identifier
    assert reply.subject == "Re: Hello Ada"
    assert "In-Reply-To" in mail.outbox[1].extra_headers
    task = Task.objects.get(who_contact=ada)
    assert task.owner == rep
    assert task.subtype == Task.Subtype.CALL
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.FINISHED
    assert StepRun.objects.filter(enrolment=enrolment).count() == 3
    assert list(enrolment.events.values_list("kind", flat=True)) == [
        EnrolmentEvent.Kind.ENROLLED,
        EnrolmentEvent.Kind.EMAIL_SENT,
        EnrolmentEvent.Kind.WAITING,
        EnrolmentEvent.Kind.EMAIL_SENT,
        EnrolmentEvent.Kind.TASK_CREATED,
        EnrolmentEvent.Kind.FINISHED,
    ]


def test_over_the_daily_limit_the_step_waits_for_the_next_day(
    make_sequence, make_contact, rep
) -> None:
    org = OrgSettings.load()
    org.daily_single_email_limit = 1
    org.save()
    sequence = make_sequence("email")
    people = [make_contact(email=f"p{n}@example.com") for n in range(2)]
    with time_machine.travel(datetime(2026, 12, 3, 9, 0, tzinfo=UTC), tick=False):
        people_enrol(sequence=sequence, people=people, by=rep)
        enrolments_advance()

    assert EmailMessage.objects.filter(source=EmailMessage.Source.AUTOMATION).count() == 0
    for enrolment in Enrolment.objects.all():
        assert enrolment.status == Enrolment.Status.ACTIVE
        assert enrolment.next_due_at > datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
        deferred = enrolment.events.get(kind=EnrolmentEvent.Kind.DEFERRED)
        assert "daily single email limit" in deferred.detail
