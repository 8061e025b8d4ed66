"""Idempotent ingestion across a month boundary: the events table is partitioned by month on
PostgreSQL, and an event's id is unique with its time, which travels with it in the buffer."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.partitions import partitions_for, postgres_only
from tests.tracking.conftest import CHROME, call
from tracking import buffer
from tracking.ingestion import events_ingest
from tracking.models import BufferedEvent, TrackingEvent

pytestmark = postgres_only

COLUMNS = ("event_id", "kind", "token", "received_at", "ip", "user_agent", "method")


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def test_events_each_side_of_midnight_at_a_months_end_delivered_twice_are_stored_once(
    app, sent_email
) -> None:
    end = datetime(2027, 1, 31, 23, 59, 59, 500000, tzinfo=UTC)
    partitions_for(end, end + timedelta(days=1))
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.click, headers={"User-Agent": CHROME})
    first, second = BufferedEvent.objects.order_by("pk")
    BufferedEvent.objects.filter(pk=first.pk).update(received_at=end.timestamp())
    BufferedEvent.objects.filter(pk=second.pk).update(received_at=end.timestamp() + 1)
    raw, _ = buffer.read_database(10)

    assert events_ingest().stored == 2
    # The buffer hands the same events over again (a worker died before acknowledging them).
    BufferedEvent.objects.bulk_create(
        BufferedEvent(**{name: getattr(event, name) for name in COLUMNS}) for event in raw
    )
    events_ingest()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, tableoid::regclass::text FROM tracking_trackingevent ORDER BY kind"
        )
        assert cursor.fetchall() == [
            ("click", "tracking_trackingevent_p2027_02"),
            ("open", "tracking_trackingevent_p2027_01"),
        ]
    assert TrackingEvent.objects.count() == 2
    sent_email.relation.refresh_from_db()
    relation = sent_email.relation
    assert relation.human_opens + relation.machine_opens == 1
    assert relation.human_clicks + relation.machine_clicks == 1
