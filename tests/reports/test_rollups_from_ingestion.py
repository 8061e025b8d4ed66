"""Ingestion adds each newly stored open and click to the rollups once; a rebuild agrees."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict

from crm.models import EmailDailyStat, LinkDailyStat, OrgSettings
from reports.services import email_log_prune
from tests.reports.conftest import History
from tests.tracking.conftest import CHROME, call
from tracking import buffer
from tracking.buffer import EventWriter, RawEvent
from tracking.ingestion import events_ingest

APPLE = {"User-Agent": "Mozilla/5.0"}


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def _stats() -> list[dict]:
    rows = EmailDailyStat.objects.order_by("day", "sender_key", "campaign_key")
    return [{k: v for k, v in model_to_dict(row).items() if k != "id"} for row in rows]


def _links() -> list[tuple]:
    return list(
        LinkDailyStat.objects.order_by("day", "url").values_list(
            "day", "sender_key", "campaign_key", "url", "clicks_human", "clicks_machine"
        )
    )


def test_ingested_opens_and_clicks_reach_the_rollups(app, sent_email) -> None:
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.pixel, headers=APPLE, remote_addr="17.58.1.20")
    call(app, sent_email.click, headers={"User-Agent": CHROME})

    events_ingest()
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})  # a second open, a later batch
    events_ingest()

    row = EmailDailyStat.objects.get(opens_human__gt=0)
    assert (row.opens_human, row.opens_apple_mpp, row.clicks_human) == (2, 1, 1)
    sent_row = EmailDailyStat.objects.get(sent__gt=0)
    # One recipient: opened and clicked once each in the send-day cohort, however many times.
    assert (sent_row.recipients_opened_human, sent_row.recipients_opened_any) == (1, 1)
    assert sent_row.recipients_clicked_human == 1
    assert LinkDailyStat.objects.get().url == "https://example.com/pricing"


def test_a_redelivered_batch_is_not_counted_twice(embedded, sent_email) -> None:
    event = RawEvent(
        event_id="a" * 32,
        kind="open",
        token=sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif"),
        received_at=sent_email.relation.sent_at.timestamp() + 3600,
        ip="198.51.100.7",
        user_agent=CHROME,
        method="GET",
    )
    writer = EventWriter(buffer.redis_client())
    writer.append(event)
    events_ingest()
    writer.append(event)  # the same event again, as after a crash before the acknowledgement
    events_ingest()

    assert EmailDailyStat.objects.get(opens_human__gt=0).opens_human == 1
    assert EmailDailyStat.objects.get(sent__gt=0).recipients_opened_human == 1


def test_a_rebuild_gives_the_rollups_the_events_gave(history: History) -> None:
    incremental, links = _stats(), _links()
    EmailDailyStat.objects.all().delete()

    call_command("rebuild_rollups", stdout=StringIO())

    assert _stats() == incremental
    assert _links() == links


def test_a_rebuild_from_a_day_leaves_earlier_days_alone(history: History) -> None:
    incremental = _stats()
    since = history.ann.sent_at.date() + timedelta(days=2)
    EmailDailyStat.objects.filter(day__gte=since).update(opens_human=99)
    EmailDailyStat.objects.filter(day__lt=since).update(queued=7)

    call_command("rebuild_rollups", "--since", since.isoformat(), stdout=StringIO())

    later = [row for row in _stats() if row["day"] >= since]
    assert later == [row for row in incremental if row["day"] >= since]
    assert all(row["queued"] == 7 for row in _stats() if row["day"] < since)


def test_a_rebuild_keeps_the_days_the_retention_already_pruned(history: History) -> None:
    org = OrgSettings.load()
    org.email_log_retention_months = 1  # the history (March 2026) is older than a month
    org.save()
    incremental = _stats()
    assert email_log_prune() > 0  # the history's events are gone; their rollups stay

    call_command("rebuild_rollups", stdout=StringIO())

    assert _stats() == incremental
