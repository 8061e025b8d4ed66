"""Two ingesters draining the buffer at once store every event once and count it once."""

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import run_at_once
from tests.tracking.conftest import CHROME
from tracking import buffer
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 2_000


def test_two_ingesters_at_once_count_every_event_exactly_once(embedded, sent_email) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    now = timezone.now().timestamp()
    buffer.EventWriter(None).write(
        [
            buffer.RawEvent(uuid.uuid4().hex, "open", token, now - n, "", CHROME, "GET")
            for n in range(EVENTS)
        ]
    )

    def drain() -> None:
        while events_ingest(batch_size=100).read:
            pass

    errors = run_at_once(drain, drain)

    assert errors == []
    assert TrackingEvent.objects.count() == EVENTS
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == EVENTS
    assert sent_email.relation.first_opened_at.timestamp() == pytest.approx(now - EVENTS + 1)
    sent_email.email.refresh_from_db()
    assert sent_email.email.times_opened == EVENTS
