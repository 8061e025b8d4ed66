"""The email log: delivery events, opens and clicks in one list, filtered, searched, exported."""

import csv
import io

from django.urls import reverse

from crm.models import EmailEvent
from reports.email_log import EmailLogFilterForm, log_rows
from tests.reports.conftest import History
from tracking.models import TrackingEvent

PERIOD = {"start": "2026-03-01", "end": "2026-03-10"}


def _kinds(response) -> list[str]:
    return [row.record["log_kind"] for row in response.context["table"].paginated_rows]


def test_the_log_lists_every_event_newest_first_with_its_person_and_email(
    client_for, admin_user, history: History
) -> None:
    response = client_for(admin_user).get(reverse("reports:email_log"), PERIOD)

    assert response.status_code == 200
    table = response.context["table"]
    total = EmailEvent.objects.count() + TrackingEvent.objects.count()
    assert table.paginator.count == total
    times = [row.record["log_at"] for row in table.paginated_rows]
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
    machine = client.get(url, {**PERIOD, "label": "machine"}).context["table"]
    assert machine.paginator.count == TrackingEvent.objects.exclude(label="human").count()
    mine = client.get(url, {**PERIOD, "rep": history.other_rep.pk}).context["table"]
    assert {row.record["log_address"] for row in mine.paginated_rows} == {"cy@example.com"}
    assert mine.paginator.count == (
        EmailEvent.objects.filter(relation=history.cy_hello).count()
        + TrackingEvent.objects.filter(relation=history.cy_hello).count()
    )
    campaign = client.get(url, {**PERIOD, "campaign": history.campaign.pk}).context["table"]
    assert {row.record["log_subject"] for row in campaign.paginated_rows} == {"Launch"}
    searched = client.get(url, {**PERIOD, "q": "baker"}).context["table"]
    assert {row.record["log_address"] for row in searched.paginated_rows} == {"bob@example.com"}
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
    assert len(response.context["table"].paginated_rows) > 10


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

    whole = rows[0 : rows.count()]
    paged = [row for start in range(0, rows.count(), 4) for row in rows[start : start + 4]]

    assert paged == whole and len(whole) == rows.count() == 22
    assert [r["log_at"] for r in whole] == sorted((r["log_at"] for r in whole), reverse=True)
    assert rows[3] == whole[3]


def test_the_export_quotes_what_a_spreadsheet_would_run_as_a_formula(
    client_for, admin_user, history: History
) -> None:
    EmailEvent.objects.filter(kind="bounced").update(detail='=HYPERLINK("http://evil.example")')

    response = client_for(admin_user).get(reverse("reports:email_log_csv"), PERIOD)

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    bounce = next(row for row in rows if row[1] == "bounced")
    assert bounce[9] == '\'=HYPERLINK("http://evil.example")'
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
