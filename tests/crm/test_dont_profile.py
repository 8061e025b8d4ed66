"""Don't Profile: a person's opens and clicks judge nothing about them, but still count in totals."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from crm.activity import activity_metrics_recompute, engagement_alerts_create
from crm.models import ActivityMetric, EmailMessageRelation, OrgSettings, Task
from crm.privacy_flags import DONT_PROFILE, row_person_flagged
from tests.crm.activity import email_to, event

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ada(make_contact, make_individual):
    return make_contact(individual=make_individual(has_opted_out_profiling=True))


@pytest.fixture
def grace(make_contact):
    return make_contact(first_name="Grace", last_name="Hopper", email="grace@example.com")


def _engaged(person, times: int = 4) -> None:
    """An email sent yesterday, opened `times` times and clicked once in the last hour."""
    copy = email_to(person, when=NOW - timedelta(days=1))
    for _ in range(times):
        event(copy, when=timezone.now() - timedelta(hours=1))
    event(copy, when=timezone.now() - timedelta(hours=1), kind="click")


def _alerted() -> set[int | None]:
    return set(
        Task.objects.filter(kind=Task.Kind.ENGAGEMENT_ALERT).values_list("who_contact", flat=True)
    )


def _enforce(value: bool) -> None:
    org = OrgSettings.load()
    org.enforce_email_privacy = value
    org.save()


def test_a_dont_profile_person_earns_their_owner_no_engagement_alert(ada, grace) -> None:
    _engaged(ada)
    _engaged(grace)

    assert engagement_alerts_create() == 1

    assert _alerted() == {grace.pk}


def test_their_metrics_count_emails_but_not_opens_and_clicks(ada, grace) -> None:
    """No list ranks them by engagement, and their quiet days are what was done with them."""
    _engaged(ada)
    _engaged(grace)

    activity_metrics_recompute()

    mine = ActivityMetric.objects.get(contact=ada)
    assert (mine.emails_sent_30d, mine.human_opens_30d, mine.human_clicks_30d) == (1, 0, 0)
    assert mine.activities_30d == 1
    assert mine.last_activity_at == NOW - timedelta(days=1)  # the email, not the opens
    theirs = ActivityMetric.objects.get(contact=grace)
    assert (theirs.human_opens_30d, theirs.human_clicks_30d) == (4, 1)


def test_an_accounts_metrics_leave_out_its_dont_profile_contacts_opens(
    ada, grace, make_account
) -> None:
    account = make_account()
    for person in (ada, grace):
        person.account = account
        person.save(update_fields=["account"])
    _engaged(ada)
    _engaged(grace, times=2)

    activity_metrics_recompute()

    metric = ActivityMetric.objects.get(account=account)
    assert (metric.emails_sent_30d, metric.human_opens_30d, metric.human_clicks_30d) == (2, 2, 1)


def test_with_privacy_settings_not_enforced_they_are_profiled_as_anyone(ada, grace) -> None:
    _enforce(False)
    _engaged(ada)

    engagement_alerts_create()
    activity_metrics_recompute()

    assert _alerted() == {ada.pk}
    assert ActivityMetric.objects.get(contact=ada).human_opens_30d == 4


def test_a_dont_profile_lead_earns_no_alert_either(make_lead, make_individual) -> None:
    lead = make_lead(individual=make_individual(has_opted_out_profiling=True))
    _engaged(lead)

    assert engagement_alerts_create() == 0
    activity_metrics_recompute()
    assert ActivityMetric.objects.get(lead=lead).human_opens_30d == 0


def test_rows_naming_a_dont_profile_person_are_found_for_per_person_lists(ada, grace) -> None:
    """What a list of people with their engagement (campaign members, a list email's
    recipients) leaves out: a copy, member or recipient naming a Don't Profile person."""
    _engaged(ada)
    _engaged(grace)
    copies = EmailMessageRelation.objects.all()

    assert set(
        copies.filter(row_person_flagged(DONT_PROFILE)).values_list("contact", flat=True)
    ) == {ada.pk}
    _enforce(False)
    assert not copies.filter(row_person_flagged(DONT_PROFILE)).exists()
