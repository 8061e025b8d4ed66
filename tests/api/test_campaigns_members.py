"""Campaigns and their members: read by anyone who sees campaigns; members added, given a
status and removed by whoever may edit the campaign, through campaigns.members."""

import json

import pytest

from campaigns.models import Campaign, CampaignMember

CAMPAIGNS = "/api/v1/campaigns/"
MEMBERS = "/api/v1/campaign-members/"


@pytest.fixture
def campaign(manager):
    return Campaign.objects.create(name="Spring launch", owner=manager)


def _json(client, method, url, body=None):
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


@pytest.mark.parametrize("persona", ["rep", "manager", "admin_user"])
def test_every_role_reads_campaigns_with_their_statuses(
    client_for, request, persona, campaign
) -> None:
    client = client_for(request.getfixturevalue(persona))

    rows = client.get(CAMPAIGNS).json()["results"]
    one = client.get(f"{CAMPAIGNS}{campaign.pk}/").json()

    assert [row["name"] for row in rows] == ["Spring launch"]
    assert [s["label"] for s in one["statuses"]] == ["Sent", "Opened", "Clicked", "Responded"]


def test_a_manager_adds_a_contact_with_a_status(client_for, manager, campaign, make_contact):
    ada = make_contact()
    opened = campaign.statuses.get(label="Opened")

    response = _json(
        client_for(manager),
        "post",
        MEMBERS,
        {"campaign": campaign.pk, "contact": ada.pk, "status": opened.pk},
    )

    assert response.status_code == 201, response.content
    member = CampaignMember.objects.get(campaign=campaign, contact=ada)
    assert member.status == opened
    assert response.json()["status_label"] == "Opened"


def test_a_lead_joins_with_the_default_status_and_only_once(
    client_for, manager, campaign, make_lead
) -> None:
    grace = make_lead()
    client = client_for(manager)
    body = {"campaign": campaign.pk, "lead": grace.pk}

    assert _json(client, "post", MEMBERS, body).json()["status_label"] == "Sent"
    again = _json(client, "post", MEMBERS, body)

    assert again.status_code == 409
    assert again.json()["detail"] == "This lead is already a member of the campaign."
    assert campaign.members.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact": None, "lead": None}, "non_field_errors"),
        ({"status": 999999}, "status"),
        ({"contact": 999999}, "contact"),
    ],
)
def test_a_bad_addition_is_a_field_error(
    client_for, manager, campaign, make_contact, body, field
) -> None:
    ada = make_contact()
    wanted = {"campaign": campaign.pk, "contact": ada.pk} | body

    response = _json(client_for(manager), "post", MEMBERS, wanted)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not campaign.members.exists()


def test_a_rep_may_not_change_the_members_of_a_campaign_they_do_not_own(
    client_for, rep, campaign, make_contact
) -> None:
    ada = make_contact()
    client = client_for(rep)
    CampaignMember.objects.create(
        campaign=campaign, contact=ada, status=campaign.statuses.get(label="Sent")
    )
    member = campaign.members.get()

    added = _json(client, "post", MEMBERS, {"campaign": campaign.pk, "contact": ada.pk})
    changed = _json(
        client, "patch", f"{MEMBERS}{member.pk}/", {"status": campaign.statuses.last().pk}
    )
    removed = client.delete(f"{MEMBERS}{member.pk}/")

    assert (added.status_code, changed.status_code, removed.status_code) == (403, 403, 403)
    assert campaign.members.get().status.label == "Sent"


def test_a_rep_sees_only_the_members_whose_records_they_see(
    client_for, rep, other_rep, campaign, make_contact
) -> None:
    sent = campaign.statuses.get(label="Sent")
    mine = CampaignMember.objects.create(campaign=campaign, contact=make_contact(), status=sent)
    theirs = CampaignMember.objects.create(
        campaign=campaign,
        contact=make_contact(email="o@example.com", owner=other_rep),
        status=sent,
    )
    client = client_for(rep)

    rows = client.get(f"{MEMBERS}?campaign={campaign.pk}").json()["results"]

    assert [row["id"] for row in rows] == [mine.pk]
    assert client.get(f"{MEMBERS}{theirs.pk}/").status_code == 404


def test_a_manager_sets_a_status_and_a_responded_one_dates_the_response(
    client_for, manager, campaign, make_contact
) -> None:
    member = CampaignMember.objects.create(
        campaign=campaign, contact=make_contact(), status=campaign.statuses.get(label="Sent")
    )
    responded = campaign.statuses.get(label="Responded")

    response = _json(
        client_for(manager), "patch", f"{MEMBERS}{member.pk}/", {"status": responded.pk}
    )

    assert response.status_code == 200
    member.refresh_from_db()
    assert (member.status, member.has_responded) == (responded, True)
    assert member.first_responded_at is not None


def test_another_campaigns_status_is_refused(client_for, manager, campaign, make_contact) -> None:
    other = Campaign.objects.create(name="Other", owner=manager)
    member = CampaignMember.objects.create(
        campaign=campaign, contact=make_contact(), status=campaign.statuses.get(label="Sent")
    )

    response = _json(
        client_for(manager),
        "patch",
        f"{MEMBERS}{member.pk}/",
        {"status": other.statuses.first().pk},
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["Not one of this campaign's member statuses."]}


def test_a_manager_removes_a_member(client_for, manager, campaign, make_contact) -> None:
    member = CampaignMember.objects.create(
        campaign=campaign, contact=make_contact(), status=campaign.statuses.get(label="Sent")
    )

    response = client_for(manager).delete(f"{MEMBERS}{member.pk}/")

    assert response.status_code == 204
    assert not campaign.members.exists()


def test_the_owner_rep_may_change_their_campaigns_members(client_for, rep, make_contact) -> None:
    campaign = Campaign.objects.create(name="Rita's", owner=rep)

    response = _json(
        client_for(rep), "post", MEMBERS, {"campaign": campaign.pk, "contact": make_contact().pk}
    )

    assert response.status_code == 201
