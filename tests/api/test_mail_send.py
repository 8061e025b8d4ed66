"""Sending through the API: crm.sending's checks as the composer has them, refusals in words."""

import json

import pytest
from django.core import mail

from campaigns.models import Campaign
from crm.models import EmailMessage, OrgSettings

EMAILS = "/api/v1/emails/"


@pytest.fixture
def post(client_for, django_capture_on_commit_callbacks):
    def run(user, **fields):
        body = {"subject": "Hello {{first_name}}", "html_body": "<p>Hi {{first_name}}</p>"}
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(user).post(
                EMAILS, json.dumps(body | fields), content_type="application/json"
            )

    return run


def _setup(**changes) -> None:
    org = OrgSettings.load()
    for name, value in changes.items():
        setattr(org, name, value)
    org.save()


def test_it_sends_to_a_contact_named_by_id(post, rep, make_contact, make_account) -> None:
    acme = make_account()
    ada = make_contact(first_name="Ada", account=acme)

    response = post(rep, contacts=[ada.pk], cc=["boss@example.com"], related_account=acme.pk)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["not_sent"] == [] and response["Location"].endswith(f"/emails/{body['id']}/")
    email = EmailMessage.objects.get(pk=body["id"])
    assert (email.sender, email.related_account, email.delivery_status) == (rep, acme, "sent")
    to = email.relations.get(relation_type="to")
    assert (to.contact, to.is_tracked) == (ada, True)
    assert sorted(m.subject for m in mail.outbox) == ["Hello ", "Hello Ada"]


def test_a_typed_address_is_matched_to_the_senders_contact(post, rep, make_contact) -> None:
    ada = make_contact(first_name="Ada")

    response = post(rep, to=["ADA@example.com"])

    assert response.status_code == 201
    assert EmailMessage.objects.get().relations.get(relation_type="to").contact == ada


def test_dont_process_leaves_the_person_out_and_says_so(
    post, rep, make_contact, make_individual
) -> None:
    refused = make_contact(
        email="no@example.com", individual=make_individual(has_opted_out_processing=True)
    )

    response = post(rep, contacts=[refused.pk], to=["ok@example.com"])

    assert response.status_code == 201
    assert response.json()["not_sent"] == [{"address": "no@example.com", "reason": "Don't Process"}]
    assert [m.to for m in mail.outbox] == [["ok@example.com"]]


def test_the_daily_limit_refuses_in_words(post, rep) -> None:
    _setup(daily_single_email_limit=1)

    response = post(rep, to=["a@example.com", "b@example.com"])

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "daily single email limit of 1 recipients would be exceeded" in response.json()["detail"]
    assert not EmailMessage.objects.exists()


def test_an_unknown_merge_field_is_refused_in_words(post, rep) -> None:
    response = post(rep, to=["a@example.com"], html_body="<p>Hi {{nickname}}</p>")

    assert response.status_code == 422
    assert "Unknown merge field {{nickname}}" in response.json()["detail"]
    assert not EmailMessage.objects.exists()


def test_email_switched_off_in_setup_is_refused_in_words(post, rep) -> None:
    _setup(deliverability_access=OrgSettings.Deliverability.NO_ACCESS)

    response = post(rep, to=["a@example.com"])

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "Email is switched off: Setup's deliverability access is No access."
    )


def test_another_reps_contact_is_a_field_error(post, rep, other_rep, make_contact) -> None:
    theirs = make_contact(owner=other_rep)

    response = post(rep, contacts=[theirs.pk])

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "contacts": [f"Not found, or not visible to you: {theirs.pk}."]
    }
    assert not EmailMessage.objects.exists()


def test_a_bad_address_and_no_recipient_are_field_errors(post, rep) -> None:
    assert post(rep, to=["not an address"]).json()["errors"] == {
        "to.0": ["Enter a valid email address."]
    }
    assert post(rep).json()["errors"] == {"to": ["Add at least one recipient."]}


def test_it_counts_the_email_in_an_active_campaign(post, rep, manager) -> None:
    campaign = Campaign.objects.create(name="Spring", owner=manager)
    closed = Campaign.objects.create(name="Old", owner=manager, is_active=False)

    assert post(rep, to=["a@example.com"], campaign=closed.pk).status_code == 400
    response = post(rep, to=["a@example.com"], campaign=campaign.pk)

    assert response.status_code == 201
    assert EmailMessage.objects.get().campaign_id == campaign.pk


def test_a_user_who_may_not_send_gets_403(post, outsider) -> None:
    assert post(outsider, to=["a@example.com"]).status_code == 403
    assert not EmailMessage.objects.exists()


def test_a_token_sends_without_a_session(
    api_for, rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    ada = make_contact(first_name="Ada")
    body = {"contacts": [ada.pk], "subject": "Hi", "html_body": "<p>Hi {{first_name}}</p>"}

    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(rep).post(EMAILS, json.dumps(body), content_type="application/json")

    assert response.status_code == 201
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
