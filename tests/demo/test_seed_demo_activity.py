from io import StringIO

from django.core.management import call_command

from crm.models import EmailDailyStat, EmailEvent
from reports.selectors import Scope, dashboard
from tracking.models import TrackingEvent


def _run(name: str) -> str:
    out = StringIO()
    call_command(name, stdout=out)
    return out.getvalue()


def test_the_demo_gives_the_dashboards_30_days_of_numbers_once(roles) -> None:
    _run("seed_demo")

    assert "Demo email activity loaded" in _run("seed_demo_activity")

    stats = EmailDailyStat.objects.all()
    assert stats.count() > 30 and EmailEvent.objects.exists() and TrackingEvent.objects.exists()
    first, last = stats.order_by("day")[0].day, stats.order_by("-day")[0].day
    shown = dashboard(Scope(first, last))
    assert all(chart.has_data for chart in shown.charts)
    assert shown.totals["sent"] == EmailEvent.objects.filter(kind="sent").count()
    assert "already loaded" in _run("seed_demo_activity")
    assert shown.totals == dashboard(Scope(first, last)).totals
