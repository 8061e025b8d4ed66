"""The email log: delivery events, opens and clicks in one list, filtered, searched, exported."""

import csv
import io

from django.urls import reverse

from crm.models import EmailEvent
from reports import views
from reports.email_log import EmailLogFilterForm, cursor_text, log_rows
from tests.reports.conftest import History
from tracking.models import TrackingEvent

PERIOD = {"start": "2026-03-01", "end": "2026-03-10"}


def _kinds(response) -> list[str]:
    return [row["log_kind"] for row in response.context["page"].rows]


def test_the_log_lists_every_event_newest_first_with_its_person_and_email(
    client_for, admin_user, history: History
) -> None:
    response = client_for(admin_user).get(reverse("reports:email_log"), PERIOD)

    assert response.status_code == 200
    total = EmailEvent.objects.count() + TrackingEvent.objects.count()
    assert response.context["count"] == total
    times = [row["log_at"] for row in response.context["page"].rows]
    assert times == sorted(times, reverse=True)
    page = response.content.decode()
    assert "Hard bounce" in page and "No such user" in page  # label and detail of the bounce
    assert "https://example.com/pricing" in page and "Apple Mail Privacy Protection" in page
    assert reverse("crm:contact_detail", args=[history.ann.contact_id]) in page
    assert reverse("tracking:email_detail", args=[history.launch.pk]) in page
    assert ">Ann Archer<" in page


def test_it_filters_by_event_label_rep_campaign_and_search(
    client_for, admin_user, history: History
) -> None:
    client = client_for(admin_user)
    url = reverse("reports:email_log")

    assert set(_kinds(client.get(url, {**PERIOD, "kind": ["bounced", "clicked"]}))) == {
        "bounced",
        "click",
    }
    machine = client.get(url, {**PERIOD, "label": "machine"}).context
    assert machine["count"] == TrackingEvent.objects.exclude(label="human").count()
    mine = client.get(url, {**PERIOD, "rep": history.other_rep.pk}).context
    assert {row["log_address"] for row in mine["page"].rows} == {"cy@example.com"}
    assert mine["count"] == (
        EmailEvent.objects.filter(relation=history.cy_hello).count()
        + TrackingEvent.objects.filter(relation=history.cy_hello).count()
    )
    campaign = client.get(url, {**PERIOD, "campaign": history.campaign.pk}).context["page"]
    assert {row["log_subject"] for row in campaign.rows} == {"Launch"}
    searched = client.get(url, {**PERIOD, "q": "baker"}).context["page"]
    assert {row["log_address"] for row in searched.rows} == {"bob@example.com"}
    empty = client.get(url, {"start": "2025-01-01", "end": "2025-01-02"})
    assert "No event in this period" in empty.content.decode()


def test_the_log_pages_in_a_fixed_number_of_queries(
    client_for, admin_user, history: History, django_assert_num_queries
) -> None:
    client = client_for(admin_user)
    # session, user, perms x2, each side's count and page, nav count and roles, rep and
    # campaign choices
    with django_assert_num_queries(12):
        response = client.get(reverse("reports:email_log"), PERIOD)
    assert len(response.context["page"].rows) > 10


def test_the_log_exports_as_streamed_csv_in_a_fixed_number_of_queries(
    client_for, admin_user, history: History, django_assert_num_queries
) -> None:
    client = client_for(admin_user)
    with django_assert_num_queries(6):  # session, user, perms x2, each side of the log
        response = client.get(reverse("reports:email_log_csv"), PERIOD)
        content = b"".join(response.streaming_content).decode()

    assert response.streaming
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:3] == ["time", "event", "recipient"]
    assert len(rows) - 1 == EmailEvent.objects.count() + TrackingEvent.objects.count()
    assert sorted(
        {row[1] for row in rows[1:]},
        key=["opened", "clicked", "queued", "sent", "bounced", "replied"].index,
    ) >= ["opened", "clicked", "queued", "sent", "bounced", "replied"]
    times = [row[0] for row in rows[1:]]
    assert times == sorted(times)
    bounce = next(row for row in rows if row[1] == "bounced")
    assert bounce[2] == "bob@example.com" and bounce[8] == "hard" and "No such user" in bounce[9]


