"""The dashboard page: managers and admins see every chart with its table and CSV; reps don't."""

import csv
import io
import json

import pytest
from django.urls import reverse

from crm.models import LinkDailyStat
from tests.reports.conftest import History, day

FULL = {"start": "2026-03-02", "end": "2026-03-06"}


def test_a_manager_sees_every_chart_with_its_data_and_table(
    client_for, manager, history: History
) -> None:
    response = client_for(manager).get(reverse("reports:dashboard"), FULL)

    assert response.status_code == 200
    page = response.content.decode()
    charts = json.loads(
        page.split('<script id="dashboard-charts" type="application/json">')[1].split("</script>")[
            0
        ]
    )
    assert [c["key"] for c in charts] == [
        "sent", "delivery", "opens", "clicks", "rates", "leaderboard", "links", "funnel",
        "influence",
    ]  # fmt: skip
    assert charts[0]["labels"][0] == "2026-03-02" and charts[0]["datasets"][0]["data"][:2] == [3, 1]
    for key in ("sent", "opens", "leaderboard", "links", "funnel", "influence"):
        assert f'id="chart-{key}"' in page and f'id="table-{key}"' in page
        assert reverse("reports:chart_csv", args=[key]) in page
    assert 'data-kpi="open_human">75.0%' in page and "Salesforce would show 100.0%" in page


def test_an_admin_sees_it_too_and_a_rep_is_refused(client_for, admin_user, rep) -> None:
    assert client_for(admin_user).get(reverse("reports:dashboard")).status_code == 200
    assert client_for(rep).get(reverse("reports:dashboard")).status_code == 403
    assert client_for(rep).get(reverse("reports:email_log")).status_code == 403


def test_the_dashboard_renders_in_a_fixed_number_of_queries(
    client_for, manager, history: History, django_assert_num_queries
) -> None:
    client = client_for(manager)
    # session, user, permissions x2, rollup by day, by rep, rep names, follow-ups, top links,
    # the nav's task count and the user's roles, the rep and campaign choices
    with django_assert_num_queries(15):
        client.get(reverse("reports:dashboard"), FULL)
    with django_assert_num_queries(16):  # and the chosen rep, when the filter is checked
        client.get(reverse("reports:dashboard"), {**FULL, "rep": history.rep.pk})


def test_the_filters_narrow_every_chart(client_for, manager, history: History) -> None:
    client = client_for(manager)

    response = client.get(reverse("reports:dashboard"), {**FULL, "rep": history.other_rep.pk})

    sent = response.context["dashboard"].chart("sent")
    assert sent.series[0].values == [1, 0, 0, 0, 0]
    campaign = client.get(reverse("reports:dashboard"), {**FULL, "campaign": history.campaign.pk})
    assert campaign.context["dashboard"].totals["sent"] == 2


def test_a_bad_period_is_explained_and_the_default_period_shown(client_for, manager) -> None:
    response = client_for(manager).get(
        reverse("reports:dashboard"), {"start": "2026-03-09", "end": "2026-03-01"}
    )

    assert response.status_code == 200
    assert "The start date must be on or before the end date." in response.content.decode()
    assert len(response.context["dashboard"].scope.days) == 30


def test_each_chart_downloads_as_csv(client_for, manager, history: History) -> None:
    client = client_for(manager)

    response = client.get(reverse("reports:chart_csv", args=["opens"]), FULL)

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day", "Human", "Apple Privacy", "Image proxy", "Scanner", "Bot"]
    assert rows[1:3] == [
        ["2026-03-02", "0", "0", "0", "0", "0"],
        ["2026-03-03", "1", "1", "1", "0", "1"],
    ]
    board = client.get(reverse("reports:chart_csv", args=["leaderboard"]), FULL).content.decode()
    assert board.splitlines()[0] == (
        "Rep,Open rate (people) (%),Click rate (people) (%),Sent,Replies,Follow-ups overdue"
    )
    assert "Rita Rep,66.7,66.7,3,2,0" in board.splitlines()
    links = client.get(reverse("reports:chart_csv", args=["links"]), FULL).content.decode()
    assert "https://example.com/pricing,1,1" in links.splitlines()
    assert client.get(reverse("reports:chart_csv", args=["nope"])).status_code == 404


@pytest.mark.parametrize(
    "key",
    [
        "sent",
        "delivery",
        "opens",
        "clicks",
        "rates",
        "leaderboard",
        "links",
        "funnel",
        "influence",
    ],
)
def test_every_charts_csv_has_a_row_per_label(
    client_for, manager, history: History, key: str
) -> None:
    response = client_for(manager).get(reverse("reports:chart_csv", args=[key]), FULL)

    chart = response.context  # a plain response: no template context
    assert chart is None
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)
    assert day(1).date().isoformat() in response["Content-Disposition"]


def test_a_chart_table_escapes_what_people_typed(client_for, manager, history: History) -> None:
    LinkDailyStat.objects.create(
        day=day(2).date(),
        sender_key=history.rep.pk,
        campaign_key=0,
        url="https://example.com/?q=<script>alert(1)</script>",
        clicks_human=5,
    )

    page = client_for(manager).get(reverse("reports:dashboard"), FULL).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "https://example.com/?q=&lt;script&gt;alert(1)&lt;/script&gt;" in page
