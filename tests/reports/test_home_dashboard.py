"""A rep's home page shows their own email numbers, never another rep's."""

import csv
import io

from django.urls import reverse

from tests.reports.conftest import History

FULL = {"start": "2026-03-02", "end": "2026-03-06"}


def test_a_rep_sees_their_own_numbers_on_the_home_page(client_for, history: History) -> None:
    response = client_for(history.other_rep).get(reverse("home"), FULL)

    assert response.status_code == 200
    shown = response.context["dashboard"]
    assert shown.totals["sent"] == 1  # Otto's one email to Cy, not Rita's three
    assert shown.totals["opens_human"] == 1 and shown.totals["opens_bot"] == 1
    assert shown.chart("leaderboard") is None
    page = response.content.decode()
    assert 'id="my-dashboard"' in page and 'id="chart-sent"' in page
    assert "My open tasks" in page  # the crm home page is still there
    assert 'name="rep"' not in page


def test_a_reps_chart_csv_holds_only_their_numbers(client_for, history: History) -> None:
    client = client_for(history.other_rep)

    response = client.get(
        reverse("reports:chart_csv", args=["sent"]), {**FULL, "rep": history.rep.pk}
    )

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [row[1] for row in rows[1:]] == ["1", "0", "0", "0", "0"]
    assert client.get(reverse("reports:chart_csv", args=["leaderboard"])).status_code == 404


def test_a_rep_with_no_email_sees_an_empty_state(client_for, rep) -> None:
    response = client_for(rep).get(reverse("home"))

    assert "No email in this period." in response.content.decode()


def test_the_home_page_renders_in_a_fixed_number_of_queries(
    client_for, history: History, django_assert_num_queries
) -> None:
    client = client_for(history.rep)
    # session, user, the crm home's tasks and 6 counts, perms x2, rollup by day, top links,
    # campaign choices, the nav's task count and roles
    with django_assert_num_queries(18):
        client.get(reverse("home"), FULL)
