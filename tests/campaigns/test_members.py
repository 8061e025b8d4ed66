"""Members: added from the Contact and Lead lists (ticked rows or the whole filter), removed,
statuses set by hand; a person is in a campaign once, as a Contact or a Lead."""

from urllib.parse import urlencode

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from campaigns.members import members_add
from campaigns.models import CampaignMember


def test_a_campaign_gets_the_default_statuses_with_sent_as_default(campaign) -> None:
    statuses = list(campaign.statuses.values_list("label", "is_default", "has_responded"))
    assert statuses == [
        ("Sent", True, False),
        ("Opened", False, False),
        ("Clicked", False, False),
        ("Responded", False, True),
    ]


def test_the_owner_adds_ticked_contacts_after_confirming(
    client_for, rep, campaign, make_contact
) -> None:
    ada, grace, _ = (make_contact(email=f"p{i}@example.com") for i in range(3))
    client = client_for(rep)
    query = {"kind": "contact", "scope": "selected", "select": [ada.pk, grace.pk]}

    page = client.get(f"/campaigns/add-members/?{urlencode(query, doseq=True)}")

    assert page.status_code == 200 and "2</strong> contacts" in page.content.decode()
    assert not CampaignMember.objects.exists()  # a GET only asks
    response = client.post("/campaigns/add-members/", {**query, "campaign": campaign.pk})
    assert response.status_code == 302
    members = campaign.members.select_related("status")
    assert {m.contact_id for m in members} == {ada.pk, grace.pk}
    assert {m.status.label for m in members} == {"Sent"}


def test_add_all_takes_every_row_of_the_lists_filter(client_for, rep, campaign, make_lead) -> None:
    for i in range(30):  # more than one page
        make_lead(last_name=f"Hopper{i}", email=f"h{i}@example.com", company="Navy")
    make_lead(last_name="Other", company="Acme", email="o@example.com")

    client_for(rep).post(
        "/campaigns/add-members/",
        {"kind": "lead", "scope": "all", "query": "q=Navy", "campaign": campaign.pk},
    )

    assert campaign.members.filter(lead__isnull=False).count() == 30


def test_a_person_is_added_once_however_often_they_are_added(
    client_for, rep, campaign, make_contact
) -> None:
    ada = make_contact()
    data = {"kind": "contact", "scope": "selected", "select": [ada.pk], "campaign": campaign.pk}
    client = client_for(rep)

    client.post("/campaigns/add-members/", data)
    response = client.post("/campaigns/add-members/", data, follow=True)

    assert campaign.members.count() == 1
    assert "0 contacts added (1 already members)" in response.content.decode()


def test_a_member_is_a_contact_or_a_lead_never_both(campaign, make_contact, make_lead) -> None:
    status = campaign.statuses.get(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignMember.objects.create(
            campaign=campaign, contact=make_contact(), lead=make_lead(), status=status
        )


def test_a_rep_cannot_add_members_to_someone_elses_campaign(
    client_for, other_rep, campaign, make_contact
) -> None:
    contact = make_contact(owner=other_rep)
    response = client_for(other_rep).post(
        "/campaigns/add-members/",
        {"kind": "contact", "scope": "selected", "select": [contact.pk], "campaign": campaign.pk},
    )

    assert response.status_code == 200  # the form again, with the error
    assert not campaign.members.exists()


def test_only_records_the_user_may_see_are_added(
    client_for, rep, other_rep, campaign, make_contact
) -> None:
    theirs = make_contact(owner=other_rep, email="theirs@example.com")

    client_for(rep).post(
        "/campaigns/add-members/",
        {"kind": "contact", "scope": "selected", "select": [theirs.pk], "campaign": campaign.pk},
    )

    assert not campaign.members.exists()


def test_the_owner_removes_ticked_members(client_for, rep, campaign, make_contact) -> None:
    ada, grace = make_contact(email="a@example.com"), make_contact(email="g@example.com")
    status = campaign.statuses.get(is_default=True)
    first = CampaignMember.objects.create(campaign=campaign, contact=ada, status=status)
    CampaignMember.objects.create(campaign=campaign, contact=grace, status=status)

    client_for(rep).post(
        f"/campaigns/{campaign.pk}/members/", {"action": "remove", "select": [first.pk]}
    )

    assert list(campaign.members.values_list("contact_id", flat=True)) == [grace.pk]


def test_setting_responded_by_hand_marks_the_member_responded(
    client_for, rep, campaign, make_contact
) -> None:
    member = CampaignMember.objects.create(
        campaign=campaign, contact=make_contact(), status=campaign.statuses.get(label="Sent")
    )
    responded = campaign.statuses.get(label="Responded")

    client_for(rep).post(
        f"/campaigns/{campaign.pk}/members/",
        {"action": "status", "status": responded.pk, "select": [member.pk]},
    )

    member.refresh_from_db()
    assert member.status == responded and member.has_responded
    assert member.first_responded_at is not None


def test_the_list_pages_offer_add_to_campaign(client_for, rep, make_contact, make_lead) -> None:
    make_contact()
    make_lead()
    client = client_for(rep)
    for path in ("/contacts/", "/leads/"):
        page = client.get(path + "?q=a").content.decode()
        assert 'action="/campaigns/add-members/"' in page
        assert 'name="query" value="q=a"' in page and 'name="select"' in page


def test_the_member_list_names_only_people_the_user_may_see(
    client_for, rep, other_rep, manager, campaign, make_contact
) -> None:
    mine = make_contact(last_name="Mine", email="mine@example.com")
    theirs = make_contact(last_name="Theirs", email="theirs@example.com", owner=other_rep)
    members_add(campaign=campaign, contact_ids=[mine.pk, theirs.pk])
    url = reverse("campaigns:campaign_detail", args=[campaign.pk])

    as_other_rep = client_for(other_rep).get(url).content.decode()
    as_manager = client_for(manager).get(url).content.decode()

    assert "theirs@example.com" in as_other_rep and "mine@example.com" not in as_other_rep
    assert "theirs@example.com" in as_manager and "mine@example.com" in as_manager
