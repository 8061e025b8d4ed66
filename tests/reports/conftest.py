"""A hand-built email history, made through the real send, bounce, reply and rollup code."""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.influence import influence_recompute
from campaigns.members import members_add, members_advance
from campaigns.models import Campaign
from crm.models import (
    EmailMessage,
    EmailMessageRelation,
    Opportunity,
    OrgSettings,
    TrackedLink,
    User,
)
from crm.sending import email_send
from inbound.effects import bounce_record, reply_record
from tests.tracking.conftest import (  # noqa: F401 -- fixtures these tests use
    embedded,
    sent_email,
    smtp_server,
    tracking_app,
)
from tracking.models import TrackingEvent
from tracking.recount import recount
from tracking.rollups import rollups_add_events

DAY1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def day(n: int, hour: int = 10) -> datetime:
    """Day n of the history (day 1 is DAY1's date) at `hour` UTC."""
    return DAY1 + timedelta(days=n - 1, hours=hour - 10)


@dataclass
class History:
    rep: User
    other_rep: User
    campaign: Campaign
    launch: EmailMessage  # rep to Ann and Bob, day 1, in the campaign
    hello: EmailMessage  # other_rep to Cy, day 1
    follow_up: EmailMessage  # rep to Cy, day 2
    ann: EmailMessageRelation
    bob: EmailMessageRelation
    cy_hello: EmailMessageRelation
    cy_follow_up: EmailMessageRelation


def add_events(rows: Sequence[tuple[EmailMessageRelation, str, str, datetime, str]]) -> None:
    """Store one batch of tracking events (relation, kind, label, time, link URL), count them,
    move campaign members and add them to the rollups, as ingestion does."""
    links = {(link.email_id, link.url): link for link in TrackedLink.objects.all()}
    stored = TrackingEvent.objects.bulk_create(
        TrackingEvent(
            event_id=uuid.uuid4(),
            kind=kind,
            label=label,
            relation=relation,
            link=links[(relation.email_id, url)] if url else None,
            occurred_at=when,
            reason="test",
            method="GET",
        )
        for relation, kind, label, when, url in rows
    )
    relation_ids = {event.relation_id for event in stored}
    recount(
        relation_ids=relation_ids,
        link_ids={event.link_id for event in stored if event.link_id},
        machine_open_filtering=OrgSettings.load().machine_open_filtering,
    )
    members_advance(relation_ids=relation_ids)
    rollups_add_events(event_ids=[event.pk for event in stored])


PRICING = "https://example.com/pricing"
DOCS = "https://example.com/docs"


@pytest.fixture
def send_at(django_capture_on_commit_callbacks) -> Callable[..., EmailMessage]:
    def send(when: datetime, **kwargs: object) -> EmailMessage:
        with (
            time_machine.travel(when, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            return email_send(**kwargs)  # type: ignore[arg-type]

    return send


@pytest.fixture
def history(rep, other_rep, manager, make_contact, send_at) -> History:
    campaign = Campaign.objects.create(name="Spring launch", owner=manager)
    ann = make_contact(first_name="Ann", last_name="Archer", email="ann@example.com")
    bob = make_contact(first_name="Bob", last_name="Baker", email="bob@example.com")
    cy = make_contact(first_name="Cy", last_name="Cole", email="cy@example.com", owner=other_rep)
    body = f'<p>See <a href="{PRICING}">pricing</a> and <a href="{DOCS}">docs</a></p>'
    launch = send_at(
        day(1),
        sender=rep,
        to=[ann, bob],
        subject="Launch",
        html_body=body,
        source=EmailMessage.Source.LIST,
        campaign=campaign,
    )
    # Ann and Bob joined the campaign on day 1; Cy never did.
    members_add(campaign=campaign, contact_ids=[ann.pk, bob.pk])
    campaign.members.update(created_at=day(1, 9))
    hello = send_at(day(1, 11), sender=other_rep, to=[cy], subject="Hello", html_body=body)
    follow_up = send_at(day(2), sender=rep, to=[cy], subject="Following up", html_body=body)
    history = History(
        rep=rep,
        other_rep=other_rep,
        campaign=campaign,
        launch=launch,
        hello=hello,
        follow_up=follow_up,
        ann=launch.relations.get(contact=ann),
        bob=launch.relations.get(contact=bob),
        cy_hello=hello.relations.get(contact=cy),
        cy_follow_up=follow_up.relations.get(contact=cy),
    )
    h = history
    # Two batches, so a recipient's second open arrives in a later batch than their first.
    add_events(
        [
            (h.ann, "open", "human", day(2), ""),
            (h.ann, "open", "apple_mpp", day(2, 9), ""),
            (h.bob, "open", "image_proxy", day(2, 12), ""),
            (h.cy_hello, "open", "bot", day(2, 13), ""),
        ]
    )
    add_events(
        [
            (h.ann, "open", "human", day(3), ""),
            (h.ann, "click", "human", day(3, 11), PRICING),
            (h.bob, "click", "scanner", day(3, 12), PRICING),
            (h.bob, "click", "scanner", day(3, 12), DOCS),
            (h.cy_hello, "open", "human", day(4), ""),
            (h.cy_follow_up, "open", "human", day(4), ""),
            (h.cy_follow_up, "click", "human", day(4, 11), DOCS),
        ]
    )
    bounce_record(relation=h.bob, hard=True, status="5.1.1", diagnostic="No such user", when=day(3))
    for original, when in ((h.ann, day(3, 15)), (h.ann, day(4, 15)), (h.cy_follow_up, day(5))):
        reply_record(
            original=original,
            from_address=original.address,
            subject="Re: hi",
            html_body="<p>Thanks</p>",
            text_body="Thanks",
            message_id=f"<reply-{when.timestamp()}@example.com>",
            received_at=when,
            is_auto_reply=False,
        )
    members_advance(relation_ids=[h.ann.pk, h.cy_follow_up.pk])  # as inbound does after a reply
    # The opportunities the campaign influenced (Primary Campaign Source), closing on days 2
    # and 4, one outside the days of the history, and one without a campaign.
    for name, owner, stage, amount, close, source in (
        ("Ann's pilot", rep, "proposal", 1000, day(4), campaign),
        ("Bob's renewal", other_rep, "closed_won", 500, day(2), campaign),
        ("Next year", rep, "prospecting", 700, day(40), campaign),
        ("Cy's deal", other_rep, "closed_won", 300, day(3), None),
    ):
        opportunity = Opportunity.objects.create(
            name=name, owner=owner, stage=stage, amount=amount, close_date=close.date(),
            campaign=source,
        )  # fmt: skip
        # Created the day after the launch, except the one for next year (created on day 30).
        created = day(30) if name == "Next year" else day(2)
        Opportunity.objects.filter(pk=opportunity.pk).update(created_at=created)
    influence_recompute()
    for relation in (h.ann, h.bob, h.cy_hello, h.cy_follow_up):
        relation.refresh_from_db()
    assert timezone.get_current_timezone_name() == "UTC"
    return history
