"""Campaign fixtures: a campaign factory, and tracking's real SMTP server and helpers."""

from collections.abc import Callable
from typing import Any

import pytest

from campaigns.list_email import list_email_create
from campaigns.models import Campaign
from crm.models import User
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
