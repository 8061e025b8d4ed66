"""`make run`'s demo reads like a month of use: every email names its recipients, and every
record's activity, follow-ups and engagement alerts are there as soon as it is loaded."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from campaigns.models import CampaignInfluence
from crm import jobs
from crm.models import (
    ActivityMetric,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Lead,
    Opportunity,
    Task,
    User,
)

Relation = EmailMessageRelation


def _load_demo() -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo_activity", stdout=StringIO())


@pytest.fixture
def demo(roles: None) -> None:
    _load_demo()


def _signed_in(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def test_every_demo_email_names_its_sender_and_recipients(demo: None) -> None:
    emails = EmailMessage.objects.all()

    assert emails.count() > 100
    assert not emails.filter(to_addresses="").exists()
    assert not emails.exclude(relations__relation_type=Relation.Type.TO).exists()
    assert not emails.exclude(relations__relation_type=Relation.Type.FROM).exists()
    assert not emails.filter(message_identifier="").exists()
    relation = Relation.objects.filter(relation_type=Relation.Type.TO).select_related("email")[0]
    assert relation.address in relation.email.to_addresses

    page = _signed_in("manager").get(reverse("tracking:email_detail", args=[relation.email_id]))

    assert page.status_code == 200
    assert relation.address in page.content.decode()


def test_every_demo_record_shows_its_activity_and_quiet_ones_have_follow_ups(demo: None) -> None:
    for model in (Contact, Lead, Opportunity):
        assert not model.objects.filter(activity__isnull=True).exists(), model.__name__
    assert ActivityMetric.objects.filter(last_email_sent_at__isnull=False).exists()
    assert Task.objects.filter(kind=Task.Kind.FOLLOW_UP, who_lead__isnull=False).exists()
    contact = Contact.objects.filter(owner__username="ada").order_by("pk")[0]

    page = _signed_in("ada").get(reverse("crm:contact_detail", args=[contact.pk]))

    assert page.status_code == 200
    assert "Not computed yet" not in page.content.decode()


def test_each_demo_rep_has_an_engagement_alert_for_a_contact_active_today(demo: None) -> None:
    alerts = Task.objects.filter(kind=Task.Kind.ENGAGEMENT_ALERT)

    assert set(alerts.values_list("owner__username", flat=True)) == {"ada", "grace"}


def test_the_demo_never_tracks_a_dont_track_person_nor_emails_a_dont_process_one(
    demo: None,
) -> None:
    dont_track = Relation.objects.filter(contact__individual__has_opted_out_tracking=True)
    dont_process = Relation.objects.filter(contact__individual__has_opted_out_processing=True)

    assert not dont_track.filter(is_tracked=True).exists()
    assert not dont_track.filter(tracking_events__isnull=False).exists()
    assert not dont_process.exists()


def test_loading_the_demo_queues_no_influence_recompute_for_the_worker(
    roles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []

    def enqueue(task_name: str, *args: Any, **kwargs: Any) -> None:
        queued.append(task_name)

    monkeypatch.setattr(jobs, "enqueue", enqueue)

    _load_demo()

    assert "campaigns.tasks.recompute_influence" not in queued
    assert CampaignInfluence.objects.exists()


def test_a_demo_loaded_before_metrics_existed_gets_them_on_the_next_run(demo: None) -> None:
    ActivityMetric.objects.all().delete()

    _load_demo()

    assert not Contact.objects.filter(activity__isnull=True).exists()
