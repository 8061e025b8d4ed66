"""Campaign fixtures: a campaign factory, and tracking's real SMTP server and helpers."""

from collections.abc import Callable
from typing import Any

import pytest

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
