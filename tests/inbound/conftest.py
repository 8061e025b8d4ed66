"""Inbound fixtures: the sent emails that mail comes back to, from tracking's fixtures."""

from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    embedded,
    sent,
    sent_email,
    smtp_server,
    tracking_app,
)
