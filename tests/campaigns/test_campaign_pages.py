"""Campaign pages: the list, create and edit, and the detail page's computed figures, with the
hierarchy rolled up."""

from decimal import Decimal

from campaigns.members import members_add
from campaigns.models import Campaign, CampaignMember


def test_the_list_shows_campaigns_with_member_counts_in_few_queries(
    client_for, rep, make_campaign, make_contact, django_assert_num_queries
) -> None:
    for i in range(30):
        make_campaign(name=f"Campaign {i:02}")
    first = Campaign.objects.get(name="Campaign 00")
    members_add(campaign=first, contact_ids=[make_contact().pk])
    client = client_for(rep)

    # session, user, permissions (2), count, page of rows; the navigation's task count and roles
    with django_assert_num_queries(8):
        page = client.get("/campaigns/?sort=name").content.decode()

    assert "30 campaigns" in page and "Campaign 24" in page and "Campaign 25" not in page


def test_a_manager_creates_a_campaign_and_a_rep_may_not(client_for, rep, manager) -> None:
    data = {
        "name": "Webinar",
        "type": "webinar",
        "status": "planned",
        "budgeted_cost": "500",
        "actual_cost": "0",
        "expected_revenue": "0",
        "expected_response": "5",
        "is_active": "on",
        "owner": manager.pk,
    }

    assert client_for(rep).post("/campaigns/new/", data).status_code == 403
    response = client_for(manager).post("/campaigns/new/", data)

    campaign = Campaign.objects.get()
    assert response.url == campaign.get_absolute_url()
    assert (campaign.name, campaign.owner, campaign.statuses.count()) == ("Webinar", manager, 4)


def test_an_end_before_the_start_is_refused_and_nothing_is_saved(client_for, manager) -> None:
    response = client_for(manager).post(
        "/campaigns/new/",
        {
            "name": "Bad dates",
            "type": "email",
            "status": "planned",
            "start_date": "2026-05-02",
            "end_date": "2026-05-01",
            "budgeted_cost": "0",
            "actual_cost": "0",
            "expected_revenue": "0",
            "expected_response": "0",
            "owner": manager.pk,
        },
    )

    assert "The end date is before the start date." in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_campaign_cannot_become_its_own_descendants_child(
    client_for, manager, make_campaign
) -> None:
    parent = make_campaign(name="Parent")
    child = make_campaign(name="Child", parent=parent)

    page = client_for(manager).get(f"/campaigns/{parent.pk}/edit/").content.decode()

    parents = page[page.index('name="parent"') :].split("</select>")[0]
    assert f'value="{child.pk}"' not in parents and f'value="{parent.pk}"' not in parents


def test_the_owner_may_edit_and_another_rep_may_only_look(
    client_for, rep, other_rep, campaign
) -> None:
    assert client_for(other_rep).get(f"/campaigns/{campaign.pk}/").status_code == 200
    assert client_for(other_rep).get(f"/campaigns/{campaign.pk}/edit/").status_code == 403
    assert client_for(rep).get(f"/campaigns/{campaign.pk}/edit/").status_code == 200


def test_the_detail_page_computes_its_figures_and_rolls_up_its_children(
    client_for,
    rep,
    make_campaign,
    make_contact,
    make_lead,
    make_opportunity,
    django_assert_max_num_queries,
) -> None:
    parent = make_campaign(name="Parent")
    child = make_campaign(name="Child", parent=parent)
    grandchild = make_campaign(name="Grandchild", parent=child)
    members_add(
        campaign=parent,
        contact_ids=[make_contact(email=f"c{i}@example.com").pk for i in range(2)],
    )
    members_add(campaign=child, lead_ids=[make_lead().pk])
    members_add(campaign=grandchild, contact_ids=[make_contact(email="g@example.com").pk])
    member = grandchild.members.get()
    member.status = grandchild.statuses.get(label="Responded")
    member.has_responded = True
    member.save()
    make_opportunity(campaign=parent, amount=Decimal("100"))
    make_opportunity(campaign=grandchild, amount=Decimal("250"), stage="closed_won")
    client = client_for(rep)

    # A fixed number: the figures are aggregates, whatever the hierarchy (Setup is read once,
    # for whether Don't Profile binds).
    with django_assert_max_num_queries(21):
        page = client.get(f"/campaigns/{parent.pk}/").content.decode()

    own = page[page.index("This campaign") :].split("</tr>")[0]
    rolled = page[page.index("With its hierarchy") :].split("</tr>")[0]

    def cells(row: str) -> list[str]:
        return [cell.split(">")[-1] for cell in row.split("</td>")[:-1]]

    # contacts, leads, sent, responses, opportunities, won, amount, won amount
    assert cells(own) == ["2", "0", "2", "0", "1", "0", "100.00", "0.00"]
    assert cells(rolled) == ["3", "1", "4", "1", "2", "1", "350.00", "250.00"]
    assert CampaignMember.objects.count() == 4


def test_the_member_list_shows_status_and_engagement_and_pages(
    client_for, rep, campaign, make_contact, django_assert_max_num_queries
) -> None:
    members_add(
        campaign=campaign,
        contact_ids=[make_contact(email=f"m{i}@example.com").pk for i in range(30)],
    )
    client = client_for(rep)

    with django_assert_max_num_queries(20):
        page = client.get(f"/campaigns/{campaign.pk}/?kind=contact").content.decode()

    assert "30 members" in page and page.count('name="select"') == 25
    assert "Send list email to these members" in page
