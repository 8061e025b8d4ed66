"""Follow-ups: a quiet record gets one open follow-up task for its owner, and only one."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from crm.activity import activity_metrics_recompute, follow_ups_create
from crm.calls import call_log
from crm.models import Lead, Opportunity, OrgSettings, Task
from tests.crm.activity import email_to

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ada(clock, make_contact):
    ada = make_contact()
    type(ada).objects.filter(pk=ada.pk).update(created_at=NOW - timedelta(days=100))
    return ada


def follow_ups(**filters) -> list[Task]:
    return list(Task.objects.filter(kind=Task.Kind.FOLLOW_UP, **filters))


@pytest.mark.parametrize("quiet_days,expected", [(13, 0), (14, 1), (15, 1)])
def test_a_record_quiet_for_setups_days_gets_a_follow_up(ada, quiet_days, expected) -> None:
    email_to(ada, when=NOW - timedelta(days=quiet_days))

    follow_ups_create()

    assert len(follow_ups(who_contact=ada)) == expected


def test_the_follow_up_says_why_and_is_due_today_for_the_owner(ada, rep) -> None:
    email_to(ada, when=NOW - timedelta(days=16, hours=5))

    assert follow_ups_create() == 1

    (task,) = follow_ups()
    assert task.subject == "No activity for 16 days: follow up with Ada Lovelace"
    assert (task.owner, task.due_date, task.who_contact) == (rep, NOW.date(), ada)
    assert task.status == Task.Status.NOT_STARTED


def test_it_follows_setups_number_of_days(ada) -> None:
    org = OrgSettings.load()
    org.no_activity_days = 30
    org.save()
    email_to(ada, when=NOW - timedelta(days=20))

    follow_ups_create()

    assert follow_ups() == []


def test_a_new_record_is_not_quiet_until_it_has_existed_that_long(clock, make_contact) -> None:
    make_contact()

    follow_ups_create()
    clock.shift(timedelta(days=14))
    follow_ups_create()

    assert len(follow_ups()) == 1


def test_running_it_again_never_makes_a_second_open_follow_up(ada) -> None:
    follow_ups_create()
    follow_ups_create()

    assert len(follow_ups(who_contact=ada)) == 1


def test_new_activity_keeps_the_open_follow_up_and_the_next_waits_another_quiet_period(
    clock, ada, rep
) -> None:
    follow_ups_create()
    (first,) = follow_ups()
    clock.shift(timedelta(days=2))
    email_to(ada, when=NOW + timedelta(days=2))

    follow_ups_create()
    assert follow_ups() == [first]  # not deleted, not doubled
    first.refresh_from_db()
    first.complete()  # done on day 3: that is activity too
    clock.shift(timedelta(days=1))

    for _ in range(13):
        follow_ups_create()
        clock.shift(timedelta(days=1))
    assert follow_ups() == [first]
    clock.shift(timedelta(days=1))
    follow_ups_create()
    assert len(follow_ups()) == 2


def test_activity_the_stored_metrics_have_not_seen_yet_still_counts(ada, rep) -> None:
    activity_metrics_recompute()  # the metrics say Ada is quiet...
    call_log(owner=rep, record=ada, subject="Caught up", comments="")  # ...but she was called

    follow_ups_create()

    assert follow_ups() == []


def test_people_under_dont_process_or_forget_get_none(ada, make_contact, make_individual) -> None:
    for flag in ("has_opted_out_processing", "should_forget"):
        person = make_contact(individual=make_individual(**{flag: True}))
        type(person).objects.filter(pk=person.pk).update(created_at=NOW - timedelta(days=100))

    follow_ups_create()

    assert [task.who_contact for task in follow_ups()] == [ada]


def test_converted_leads_and_closed_opportunities_get_none(
    clock, make_lead, make_opportunity
) -> None:
    make_lead(last_name="Open")
    make_lead(last_name="Converted", status=Lead.Status.CONVERTED)
    make_opportunity(name="Acme - Pilot")
    make_opportunity(name="Won", stage=Opportunity.Stage.CLOSED_WON)
    make_opportunity(name="Lost", stage=Opportunity.Stage.CLOSED_LOST)
    clock.shift(timedelta(days=20))

    follow_ups_create()

    assert sorted(task.subject for task in follow_ups()) == [
        "No activity for 20 days: follow up on Acme - Pilot",
        "No activity for 20 days: follow up with Grace Open",
    ]


def test_the_database_refuses_a_second_open_follow_up_for_a_record(ada, rep) -> None:
    fields = {"owner": rep, "subject": "Follow up", "kind": Task.Kind.FOLLOW_UP}
    Task.objects.create(who_contact=ada, status=Task.Status.COMPLETED, **fields)
    Task.objects.create(who_contact=ada, **fields)  # one done, one open: fine

    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(who_contact=ada, **fields)
