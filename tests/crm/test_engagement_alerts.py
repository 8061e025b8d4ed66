"""Engagement alerts: a person who opens and clicks a lot today earns their owner a task."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from crm.activity import activity_refresh, engagement_alerts_create
from crm.models import Lead, OrgSettings, Task
from tests.crm.activity import email_to, event

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def copy(clock, make_contact):
    """Ada's copy of an email sent yesterday."""
    return email_to(make_contact(), when=NOW - timedelta(days=1))


def alerts(**filters) -> list[Task]:
    return list(Task.objects.filter(kind=Task.Kind.ENGAGEMENT_ALERT, **filters))


def opened(copy, times: int, *, hours_ago: float = 1, **fields) -> None:
    for _ in range(times):
        event(copy, when=timezone.now() - timedelta(hours=hours_ago), **fields)


def test_four_human_opens_today_make_a_task_for_the_owner(copy, rep) -> None:
    opened(copy, 4)

    assert engagement_alerts_create() == 1

    (task,) = alerts()
    assert task.subject == "Ada Lovelace opened your email 4 times today"
    assert (task.owner, task.who_contact, task.due_date) == (rep, copy.contact, NOW.date())
    assert task.alert_date == NOW.date()


def test_opens_and_clicks_add_up_to_the_threshold(copy) -> None:
    opened(copy, 2)
    opened(copy, 1, kind="click")

    engagement_alerts_create()

    assert [task.subject for task in alerts()] == [
        "Ada Lovelace opened your email 2 times and clicked once today"
    ]


def test_fewer_opens_machine_opens_and_old_opens_make_none(copy) -> None:
    opened(copy, 2)
    opened(copy, 5, label="apple_mpp")
    opened(copy, 5, hours_ago=25)

    engagement_alerts_create()

    assert alerts() == []


def test_a_person_gets_one_alert_a_day(clock, copy) -> None:
    opened(copy, 3)
    engagement_alerts_create()
    opened(copy, 3)
    engagement_alerts_create()
    assert len(alerts()) == 1

    clock.shift(timedelta(days=1))
    opened(copy, 3)
    engagement_alerts_create()

    assert [task.alert_date for task in alerts()] == [NOW.date(), NOW.date() + timedelta(days=1)]


def test_it_follows_setups_threshold(copy) -> None:
    org = OrgSettings.load()
    org.engagement_alert_threshold = 5
    org.save()
    opened(copy, 4)

    engagement_alerts_create()

    assert alerts() == []


def test_converted_leads_and_dont_process_people_get_none(
    clock, make_lead, make_contact, make_individual
) -> None:
    lead = make_lead(status=Lead.Status.CONVERTED)
    private = make_contact(individual=make_individual(has_opted_out_processing=True))
    for person in (lead, private):
        opened(email_to(person, when=NOW - timedelta(days=1)), 5)

    engagement_alerts_create()

    assert alerts() == []


def test_ingestion_raises_the_alert_for_the_people_it_touched(copy, make_lead) -> None:
    lead_copy = email_to(make_lead(), when=NOW - timedelta(days=1))
    opened(lead_copy, 3)
    opened(copy, 3)

    activity_refresh(relation_ids=[lead_copy.pk])

    (task,) = alerts()
    assert task.who_lead == lead_copy.lead
    assert task.subject == "Grace Hopper opened your email 3 times today"
