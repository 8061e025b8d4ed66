"""An opportunity's (and an account's) timeline shows the email its activity card counts: its
people's and its own, each email once, and only what the viewer may see."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.activity import activity_metrics_recompute
from crm.models import (
    ActivityMetric,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    OpportunityContactRole,
    OrgSettings,
)
from crm.timeline import timeline
from tests.crm.activity import event


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def _email(
    subject: str,
    *,
    when,
    to=(),
    incoming: bool = False,
    copy_status: str = "sent",
    **email_fields,
) -> EmailMessage:
    """An email, with one copy for each person in `to` (the sender, for an incoming one)."""
    email = EmailMessage.objects.create(
        subject=subject,
        from_address="rita@openrate.example",
        status="received" if incoming else "sent",
        delivery_status="" if incoming else {"sent": "sent", "failed": "failed"}[copy_status],
        incoming=incoming,
        message_date=when,
        **email_fields,
    )
    for person in to:
        EmailMessageRelation.objects.create(
            email=email,
            relation_type="from" if incoming else "to",
            address=person.email,
            contact=person,
            delivery_status="sent" if incoming else copy_status,
            sent_at=None if incoming else when,
        )
    return email


@pytest.fixture
def deal(make_account, make_contact, make_opportunity, now):
    """An opportunity at an account with Ada and Bob in contact roles, and its email: one to both
    (once on the timeline, once on the card), one related to the deal itself, one related to it
    and sent to Ada (once too), one from Ada, one that failed, one older than 30 days, and one to
    Carol, at the account but not on the deal."""
    account = make_account(name="Analytical")
    ada = make_contact(first_name="Ada", email="ada@example.com", account=account)
    bob = make_contact(first_name="Bob", email="bob@example.com", account=account)
    carol = make_contact(first_name="Carol", email="carol@example.com", account=account)
    opportunity = make_opportunity(account=account, name="Engine")
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=ada, is_primary=True)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=bob)
    both = _email("To both", when=now - timedelta(days=1), to=[ada, bob])
    event(both.relations.get(contact=ada), when=now - timedelta(hours=20))
    event(both.relations.get(contact=bob), when=now - timedelta(hours=19), kind="click")
    _email(
        "About the deal",
        when=now - timedelta(days=2),
        to=[make_contact(last_name="Outsider", email="x@example.org")],
        related_opportunity=opportunity,
    )
    _email(
        "Proposal", when=now - timedelta(days=2, hours=1), to=[ada], related_opportunity=opportunity
    )
    _email("From Ada", when=now - timedelta(days=3), to=[ada], incoming=True)
    _email("Bounced off", when=now - timedelta(days=4), to=[bob], copy_status="failed")
    _email("Last season", when=now - timedelta(days=45), to=[ada])
    _email("To Carol", when=now - timedelta(days=5), to=[carol], related_account=account)
    return opportunity


def _all_emails(record) -> list:
    """Every email entry of the record's timeline, page after page."""
    entries, cursor, month = [], "", ""
    while True:
        page = timeline(record, kind="emails", cursor=cursor, limit=2, previous_month=month)
        entries += page.entries
        if not page.next_cursor:
            return entries
        cursor, month = page.next_cursor, page.entries[-1].when.strftime("%Y-%m")


def test_an_opportunity_shows_its_contact_roles_email_and_its_own_once(deal) -> None:
    subjects = [str(entry.obj) for entry in _all_emails(deal)]

    assert subjects == [
        "To both",
        "About the deal",
        "Proposal",
        "From Ada",
        "Bounced off",
        "Last season",
    ]


@pytest.mark.parametrize("kind", ["opportunity", "account"])
def test_the_activity_card_counts_the_emails_the_timeline_shows(deal, now, kind) -> None:
    record = deal if kind == "opportunity" else deal.account
    activity_metrics_recompute()

    card = ActivityMetric.objects.get(**{kind: record})
    shown = _all_emails(record)
    sent = [e for e in shown if not e.obj.incoming and ("Failed", "danger") not in e.badges]
    received = [e for e in shown if e.obj.incoming]
    recent = now - timedelta(days=30)

    assert card.emails_sent_30d == len([e for e in sent if e.when >= recent])
    assert card.emails_received_30d == len([e for e in received if e.when >= recent])
    assert card.first_email_at == min(e.when for e in sent + received)
    assert card.last_email_sent_at == max(e.when for e in sent)
    assert card.last_email_received_at == max(e.when for e in received)
    assert (card.human_opens_30d, card.human_clicks_30d) == (1, 1)
    # "To both" and "Proposal" once each, and the record's own: "About the deal" or (the
    # account's) "To Carol".
    assert card.emails_sent_30d == 3


def test_a_rep_sees_only_the_email_of_the_contact_roles_they_may_see(
    client_for, rep, other_rep, manager, make_contact, deal, now
) -> None:
    theirs = make_contact(first_name="Dan", email="dan@example.com", owner=other_rep)
    OpportunityContactRole.objects.create(opportunity=deal, contact=theirs)
    _email("To Dan", when=now - timedelta(minutes=5), to=[theirs])
    url = reverse("crm:opportunity_detail", args=[deal.pk])

    as_rep = client_for(rep).get(url).context["timeline"].entries
    as_manager = client_for(manager).get(url).context["timeline"].entries

    assert "To Dan" not in [str(entry.obj) for entry in as_rep]
    assert "To Dan" in [str(entry.obj) for entry in as_manager]


def test_the_opportunity_page_reads_its_timeline_in_a_fixed_number_of_queries(
    client_for, rep, deal, now, django_assert_num_queries
) -> None:
    people = list(Contact.objects.filter(roles__opportunity=deal))
    for index in range(30):
        _email(f"E{index}", when=now - timedelta(minutes=index), to=people)
    client = client_for(rep)
    OrgSettings.load()  # Setup is cached after its first read
    client.get(reverse("crm:opportunity_detail", args=[deal.pk]))  # warm the session

    # session, user, permissions, the opportunity, its roles, emails, done tasks, open tasks,
    # scheduled emails, the navbar's: whatever the number of emails or of the people they went to
    with django_assert_num_queries(12):
        page = client.get(reverse("crm:opportunity_detail", args=[deal.pk]))

    assert len(page.context["timeline"].entries) == 20
    assert len({entry.pk for entry in page.context["timeline"].entries}) == 20
