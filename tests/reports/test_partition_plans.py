"""Every query on the event tables reads only the months it needs (PostgreSQL's plans): the
email log's pages, the email page, a rollup rebuild, retention, ingestion's dedupe."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import OrgSettings
from crm.partitions import plan_relations
from reports.email_log import EmailLogFilterForm, log_rows
from reports.services import email_log_prune
from tests.partitions import months, names, partitions_for, partitions_read, postgres_only
from tests.reports.conftest import History
from tracking.models import TrackingEvent
from tracking.rollups import rollups_rebuild

pytestmark = postgres_only

PERIOD = {"start": "2026-03-01", "end": "2026-03-10"}
EVENTS = re.compile(r"\b(tracking_trackingevent|crm_emailevent)")
FIRST, LAST = datetime(2025, 11, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def monthly(history: History) -> History:
    """The history with a partition for every month from November 2025 on (its rows moved
    out of the default partition into March 2026's)."""
    partitions_for(FIRST, max(LAST, timezone.now()))
    return history


def _only(read: set[str], first: datetime, last: datetime) -> None:
    """`read` holds partitions of months from `first` to `last` only, and at least one."""
    allowed = names(months(first, last))
    assert read, "the plans read no partition at all"
    assert read <= allowed, f"read beyond the months it needs: {sorted(read - allowed)}"


def test_the_email_logs_pages_read_only_the_periods_months(monthly: History) -> None:
    rows = log_rows(EmailLogFilterForm(PERIOD))
    first = rows.page(None, size=5)

    _only(partitions_read(lambda: rows.page(None, size=5)), datetime(2026, 2, 1, tzinfo=UTC),
          datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    _only(partitions_read(lambda: rows.page(first.older, size=5)),
          datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    _only(partitions_read(rows.count), datetime(2026, 2, 1, tzinfo=UTC),
          datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip


def test_the_email_page_reads_only_the_months_since_the_email(
    monthly: History, client_for, admin_user
) -> None:
    client = client_for(admin_user)
    url = reverse("tracking:email_detail", args=[monthly.launch.pk])

    read = partitions_read(lambda: client.get(url))

    # From the send (March 2, less a day's margin) on; never the months before.
    assert read and not read & names(months(FIRST, datetime(2026, 2, 1, tzinfo=UTC)))


def test_a_rollup_rebuild_reads_only_the_months_it_rebuilds(monthly: History) -> None:
    read = partitions_read(lambda: rollups_rebuild(since=datetime(2026, 3, 3).date()))

    assert read and not read & names(months(FIRST, datetime(2026, 2, 1, tzinfo=UTC)))


def test_retention_reads_only_the_months_before_its_cutoff(monthly: History) -> None:
    org = OrgSettings.load()
    org.email_log_retention_months = 1
    org.save()

    with time_machine.travel(datetime(2026, 4, 3, 12, tzinfo=UTC), tick=False):
        read = partitions_read(email_log_prune)

    # The months wholly before the cutoff (March 3rd) are dropped, not read; March is deleted
    # from row by row; April on is never read.
    assert read and not read & names(months(datetime(2026, 4, 1, tzinfo=UTC), LAST))
    assert not read & names(months(FIRST, datetime(2026, 2, 1, tzinfo=UTC)))


def test_ingestions_dedupe_finds_an_event_in_its_own_month(monthly: History) -> None:
    event = TrackingEvent.objects.order_by("pk").first()
    assert event is not None
    lookup = TrackingEvent.objects.filter(
        Q(event_id=event.event_id) & Q(occurred_at=event.occurred_at)
    ).values("pk")
    sql, params = lookup.query.sql_with_params()

    assert plan_relations(sql, params) == ["tracking_trackingevent_p2026_03"]


def test_the_timeline_and_the_record_page_read_no_event_table(
    monthly: History, client_for, admin_user
) -> None:
    """They show each copy's counters (kept by ingestion), never the events themselves."""
    client = client_for(admin_user)
    contact_id = monthly.ann.contact_id
    for url in (
        reverse("crm:timeline", args=["contact", contact_id]),
        reverse("crm:contact_detail", args=[contact_id]),
    ):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        assert captured.captured_queries
        assert not [q for q in captured.captured_queries if EVENTS.search(q["sql"])]
