"""Activity metrics: computed set-based from a record's emails, opens, clicks and done tasks."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.activity import activity_metrics_recompute, activity_refresh, activity_refresh_enqueue
from crm.calls import call_log
from crm.models import ActivityMetric, Contact, Task
from crm.sending import email_send
from tests.crm.activity import email_from, email_to, event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def created(record, when: datetime):
    type(record).objects.filter(pk=record.pk).update(created_at=when)
    return record


@pytest.fixture
def ada(make_contact, make_account, make_task):
    """Ada's history, by hand: what counts and what must not."""
    ada = created(make_contact(account=make_account(name="Analytical")), ago(days=90))
    email_to(ada, when=ago(days=40))
    email_to(ada, when=ago(days=10), kind="cc", status="bounced")  # bounced: it was sent
    email_to(ada, when=ago(days=5), status="refused")  # never sent: not an email to her
    email_to(ada, when=ago(days=4), status="failed")
    email_from(ada, when=ago(days=3))
    email_from(ada, when=ago(days=2), auto_reply=True)  # received, though not a reply
    copy = email_to(ada, when=ago(days=35))
    event(copy, when=ago(days=34))  # a human open outside the 30 days
    event(copy, when=ago(days=1))
    event(copy, when=ago(days=2), kind="click")
    event(copy, when=ago(hours=1), label="apple_mpp")  # machine: never activity
    event(copy, when=ago(hours=2), kind="click", label="scanner")
    make_task(who_contact=ada, status="completed", subtype="call")
    Task.objects.filter(who_contact=ada).update(completed_at=ago(days=20))
    make_task(who_contact=ada, subject="Plan")  # open: a plan, not activity
    return ada


def test_it_computes_a_contacts_metrics_from_a_hand_built_history(ada) -> None:
    activity_metrics_recompute()

    metric = ActivityMetric.objects.get(contact=ada)
    assert metric.first_email_at == ago(days=40)
    assert metric.last_email_sent_at == ago(days=10)
    assert metric.last_email_received_at == ago(days=2)
    assert metric.last_activity_at == ago(days=1)  # the human open, not the machine one
    assert (metric.emails_sent_30d, metric.emails_received_30d) == (1, 2)
    assert (metric.human_opens_30d, metric.human_clicks_30d) == (1, 1)
    assert metric.activities_30d == 1 + 2 + 1 + 1 + 1  # sent, received, open, click, call
    assert metric.inactive_days == 1
    assert metric.computed_at == NOW


def test_an_account_rolls_up_its_contacts_and_its_own_calls(ada, make_contact, rep) -> None:
    bob = make_contact(first_name="Bob", email="bob@example.com", account=ada.account)
    email_to(bob, when=ago(days=6))
    call_log(owner=rep, record=ada.account, subject="Intro", comments="")

    activity_metrics_recompute()

    metric = ActivityMetric.objects.get(account=ada.account)
    assert metric.first_email_at == ago(days=40)
    assert metric.last_email_sent_at == ago(days=6)
    assert metric.last_activity_at == NOW  # the call just logged on the account
    assert metric.emails_sent_30d == 2
    assert metric.activities_30d == 6 + 1 + 1  # Ada's, Bob's email, the account's call
    assert metric.inactive_days == 0


def test_a_record_with_no_activity_counts_its_quiet_days_from_its_creation(
    make_contact, make_lead
) -> None:
    quiet = created(make_contact(), ago(days=5, hours=3))
    only_machines = created(make_lead(), ago(days=50))
    event(email_to(only_machines, when=ago(days=20)), when=ago(days=19), label="bot")

    activity_metrics_recompute()

    metric = ActivityMetric.objects.get(contact=quiet)
    assert (metric.last_activity_at, metric.first_email_at, metric.inactive_days) == (None, None, 5)
    lead_metric = ActivityMetric.objects.get(lead=only_machines)
    assert lead_metric.last_activity_at == ago(days=20)  # the email, not the bot's open
    assert (lead_metric.human_opens_30d, lead_metric.inactive_days) == (0, 20)


def test_a_recompute_updates_the_rows_in_place(ada) -> None:
    activity_metrics_recompute()
    first = ActivityMetric.objects.get(contact=ada)
    email_to(ada, when=ago(minutes=5))

    activity_metrics_recompute()

    again = ActivityMetric.objects.get(contact=ada)
    assert again.pk == first.pk
    assert (again.emails_sent_30d, again.last_activity_at) == (2, ago(minutes=5))


def test_an_incremental_recompute_touches_only_the_given_records_and_their_account(
    ada, make_contact, make_lead
) -> None:
    other = make_contact(first_name="Other", email="other@example.com")
    lead = make_lead()

    activity_metrics_recompute(contact_ids=[ada.pk])

    assert set(ActivityMetric.objects.values_list("contact", "account")) == {
        (ada.pk, None),
        (None, ada.account_id),
    }
    assert not ActivityMetric.objects.filter(contact=other).exists()
    assert not ActivityMetric.objects.filter(lead=lead).exists()


def test_the_full_recompute_runs_a_fixed_number_of_statements(ada, make_contact) -> None:
    for index in range(30):
        email_to(make_contact(last_name=f"C{index}"), when=ago(days=index))

    with CaptureQueriesContext(connection) as queries:
        activity_metrics_recompute()

    upserts = [q for q in queries.captured_queries if "INSERT INTO crm_activitymetric" in q["sql"]]
    assert len(upserts) == 4  # contacts, leads, accounts, opportunities: not one per record
    assert ActivityMetric.objects.filter(contact__isnull=False).count() == Contact.objects.count()


def test_ingested_engagement_refreshes_the_persons_metrics(ada) -> None:
    activity_metrics_recompute()
    copy = email_to(ada, when=ago(days=1))
    event(copy, when=ago(minutes=1))

    activity_refresh(relation_ids=[copy.pk])

    metric = ActivityMetric.objects.get(contact=ada)
    assert (metric.last_activity_at, metric.human_opens_30d) == (ago(minutes=1), 2)


def test_a_delivered_email_updates_its_recipients_metrics(
    rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    grace = make_contact(first_name="Grace", email="grace@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[grace], subject="Hi", html_body="<p>Hi</p>")

    metric = ActivityMetric.objects.get(contact=grace)
    assert (metric.emails_sent_30d, metric.last_email_sent_at) == (1, NOW)


def test_the_ingestion_hook_refreshes_the_metrics_once_the_batch_is_committed(
    ada, django_capture_on_commit_callbacks
) -> None:
    activity_metrics_recompute()
    copy = email_to(ada, when=ago(days=1))
    event(copy, when=ago(minutes=1), kind="click")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        activity_refresh_enqueue(relation_ids={copy.pk})
        assert ActivityMetric.objects.get(contact=ada).human_clicks_30d == 1  # not yet

    assert len(callbacks) == 1
    assert ActivityMetric.objects.get(contact=ada).human_clicks_30d == 2


def test_a_logged_call_refreshes_the_records_metrics(
    rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    grace = make_contact(first_name="Grace")
    activity_metrics_recompute()

    with django_capture_on_commit_callbacks(execute=True):
        call_log(owner=rep, record=grace, subject="Intro", comments="")

    metric = ActivityMetric.objects.get(contact=grace)
    assert (metric.last_activity_at, metric.activities_30d) == (NOW, 1)
