"""Captured email on the timelines (marked "from mailbox", untracked), in the activity metrics,
and closing the follow-up of a record that was quiet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from capture.reading import mail_read
from capture.storing import Item, Rules, mails_capture
from crm.activity import activity_metrics_recompute, follow_ups_create
from crm.models import ActivityMetric, Contact, OpportunityContactRole, Task
from crm.timeline import CAPTURED_UNTRACKED
from tests.capture.conftest import mail

pytestmark = pytest.mark.django_db


def _capture(user, *raws, on_commit):
    items = [Item(mail=mail_read(raw), raw=raw) for raw in raws]
    with on_commit(execute=True):
        return mails_capture(user=user, items=items, rules=Rules.for_user(user))


def test_captured_email_shows_on_the_contact_and_account_timelines_marked_from_mailbox(
    rep, make_contact, make_account, client_for, django_capture_on_commit_callbacks
):
    account = make_account()
    ada = make_contact(email="ada@example.com", account=account)
    question, root = mail(sender="ada@example.com", to=["rita@openrate.example"], subject="Q1")
    answer, _ = mail(
        sender="rita@openrate.example",
        to=["ada@example.com"],
        subject="Re: Q1",
        replying_to=[root],
    )
    _capture(rep, question, answer, on_commit=django_capture_on_commit_callbacks)
    client = client_for(rep)

    for page in (ada.get_absolute_url(), account.get_absolute_url()):
        html = client.get(page).content.decode()
        assert "Q1" in html and "Re: Q1" in html
        assert html.count("From mailbox") >= 2 and CAPTURED_UNTRACKED in html
        assert "Not opened yet" not in html


def test_captured_email_counts_in_the_activity_metrics(
    rep, make_contact, django_capture_on_commit_callbacks
):
    ada = make_contact(email="ada@example.com")
    sent_at = timezone.now() - timedelta(days=2)
    received_at = timezone.now() - timedelta(days=1)
    out, _ = mail(sender="rita@openrate.example", to=["ada@example.com"], subject="A", when=sent_at)
    back, _ = mail(
        sender="ada@example.com", to=["rita@openrate.example"], subject="B", when=received_at
    )

    _capture(rep, out, back, on_commit=django_capture_on_commit_callbacks)

    metric = ActivityMetric.objects.get(contact=ada)
    assert metric.last_email_sent_at.replace(microsecond=0) == sent_at.replace(microsecond=0)
    assert metric.last_email_received_at.replace(microsecond=0) == received_at.replace(
        microsecond=0
    )
    assert (metric.emails_sent_30d, metric.emails_received_30d) == (1, 1)


def test_a_captured_reply_closes_the_open_follow_up_of_a_quiet_record(
    rep, make_contact, make_opportunity, django_capture_on_commit_callbacks
):
    ada = make_contact(email="ada@example.com")
    opportunity = make_opportunity()
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=ada)
    long_ago = timezone.now() - timedelta(days=60)
    Contact.objects.filter(pk=ada.pk).update(created_at=long_ago)
    type(opportunity).objects.filter(pk=opportunity.pk).update(created_at=long_ago)
    activity_metrics_recompute()
    assert follow_ups_create() == 2
    other = make_contact(email="someone@else.example")
    Contact.objects.filter(pk=other.pk).update(created_at=long_ago)
    follow_ups_create()
    open_tasks = Task.objects.filter(kind=Task.Kind.FOLLOW_UP, status="not_started")
    assert open_tasks.count() == 3

    reply, _ = mail(sender="ada@example.com", to=["rita@openrate.example"], subject="Back!")
    _capture(rep, reply, on_commit=django_capture_on_commit_callbacks)

    closed = Task.objects.filter(kind=Task.Kind.FOLLOW_UP, status=Task.Status.COMPLETED)
    assert set(closed.values_list("who_contact", "what_opportunity")) == {
        (ada.pk, None),
        (None, opportunity.pk),
    }
    assert open_tasks.get().who_contact == other  # a record still quiet keeps its follow-up