def test_the_export_follows_the_period(client_for, admin_user, history: History) -> None:
    response = client_for(admin_user).get(
        reverse("reports:email_log_csv"), {"start": "2026-03-04", "end": "2026-03-04"}
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row[0][:10] for row in rows[1:]} == {"2026-03-04"}
    assert 'filename="email-log-2026-03-04-2026-03-05.csv"' in response["Content-Disposition"]


def test_pages_follow_each_other_without_a_gap_or_a_repeat(history: History) -> None:
    rows = log_rows(EmailLogFilterForm(PERIOD))
    whole = rows.page(None, size=100).rows
    # Ties: rows of both sides at the same time, and the same id on both sides.
    EmailEvent.objects.filter(pk=EmailEvent.objects.order_by("pk")[1].pk).update(
        occurred_at=whole[5]["log_at"]
    )
    whole = rows.page(None, size=100).rows
    assert len(whole) == rows.count() == 22

    older, cursor = [], None
    while True:
        page = rows.page(cursor, size=4)
        older += page.rows
        if page.older is None:
            break
        cursor = page.older
    # And back again, newest last: each "newer" page is the one before it.
    newer = list(page.rows)
    while page.newer is not None:
        page = rows.page(page.newer, newer=True, size=4)
        newer = page.rows + newer

    assert older == whole == newer
    keys = [(r["log_at"], r["log_side"], r["log_pk"]) for r in whole]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    assert rows.page(None, size=4).newer is None


def test_a_cursor_from_outside_is_read_or_ignored(client_for, admin_user, history: History) -> None:
    client = client_for(admin_user)
    url = reverse("reports:email_log")
    first = client.get(url, PERIOD).context["page"]

    for bad in ("x", "1.2.3", "-5.0.1", "9" * 30, "1.0", ""):
        response = client.get(url, {**PERIOD, "cursor": bad})
        assert response.status_code == 200
        assert response.context["page"].rows == first.rows
    # A link past every event (they were deleted since) says so and offers the newest.
    last = log_rows(EmailLogFilterForm(PERIOD)).page(None, size=100).rows[-1]
    past = cursor_text((last["log_at"], last["log_side"], last["log_pk"]))
    response = client.get(url, {**PERIOD, "cursor": past})
    assert response.context["page"].rows == []
    assert "No more events this way" in response.content.decode()


def test_the_page_links_keep_the_filters(
    client_for, admin_user, history: History, monkeypatch
) -> None:
    response = client_for(admin_user).get(
        reverse("reports:email_log"), {**PERIOD, "kind": ["opened"], "per_page": "1"}
    )
    page = response.context["page"]
    assert page.older is None  # fewer opens than a page

    monkeypatch.setattr(views, "LOG_PAGE_SIZE", 3)
    response = client_for(admin_user).get(reverse("reports:email_log"), PERIOD)
    body = response.content.decode()
    older = response.context["page"].older
    assert older and f"cursor={older}" in body
    assert "start=2026-03-01&amp;end=2026-03-10&amp;cursor=" in body


def test_the_export_quotes_what_a_spreadsheet_would_run_as_a_formula(
    client_for, admin_user, history: History
) -> None:
    EmailEvent.objects.filter(kind="bounced").update(detail='=HYPERLINK("http://evil.example")')

    response = client_for(admin_user).get(reverse("reports:email_log_csv"), PERIOD)

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    bounce = next(row for row in rows if row[1] == "bounced")
    assert bounce[9] == '\'=HYPERLINK("http://evil.example")'
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_the_header_counts_up_to_a_cap_and_says_more_past_it(
    client_for, admin_user, history: History, monkeypatch
) -> None:
    client = client_for(admin_user)
    total = EmailEvent.objects.count() + TrackingEvent.objects.count()

    response = client.get(reverse("reports:email_log"), PERIOD)
    assert f"{total} events from" in response.content.decode()

    monkeypatch.setattr(views, "LOG_COUNT_CAP", 5)
    response = client.get(reverse("reports:email_log"), PERIOD)
    assert response.context["count_capped"]
    assert "More than 5 events from" in response.content.decode()
    monkeypatch.setattr(views, "LOG_COUNT_CAP", total)
    response = client.get(reverse("reports:email_log"), PERIOD)
    assert f"{total} events from" in response.content.decode()
