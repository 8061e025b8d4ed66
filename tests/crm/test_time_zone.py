"""Each user sees dates and times in their own time zone, set on Account security; one format."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.urls import reverse
from django.utils import formats, timezone

from crm.models import EmailDailyStat, Task
from crm.models.records import validate_time_zone
from crm.sending import email_send

NOON_UTC = datetime(2026, 9, 3, 12, 5, tzinfo=UTC)


def _shown(client, path: str) -> str:
    return client.get(path).content.decode()


@pytest.fixture
def task_done_at_noon(rep, make_task):
    task = make_task(subject="Call back")
    task.completed_at = NOON_UTC
    task.status = Task.Status.COMPLETED
    task.save(update_fields=["completed_at", "status"])
    return task


def test_a_user_sees_times_in_the_site_zone_until_they_choose_theirs(
    client_for, rep, task_done_at_noon, settings
) -> None:
    settings.TIME_ZONE = "UTC"
    client = client_for(rep)

    assert "Sep 3, 2026 12:05" in _shown(client, task_done_at_noon.get_absolute_url())

    response = client.post(reverse("crm:security_time_zone"), {"time_zone": "Asia/Tokyo"})

    assert response.status_code == 302
    rep.refresh_from_db()
    assert rep.time_zone == "Asia/Tokyo"
    assert "Sep 3, 2026 21:05" in _shown(client, task_done_at_noon.get_absolute_url())


def test_another_user_keeps_the_site_zone(
    client_for, rep, manager, task_done_at_noon, settings
) -> None:
    settings.TIME_ZONE = "UTC"
    rep.time_zone = "Asia/Tokyo"
    rep.save(update_fields=["time_zone"])

    assert "Sep 3, 2026 12:05" in _shown(client_for(manager), task_done_at_noon.get_absolute_url())


def test_an_unknown_zone_is_refused_with_a_message_and_nothing_changes(client_for, rep) -> None:
    client = client_for(rep)

    response = client.post(reverse("crm:security_time_zone"), {"time_zone": "Mars/Olympus"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    rep.refresh_from_db()
    assert rep.time_zone == ""


def test_choosing_the_site_zone_again_clears_the_users_own(client_for, rep) -> None:
    rep.time_zone = "Europe/Paris"
    rep.save(update_fields=["time_zone"])

    client_for(rep).post(reverse("crm:security_time_zone"), {"time_zone": ""})

    rep.refresh_from_db()
    assert rep.time_zone == ""


def test_the_security_page_offers_the_zones_and_says_the_time_there(client_for, rep) -> None:
    rep.time_zone = "America/New_York"
    rep.save(update_fields=["time_zone"])

    with time_machine.travel(NOON_UTC, tick=False):
        html = _shown(client_for(rep), reverse("crm:security"))

    assert '<option value="America/New_York" selected>America/New York</option>' in html
    assert "The site&#x27;s time zone (" in html
    assert "It is now Sep 3, 2026 08:05 there." in html


def test_a_zone_the_database_no_longer_knows_falls_back_to_the_sites(
    client_for, rep, task_done_at_noon, settings
) -> None:
    settings.TIME_ZONE = "UTC"
    rep.time_zone = "Atlantis/Capital"  # saved before a zone database update removed it
    rep.save(update_fields=["time_zone"])

    assert "Sep 3, 2026 12:05" in _shown(client_for(rep), task_done_at_noon.get_absolute_url())


def test_the_model_refuses_an_unknown_zone() -> None:
    validate_time_zone("")
    validate_time_zone("Europe/Paris")
    with pytest.raises(ValidationError, match="not a time zone we know"):
        validate_time_zone("Europe/Nowhere")


def test_dates_are_written_one_way_in_templates_and_tables() -> None:
    moment = datetime(2026, 9, 3, 14, 5, tzinfo=UTC)
    rendered = Template(
        "{{ d|date }} | {{ d|date:'SHORT_DATE_FORMAT' }} | {{ d|date:'DATETIME_FORMAT' }} | "
        "{{ d|date:'SHORT_DATETIME_FORMAT' }}"
    ).render(Context({"d": moment}))

    assert rendered == "Sep 3, 2026 | Sep 3, 2026 | Sep 3, 2026 14:05 | Sep 3, 2026 14:05"
    assert formats.get_format("TIME_FORMAT") == "H:i"


def test_an_email_sent_from_a_page_in_another_zone_counts_on_the_sites_day(
    rep, make_contact, settings, django_capture_on_commit_callbacks
) -> None:
    """The middleware shows the user's zone; the daily rollups stay on the site's days, or one
    rep's sends at 23:30 UTC would land on tomorrow in the dashboards and another's on today."""
    settings.TIME_ZONE = "UTC"
    late = datetime(2026, 9, 3, 23, 30, tzinfo=UTC)

    with (
        time_machine.travel(late, tick=False),
        timezone.override(ZoneInfo("Asia/Tokyo")),  # as config.middleware activates it
        django_capture_on_commit_callbacks(execute=True),
    ):
        email_send(sender=rep, to=[make_contact()], subject="Hi", html_body="<p>Hi</p>")

    assert list(EmailDailyStat.objects.values_list("day", flat=True).distinct()) == [
        date(2026, 9, 3)
    ]
