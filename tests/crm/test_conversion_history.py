"""Converting a lead keeps its whole story: emails, tasks, privacy changes, campaign memberships
and activity move to the new contact, the lead points there, and a lead converts only once."""

from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns.members import members_convert
from campaigns.models import (
    Campaign,
    CampaignInfluence,
    CampaignMember,
    ListEmail,
    ListEmailRecipient,
)
from crm.activity import activity_metrics_recompute
from crm.conversion import LeadAlreadyConverted, lead_convert
from crm.models import (
    ActivityMetric,
    Contact,
    EmailMessageRelation,
    Lead,
    PrivacyChange,
    Task,
)
from crm.timeline import timeline
from tests.conftest import run_at_once
from tests.crm.activity import email_from, email_to, event


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def ada(make_lead, make_task, now) -> Lead:
    """A lead with a history: an email each way (the first opened), an open task, a done call,
    a privacy change."""
    lead = make_lead(first_name="Ada", last_name="Lovelace", company="Analytical")
    event(email_to(lead, when=now - timedelta(days=3)), when=now - timedelta(days=2))
    email_from(lead, when=now - timedelta(days=1))
    make_task(subject="Send the pricing", who_lead=lead)
    call = make_task(subject="Discovery call", who_lead=lead, subtype="call", status="completed")
    Task.objects.filter(pk=call.pk).update(completed_at=now - timedelta(hours=5))
    PrivacyChange.objects.create(
        lead=lead,
        field="has_opted_out_of_email",
        label="Email Opt Out",
        value=True,
        source="test",
        changed_at=now - timedelta(days=10),
    )
    return lead


def _campaign(rep, name: str) -> Campaign:
    return Campaign.objects.create(name=name, owner=rep)


def _member(campaign: Campaign, *, status: str, joined, **person) -> CampaignMember:
    return CampaignMember.objects.create(
        campaign=campaign,
        status=campaign.statuses.get(label=status),
        created_at=joined,
        **person,
    )


def _convert(client, lead: Lead, opportunity_name: str = "", capture=None):
    url = reverse("crm:lead_convert", args=[lead.pk])
    with capture(execute=True):
        response = client.post(url, {"opportunity_name": opportunity_name}, follow=True)
    lead.refresh_from_db()
    return response


