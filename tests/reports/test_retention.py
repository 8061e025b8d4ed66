"""Setup's email log retention, enforced by a nightly Celery task in chunks."""

from datetime import UTC, datetime

import time_machine
from django.conf import settings

from crm.models import EmailDailyStat, EmailEvent, OrgSettings
from crm.rollups import months_before
from reports.services import email_log_prune
from reports.tasks import prune_email_log
from tests.reports.conftest import History
from tracking.models import TrackingEvent


def test_the_task_deletes_events_older_than_setups_months_and_keeps_the_rest(
    history: History,
) -> None:
    org = OrgSettings.load()
    org.email_log_retention_months = 1
    org.save()
    before = EmailDailyStat.objects.values_list("sent", flat=True)
    sent_before = sum(before)

    # On April 3rd, one month back is March 3rd: days 1 and 2 of the history go.
    with time_machine.travel(datetime(2026, 4, 3, 12, tzinfo=UTC), tick=False):
        deleted = prune_email_log.delay().get()

    cutoff = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert deleted > 0
    assert not EmailEvent.objects.filter(occurred_at__lt=cutoff).exists()
    assert not TrackingEvent.objects.filter(occurred_at__lt=cutoff).exists()
    assert EmailEvent.objects.filter(occurred_at__gte=cutoff).exists()
    assert TrackingEvent.objects.filter(occurred_at__gte=cutoff).exists()
    # The dashboards keep their history.
    assert sum(EmailDailyStat.objects.values_list("sent", flat=True)) == sent_before


def test_it_deletes_in_chunks_until_nothing_old_is_left(history: History) -> None:
    old = EmailEvent.objects.count() + TrackingEvent.objects.count()

    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False):
        assert email_log_prune(chunk=2) == old

    assert not EmailEvent.objects.exists() and not TrackingEvent.objects.exists()


def test_the_default_keeps_24_months_and_a_short_month_clamps_the_day() -> None:
    assert OrgSettings().email_log_retention_months == 24
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)


def test_beat_runs_it_every_night() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["prune-email-log"]
    assert entry["task"] == "reports.tasks.prune_email_log"
