"""The manager's dashboard draws every chart with data, and a rep's home page draws theirs."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.browser.conftest import REAL_BROWSER, log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

CHARTS = [
    "sent", "delivery", "opens", "clicks", "rates", "leaderboard", "links", "funnel", "influence"
]  # fmt: skip


def _page(browser, console_errors):  # type: ignore[no-untyped-def]
    page = browser.new_context(
        user_agent=REAL_BROWSER, viewport={"width": 1400, "height": 1000}
    ).new_page()
    console_errors.watch(page)
    return page


def _drawn(page, key: str) -> int:
    """How many non-zero values the chart on the page holds (0 if Chart.js did not draw it)."""
    return page.evaluate(
        """key => { const canvas = document.getElementById(`chart-${key}`);
                    if (!canvas || !canvas.chart) return 0;
                    return canvas.chart.data.datasets.flatMap(d => d.data).filter(v => v).length; }""",
        key,
    )


def test_the_dashboard_draws_every_chart_with_data_and_logs_no_error(
    live_app, browser, roles, output_dir, console_errors
) -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo_activity", stdout=StringIO())
    page = _page(browser, console_errors)
    log_in(page, live_app, "manager", "openrate-manager")

    page.click("nav >> text=Reports")
    page.wait_for_url(f"{live_app}{reverse('reports:dashboard')}")
    page.wait_for_selector("#chart-links")
    for key in CHARTS:
        assert _drawn(page, key) > 0, key
    page.click("#card-leaderboard >> text=Table")
    page.wait_for_selector("#table-leaderboard.show")
    assert page.locator("#table-leaderboard tbody tr").count() == 2  # Ada and Grace
    page.screenshot(path=str(output_dir / "dashboard.png"), full_page=True)

    # Filter to one rep: the charts are drawn again for her alone.
    page.select_option("#id_rep", label="Ada Rep")
    page.click("#dashboard-filters >> text=Apply")
    page.wait_for_selector("#chart-sent")
    assert _drawn(page, "sent") > 0
    assert page.locator("#table-leaderboard tbody tr").count() == 1

    page.goto(f"{live_app}{reverse('reports:email_log')}")
    assert page.locator("table tbody tr").count() == 50

    rep_page = _page(browser, console_errors)
    log_in(rep_page, live_app, "grace", "openrate-rep")
    rep_page.wait_for_selector("#my-dashboard #chart-opens")
    assert _drawn(rep_page, "opens") > 0 and _drawn(rep_page, "links") > 0
    rep_page.screenshot(path=str(output_dir / "rep-home.png"), full_page=True)

    assert console_errors == []
