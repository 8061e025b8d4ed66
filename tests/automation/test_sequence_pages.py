"""The sequence pages: building one, its per-step figures and enrolments, an enrolment's
history with stop / pause / resume, and who may do what."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from automation.advance import enrolments_advance
from automation.enrolment import people_enrol
from automation.models import Enrolment, Sequence, Step
from crm.models import EmailEvent, EmailMessageRelation
from tests.automation.test_stops import _copy, _reply

pytestmark = pytest.mark.django_db


def test_a_manager_builds_a_sequence_step_by_step(client_for, manager, make_template) -> None:
    template = make_template(name="Intro")
    client = client_for(manager)

    client.post(reverse("automation:sequence_create"), {"name": "Q1 outreach"})
    sequence = Sequence.objects.get(name="Q1 outreach")
    url = reverse("automation:step_create", args=[sequence.pk])
    client.post(url, {"kind": "email", "template": template.pk, "thread": "new"})
    bad = client.post(url, {"kind": "wait", "wait_kind": "business_days"})
    client.post(url, {"kind": "wait", "wait_kind": "business_days", "wait_days": 3})
    client.post(
        url, {"kind": "wait", "wait_kind": "weekday_time", "wait_weekday": 1, "wait_time": "09:30"}
    )
    client.post(url, {"kind": "task", "task_kind": "linkedin", "task_subject": "Connect"})

    assert "Give the number of business days" in bad.content.decode()
    assert [s.describe() for s in sequence.steps.all()] == [
        "Email: Intro (new thread)",
        "Wait 3 business days",
        "Wait until Tuesday 09:30",
        "LinkedIn: Connect",
    ]
    assert list(sequence.steps.values_list("position", flat=True)) == [1, 2, 3, 4]


def test_a_rep_sees_sequences_but_cannot_build_them(client_for, rep, make_sequence) -> None:
    sequence = make_sequence("email")
    client = client_for(rep)

    assert client.get(reverse("automation:sequence_list")).status_code == 200
    assert client.get(sequence.get_absolute_url()).status_code == 200
    assert client.get(reverse("automation:sequence_create")).status_code == 403
    assert client.get(reverse("automation:step_create", args=[sequence.pk])).status_code == 403
    assert client.get(reverse("automation:rule_list")).status_code == 403


def test_the_page_shows_each_steps_figures_and_who_is_at_each_step(
    client_for, manager, rep, make_sequence, make_contact, django_assert_num_queries
) -> None:
    sequence = make_sequence("email", ("wait", 2), "email")
    people = [make_contact(first_name=f"P{n}", email=f"p{n}@example.com") for n in range(4)]
    with time_machine.travel(datetime(2026, 12, 3, 9, 0, tzinfo=UTC), tick=False):
        enrolments, _ = people_enrol(sequence=sequence, people=people, by=rep)
        enrolments_advance()
    copies = [_copy(e) for e in enrolments]
    EmailMessageRelation.objects.filter(pk=copies[0].pk).update(human_opens=2, human_clicks=1)
    EmailMessageRelation.objects.filter(pk=copies[1].pk).update(machine_opens=5)  # a machine
    _reply(copies[2], auto=False, when=datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    EmailEvent.objects.create(
        relation=copies[3], kind=EmailEvent.Kind.UNSUBSCRIBED, occurred_at=datetime.now(UTC)
    )
    client = client_for(manager)
    client.get(sequence.get_absolute_url())  # Setup and the session cached

    # session, user, permissions (2), the sequence, its steps, the email figures, task counts,
    # enrolments per step and per status, the enrolments' page (count, rows), the navbar's
    # follow-ups and roles: the same for four enrolments or forty thousand
    with django_assert_num_queries(14):
        page = client.get(sequence.get_absolute_url())

    first = page.context["steps"][0]
    assert (first.sent, first.opened, first.clicked, first.replied, first.unsubscribed) == (
        4,
        1,
        1,
        1,
        1,
    )
    wait = page.context["steps"][1]
    assert wait.waiting_here == 4
    assert len(page.context["page"]) == 4


def test_the_owner_pauses_resumes_and_stops_after_a_confirmation(
    client_for, rep, other_rep, make_sequence, make_contact
) -> None:
    sequence = make_sequence("email")
    (enrolment,), _ = people_enrol(sequence=sequence, people=[make_contact()], by=rep)
    client = client_for(rep)
    change = lambda action: reverse(f"automation:enrolment_{action}", args=[enrolment.pk])  # noqa: E731

    client.post(change("pause"))
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.PAUSED
    client.post(change("resume"))
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.ACTIVE
    confirm = client.get(change("stop"))
    assert b"Stop the enrolment" in confirm.content
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.ACTIVE  # the GET changes nothing
    client.post(change("stop"))
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.STOPPED
    history = client.get(reverse("automation:enrolment_detail", args=[enrolment.pk]))
    assert b"Stopped by" in history.content
    # Another rep does not see the record, so not its enrolment either.
    assert (
        client_for(other_rep)
        .get(reverse("automation:enrolment_detail", args=[enrolment.pk]))
        .status_code
        == 404
    )


def test_a_step_that_ran_is_kept(client_for, manager, rep, make_sequence, make_contact) -> None:
    sequence = make_sequence("email", ("wait", 1))
    people_enrol(sequence=sequence, people=[make_contact()], by=rep)
    enrolments_advance()
    step = sequence.steps.get(position=1)

    client_for(manager).post(reverse("automation:step_delete", args=[sequence.pk, step.pk]))

    assert Step.objects.filter(pk=step.pk).exists()


def test_empty_lists_say_what_to_do(client_for, manager) -> None:
    page = client_for(manager).get(reverse("automation:sequence_list"))
    assert b"No active sequences" in page.content
