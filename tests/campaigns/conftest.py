"""Campaign fixtures: a campaign factory, and tracking's real SMTP server and helpers."""

from collections.abc import Callable
from typing import Any

import pytest

from campaigns.list_email import list_email_create
from campaigns.members import members_add
from campaigns.models import Campaign, ListEmail, ListEmailRecipient
from crm.models import Contact, EmailMessageRelation, User
from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    embedded,
    sent_email,
    smtp_server,
    tracking_app,
)


@pytest.fixture
def make_campaign(rep: User) -> Callable[..., Campaign]:
    def make(**overrides: Any) -> Campaign:
        return Campaign.objects.create(**{"name": "Spring launch", "owner": rep, **overrides})

    return make


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    return make_campaign()


@pytest.fixture
def send_list_email(rep: User, django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Send a list email to all of a campaign's members, its batches run inline."""

    def send(campaign: Campaign, html_body: str = "<p>Hello</p>") -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return list_email_create(
                campaign=campaign,
                sender=rep,
                subject="News",
                html_body=html_body,
                members=campaign.members.all(),
            )

    return send


@pytest.fixture
def queued_list_email(rep: User, campaign: Campaign) -> Callable[[int], ListEmail]:
    """A list email to `count` new members p0@example.com, p1@..., queued and not yet sent."""

    def make(count: int) -> ListEmail:
        people = Contact.objects.bulk_create(
            Contact(first_name=f"P{i}", last_name="Member", email=f"p{i}@example.com", owner=rep)
            for i in range(count)
        )
        members_add(campaign=campaign, contact_ids=[p.pk for p in people])
        list_email = ListEmail.objects.create(
            campaign=campaign, sender=rep, subject="News", html_body="<p>Hi {{first_name}}</p>"
        )
        ListEmailRecipient.objects.bulk_create(
            ListEmailRecipient(list_email=list_email, contact=p) for p in people
        )
        return list_email

    return make


def copy_statuses(list_email: ListEmail) -> dict[str, str]:
    """Each handed member's address and their copy's delivery status."""
    return dict(
        EmailMessageRelation.objects.filter(
            email__in=list_email.recipients.values("email_id"), relation_type="to"
        ).values_list("address", "delivery_status")
    )
