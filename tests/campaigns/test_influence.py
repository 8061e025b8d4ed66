"""Campaign influence: each model on a hand-computed example, the time frame, the recompute when
records change, and the report (pipeline, won revenue, ROI)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.influence import influence_recompute
from campaigns.models import CampaignInfluence, CampaignMember
from crm.models import OpportunityContactRole, OrgSettings


@pytest.fixture
def deal(make_campaign, make_contact, make_opportunity):
    """An opportunity of 1,000 created now, its two contacts, and their campaign touches:
    Ada joined A 30 days ago and C 10 days ago; Bob joined B 20 days ago. D was joined 400 days
    ago (outside the 365-day frame) and E a day after the opportunity was created."""
    now = timezone.now()
    ada = make_contact(first_name="Ada", email="ada@example.com")
    bob = make_contact(first_name="Bob", email="bob@example.com")
    campaigns = {name: make_campaign(name=name) for name in "ABCDEP"}
    opportunity = make_opportunity(amount=Decimal("1000.00"), campaign=campaigns["P"])
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=ada, is_primary=True)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=bob)
    for name, person, days_before in (
        ("A", ada, 30),
        ("B", bob, 20),
        ("C", ada, 10),
        ("D", ada, 400),
        ("E", bob, -1),
    ):
        CampaignMember.objects.create(
            campaign=campaigns[name],
            contact=person,
            status=campaigns[name].statuses.get(is_default=True),
            created_at=now - timedelta(days=days_before),
        )
    influence_recompute(opportunity_ids=[opportunity.pk])
    return opportunity, ada, bob


def _shares(model: str) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        row.campaign.name: (row.influence, row.revenue_share)
        for row in CampaignInfluence.objects.filter(model=model).select_related("campaign")
    }


def test_primary_campaign_source_gives_the_opportunitys_campaign_everything(deal) -> None:
    _, ada, _ = deal
    assert _shares("primary") == {"P": (Decimal("100.0000"), Decimal("1000.00"))}
    assert CampaignInfluence.objects.get(model="primary").contact == ada


def test_first_touch_gives_the_earliest_campaign_in_the_frame_everything(deal) -> None:
    assert _shares("first_touch") == {"A": (Decimal("100.0000"), Decimal("1000.00"))}


def test_last_touch_gives_the_latest_campaign_before_creation_everything(deal) -> None:
    assert _shares("last_touch") == {"C": (Decimal("100.0000"), Decimal("1000.00"))}


def test_even_distribution_shares_equally(deal) -> None:
    third = (Decimal("33.3333"), Decimal("333.33"))
    assert _shares("even") == {"A": third, "B": third, "C": third}
    assert CampaignInfluence.objects.get(model="even", campaign__name="B").contact == deal[2]


def test_position_based_gives_40_to_the_first_and_last_and_20_between(deal) -> None:
    assert _shares("position") == {
        "A": (Decimal("40.0000"), Decimal("400.00")),
        "B": (Decimal("20.0000"), Decimal("200.00")),
        "C": (Decimal("40.0000"), Decimal("400.00")),
    }


def test_position_based_splits_two_touches_half_and_half(deal) -> None:
    opportunity, _, _ = deal
    CampaignMember.objects.filter(campaign__name="B").delete()
    influence_recompute(opportunity_ids=[opportunity.pk])

    assert _shares("position") == {
        "A": (Decimal("50.0000"), Decimal("500.00")),
        "C": (Decimal("50.0000"), Decimal("500.00")),
    }


def test_a_shorter_time_frame_leaves_out_older_touches(deal) -> None:
    org = OrgSettings.load()
    org.influence_time_frame_days = 15
    org.save()

    influence_recompute()

    assert _shares("first_touch") == {"C": (Decimal("100.0000"), Decimal("1000.00"))}


def test_a_change_to_contact_roles_recomputes_on_commit(
    deal, django_capture_on_commit_callbacks
) -> None:
    _, _, bob = deal
    with django_capture_on_commit_callbacks(execute=True):
        OpportunityContactRole.objects.filter(contact=bob).delete()

    assert set(_shares("even")) == {"A", "C"}


def test_a_change_to_the_amount_recomputes_on_commit(
    deal, django_capture_on_commit_callbacks
) -> None:
    opportunity, _, _ = deal
    opportunity.amount = Decimal("2000.00")
    with django_capture_on_commit_callbacks(execute=True):
        opportunity.save()

    assert _shares("last_touch") == {"C": (Decimal("100.0000"), Decimal("2000.00"))}


def test_the_report_shows_pipeline_won_revenue_and_roi(client_for, manager, deal) -> None:
    opportunity, _, _ = deal
    a = CampaignInfluence.objects.get(model="first_touch").campaign
    a.actual_cost = Decimal("250.00")
    a.save()
    opportunity.stage = "closed_won"
    opportunity.save()
    influence_recompute()

    page = client_for(manager).get("/campaigns/influence/?model=first_touch").content.decode()

    row = page[page.index(f'href="{a.get_absolute_url()}"') :].split("</tr>")[0]
    cells = [cell.split(">")[-1] for cell in row.split("</td>")[1:-1]]
    # opportunities, pipeline (none open), won revenue, cost, ROI = (1000 - 250) / 250
    assert cells == ["1", "0.00", "1,000.00", "250.00", "300.0%"]