def test_the_contact_gets_the_leads_emails_tasks_and_privacy_changes(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    response = _convert(
        client_for(rep), ada, "Analytical - Engine", django_capture_on_commit_callbacks
    )

    contact, opportunity = ada.converted_contact, ada.converted_opportunity
    assert not EmailMessageRelation.objects.filter(lead=ada).exists()
    assert EmailMessageRelation.objects.filter(contact=contact).count() == 2
    assert not Task.objects.filter(who_lead=ada).exists()
    assert set(
        Task.objects.filter(who_contact=contact).values_list("subject", "what_opportunity")
    ) == {("Send the pricing", opportunity.pk), ("Discovery call", opportunity.pk)}
    assert PrivacyChange.objects.get().contact == contact
    page = timeline(contact)
    assert [e.kind for e in page.entries] == ["task", "email", "email", "privacy"]
    assert [str(t) for t in page.upcoming] == ["Send the pricing"]
    assert timeline(ada).entries == [] and timeline(ada).upcoming == []
    assert (
        "Ada Lovelace converted into a new account, a contact and an opportunity. "
        "2 emails and 2 tasks moved from the lead to Ada Lovelace."
    ) in response.content.decode()


def test_the_opportunity_shows_the_leads_story(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    _convert(client_for(rep), ada, "Analytical - Engine", django_capture_on_commit_callbacks)

    page = timeline(ada.converted_opportunity)

    assert [e.kind for e in page.entries] == ["task", "email", "email"]
    assert [str(t) for t in page.upcoming] == ["Send the pricing"]


def test_without_an_opportunity_the_tasks_are_about_the_account(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    response = _convert(client_for(rep), ada, "", django_capture_on_commit_callbacks)

    assert "converted into a new account and a contact." in response.content.decode()
    assert set(Task.objects.values_list("who_contact", "what_account")) == {
        (ada.converted_contact_id, ada.converted_account_id)
    }


def test_a_task_that_names_what_it_is_about_keeps_it(
    client_for, rep, make_lead, make_account, make_task, django_capture_on_commit_callbacks
) -> None:
    lead = make_lead()
    elsewhere = make_account(name="Elsewhere")
    task = make_task(who_lead=lead, what_account=elsewhere)

    _convert(client_for(rep), lead, "Deal", django_capture_on_commit_callbacks)

    task.refresh_from_db()
    assert (task.who_contact, task.what_account, task.what_opportunity) == (
        lead.converted_contact,
        elsewhere,
        None,
    )


def test_activity_metrics_follow_the_history_once_committed(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    client = client_for(rep)
    activity_metrics_recompute()
    assert ActivityMetric.objects.get(lead=ada).activities_30d == 4  # sent, received, open, call

    _convert(client, ada, "Analytical - Engine", django_capture_on_commit_callbacks)

    contact_metric = ActivityMetric.objects.get(contact=ada.converted_contact)
    assert (contact_metric.emails_sent_30d, contact_metric.emails_received_30d) == (1, 1)
    assert contact_metric.activities_30d == 4
    assert ActivityMetric.objects.get(lead=ada).activities_30d == 0
    assert ActivityMetric.objects.get(opportunity=ada.converted_opportunity).activities_30d == 4
    assert ActivityMetric.objects.get(account=ada.converted_account).activities_30d == 4


def test_campaign_memberships_move_and_count_as_influence(
    client_for, rep, ada, now, django_capture_on_commit_callbacks
) -> None:
    spring = _campaign(rep, "Spring")
    _member(spring, status="Clicked", joined=now - timedelta(days=20), lead=ada)

    _convert(client_for(rep), ada, "Analytical - Engine", django_capture_on_commit_callbacks)

    member = CampaignMember.objects.get()
    assert (member.contact, member.lead, member.status.label) == (
        ada.converted_contact,
        None,
        "Clicked",
    )
    assert member.created_at == now - timedelta(days=20)  # the day Ada joined, kept
    touch = CampaignInfluence.objects.get(model="first_touch")
    assert (touch.opportunity, touch.campaign) == (ada.converted_opportunity, spring)


def test_a_membership_the_contact_already_has_is_merged_keeping_the_furthest_status(
    rep, make_lead, make_contact, now, django_capture_on_commit_callbacks
) -> None:
    lead, contact = make_lead(), make_contact()
    ahead, behind, only_lead = (_campaign(rep, name) for name in ("Ahead", "Behind", "Only"))
    # The lead went further in "Ahead" and answered; the contact went further in "Behind".
    _member(ahead, status="Responded", joined=now - timedelta(days=9), lead=lead)
    CampaignMember.objects.filter(lead=lead).update(
        has_responded=True, first_responded_at=now - timedelta(days=8)
    )
    _member(ahead, status="Sent", joined=now - timedelta(days=2), contact=contact)
    _member(behind, status="Opened", joined=now - timedelta(days=1), lead=lead)
    _member(behind, status="Clicked", joined=now - timedelta(days=5), contact=contact)
    _member(only_lead, status="Sent", joined=now - timedelta(days=3), lead=lead)

    with django_capture_on_commit_callbacks(execute=True):
        members_convert(lead_id=lead.pk, contact_id=contact.pk)

    members = {
        m.campaign.name: m for m in CampaignMember.objects.select_related("campaign", "status")
    }
    assert len(members) == 3
    assert all(m.contact == contact and m.lead is None for m in members.values())
    assert (members["Ahead"].status.label, members["Ahead"].has_responded) == ("Responded", True)
    assert members["Ahead"].first_responded_at == now - timedelta(days=8)
    assert members["Ahead"].created_at == now - timedelta(days=9)  # the earlier join
    assert members["Behind"].status.label == "Clicked"
    assert members["Behind"].created_at == now - timedelta(days=5)
    assert members["Only"].status.label == "Sent"


def test_a_list_email_still_queued_for_the_lead_goes_to_the_contact(
    client_for, rep, make_lead, django_capture_on_commit_callbacks
) -> None:
    lead = make_lead()
    spring = _campaign(rep, "Spring")
    send = ListEmail.objects.create(
        campaign=spring, sender=rep, subject="Hi", html_body="<p>Hi</p>"
    )
    queued = ListEmailRecipient.objects.create(list_email=send, lead=lead)

    _convert(client_for(rep), lead, "", django_capture_on_commit_callbacks)

    queued.refresh_from_db()
    assert (queued.contact, queued.lead) == (lead.converted_contact, None)


def test_the_converted_lead_points_to_what_it_became(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    client = client_for(rep)
    _convert(client, ada, "Analytical - Engine", django_capture_on_commit_callbacks)

    page = client.get(reverse("crm:lead_detail", args=[ada.pk])).content.decode()

    contact_url = ada.converted_contact.get_absolute_url()
    assert f'are now on <a href="{contact_url}">Ada Lovelace</a>' in page
    assert ada.converted_opportunity.get_absolute_url() in page


def test_converting_a_converted_lead_again_is_refused_in_words(
    client_for, rep, ada, django_capture_on_commit_callbacks
) -> None:
    client = client_for(rep)
    _convert(client, ada, "", django_capture_on_commit_callbacks)

    response = _convert(client, ada, "Again", django_capture_on_commit_callbacks)

    assert response.redirect_chain[-1][0] == ada.get_absolute_url()
    assert "was already converted on" in response.content.decode()
    assert "into Ada Lovelace; it was not converted again." in response.content.decode()
    assert Contact.objects.count() == 1


def test_a_lead_converted_while_the_form_was_open_is_refused_not_a_server_error(
    client_for, rep, ada, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    stale = Lead.objects.get(pk=ada.pk)  # as the page read it, before someone else converted
    lead_convert(lead_id=ada.pk)
    monkeypatch.setattr("crm.views.records.get_record_for_user", lambda *args, **kwargs: stale)

    response = _convert(client_for(rep), ada, "Deal", django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert "it was not converted again." in response.content.decode()
    assert Contact.objects.count() == 1


def test_the_service_refuses_a_second_conversion(ada) -> None:
    lead_convert(lead_id=ada.pk)

    with pytest.raises(LeadAlreadyConverted, match="was already converted"):
        lead_convert(lead_id=ada.pk, opportunity_name="Again")

    assert Contact.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_people_converting_at_once_make_one_contact(rep, make_lead) -> None:
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time (IMMEDIATE transactions): there is no race to test.
        pytest.skip("concurrent writers need PostgreSQL")
    leads = [make_lead(last_name=f"Racer {index}") for index in range(5)]

    for lead in leads:
        convert = partial(lead_convert, lead_id=lead.pk)
        errors = run_at_once(convert, convert)
        assert [type(error) for error in errors] == [LeadAlreadyConverted]

    assert Contact.objects.count() == 5
