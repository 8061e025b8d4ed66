"""Two influence recomputes at the same moment leave one set of influence rows."""

from decimal import Decimal

import pytest
from django.db import connection

from campaigns.influence import influence_recompute
from campaigns.models import CampaignInfluence, CampaignMember
from crm.models import OpportunityContactRole
from tests.conftest import run_at_once

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_two_recomputes_at_once_do_not_count_influence_twice(
    make_campaign, make_contact, make_opportunity
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")
    campaign = make_campaign(name="Launch")
    ada = make_contact(email="ada@example.com")
    CampaignMember.objects.create(
        campaign=campaign, contact=ada, status=campaign.statuses.get(is_default=True)
    )
    for n in range(20):
        opportunity = make_opportunity(name=f"Deal {n}", amount=Decimal(100), campaign=campaign)
        OpportunityContactRole.objects.create(opportunity=opportunity, contact=ada)
    influence_recompute()
    expected = CampaignInfluence.objects.count()

    errors = run_at_once(influence_recompute, influence_recompute)

    assert errors == []
    assert CampaignInfluence.objects.count() == expected
