"""The campaign's people lists show no engagement for a Don't Profile person; its figures still
count them."""

from datetime import UTC, datetime

from campaigns.members import members_add
from campaigns.models import Campaign
from campaigns.views import _members_with_engagement
from crm.models import OrgSettings
from tests.crm.activity import email_to

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _opened(person, campaign, opens: int) -> None:
    copy = email_to(person, when=WHEN)
    copy.email.campaign = campaign
    copy.email.save(update_fields=["campaign"])
    copy.human_opens = opens
    copy.human_clicks = 1
    copy.save(update_fields=["human_opens", "human_clicks"])


def test_members_list_leaves_out_a_dont_profile_persons_engagement(
    rep, make_contact, make_individual
) -> None:
    ada = make_contact(individual=make_individual(has_opted_out_profiling=True))
    grace = make_contact(first_name="Grace", last_name="Hopper", email="grace@example.com")
    campaign = Campaign.objects.create(name="Spring", owner=rep)
    members_add(campaign=campaign, contact_ids=[ada.pk, grace.pk], lead_ids=[])
    _opened(ada, campaign, 4)
    _opened(grace, campaign, 3)

    shown = {
        m.contact_id: (m.emails_sent, m.human_opens, m.human_clicks)
        for m in _members_with_engagement(campaign)
    }

    assert shown == {ada.pk: (1, None, None), grace.pk: (1, 3, 1)}

    org = OrgSettings.load()
    org.enforce_email_privacy = False  # the flags bind only when Setup enforces them
    org.save()
    shown = {m.contact_id: m.human_opens for m in _members_with_engagement(campaign)}
    assert shown == {ada.pk: 4, grace.pk: 3}
