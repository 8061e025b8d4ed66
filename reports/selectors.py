"""What the dashboards show, read from the daily rollups (never from the raw events).

Each chart is a `Chart`: labels and series computed here, drawn by static/js/dashboard.js from
json_script, shown as a table and downloadable as CSV from the same object. A whole dashboard
is a handful of aggregate queries whatever the number of events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from campaigns.figures import funnel_reached
from campaigns.models import CampaignInfluence, CampaignMember, InfluenceModel
from crm.models import EmailDailyStat, LinkDailyStat, Opportunity, Task, User
from tracking.classify import Label

TOP_LINKS = 10

_MACHINE_LABELS = {
    Label.APPLE_MPP: "Apple Privacy",
    Label.IMAGE_PROXY: "Image proxy",
    Label.SCANNER: "Scanner",
    Label.BOT: "Bot",
}
_COUNTED = (
    "queued",
    "sent",
    "deferred",
    "delivered",
    "failed",
    "bounced_hard",
    "bounced_soft",
    "complained",
    "unsubscribed",
    "replied",
    *(f"opens_{label}" for label in Label),
    "clicks_human",
    "clicks_machine",
    "recipients_opened_human",
    "recipients_opened_any",
    "recipients_clicked_human",
    "recipients_clicked_any",
)


@dataclass(frozen=True)
class Scope:
    """The dashboard's filters: a date range (inclusive), and optionally one rep and a campaign."""

    start: date
    end: date
    sender_id: int | None = None
    campaign_id: int | None = None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def rows(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        rows = queryset.filter(day__gte=self.start, day__lte=self.end)
        if self.sender_id is not None:
            rows = rows.filter(sender_key=self.sender_id)
        if self.campaign_id is not None:
            rows = rows.filter(campaign_key=self.campaign_id)
        return rows


@dataclass
class Series:
    label: str
    values: list[float]
    stack: str = ""


@dataclass
class Chart:
    key: str
    title: str
    kind: str  # "bar", "line" or "hbar" (horizontal bars)
    label_header: str
    labels: list[str]
    series: list[Series]
    stacked: bool = False
    percent: bool = False
    empty_text: str = "No email in this period."
    # Columns shown in the table and the CSV only (the chart would mix units).
    extra: list[Series] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(any(s.values) for s in (*self.series, *self.extra))

    @property
    def header(self) -> list[str]:
        unit = " (%)" if self.percent else ""
        return [self.label_header, *(f"{s.label}{unit}" for s in self.series), *self.extra_header]

    @property
    def extra_header(self) -> list[str]:
        return [s.label for s in self.extra]

    def rows(self) -> Iterator[list[Any]]:
        columns = [s.values for s in (*self.series, *self.extra)]
        for index, label in enumerate(self.labels):
            yield [label, *(column[index] for column in columns)]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "labels": self.labels,
            "stacked": self.stacked,
            "percent": self.percent,
            "datasets": [
                {"label": s.label, "data": s.values, **({"stack": s.stack} if s.stack else {})}
                for s in self.series
            ],
        }


@dataclass
class Dashboard:
    scope: Scope
    totals: dict[str, int]
    charts: list[Chart]

    def chart(self, key: str) -> Chart | None:
        return next((chart for chart in self.charts if chart.key == key), None)

    @property
    def rates(self) -> dict[str, float | None]:
        return _rates(self.totals)


def rate(part: int, whole: int) -> float | None:
    """A percentage with one decimal, or None when there is nothing to divide by."""
    return round(100 * part / whole, 1) if whole else None


def _rates(row: dict[str, int]) -> dict[str, float | None]:
    sent = row["sent"]
    return {
        "open_human": rate(row["recipients_opened_human"], sent),
        "open_any": rate(row["recipients_opened_any"], sent),
        "click_human": rate(row["recipients_clicked_human"], sent),
        "click_any": rate(row["recipients_clicked_any"], sent),
    }


def _sums() -> dict[str, Sum]:
    return {name: Sum(name) for name in _COUNTED}


def dashboard(scope: Scope, *, leaderboard: bool = True) -> Dashboard:
    """Every chart for `scope`: three to six aggregate queries."""
    by_day = {
        row["day"]: row
        for row in scope.rows(EmailDailyStat.objects.all())
        .values("day")
        .annotate(**_sums())
        .order_by("day")
    }
    zero = dict.fromkeys(_COUNTED, 0)
    days = [by_day.get(day) or {**zero, "day": day} for day in scope.days]
    totals = {name: sum(row[name] or 0 for row in days) for name in _COUNTED}
    labels = [day.isoformat() for day in scope.days]

    def series(name: str, label: str, stack: str = "") -> Series:
        return Series(label, [row[name] or 0 for row in days], stack)

    def rates(part: str, label: str) -> Series:
        return Series(label, [rate(row[part] or 0, row["sent"] or 0) or 0 for row in days])

    charts = [
        Chart("sent", "Emails sent per day", "bar", "Day", labels, [series("sent", "Sent")]),
        Chart(
            "delivery",
            "Delivery per day",
            "line",
            "Day",
            labels,
            [
                series("delivered", "Delivered (ESP)"),
                series("bounced_hard", "Hard bounces"),
                series("bounced_soft", "Soft bounces"),
                series("failed", "Failed"),
                series("complained", "Complaints"),
                series("replied", "Replies"),
            ],
            extra=[series("queued", "Queued"), series("deferred", "Deferred")],
        ),
        Chart(
            "opens",
            "Opens per day: people and machines",
            "bar",
            "Day",
            labels,
            [
                series("opens_human", "Human", "opens"),
                *(
                    series(f"opens_{label}", name, "opens")
                    for label, name in _MACHINE_LABELS.items()
                ),
            ],
            stacked=True,
        ),
        Chart(
            "clicks",
            "Clicks per day",
            "bar",
            "Day",
            labels,
            [
                series("clicks_human", "Human", "clicks"),
                series("clicks_machine", "Machine", "clicks"),
            ],
            stacked=True,
        ),
        Chart(
            "rates",
            "Open and click rates by send day",
            "line",
            "Send day",
            labels,
            [
                rates("recipients_opened_human", "Open rate (people; a click shows an open)"),
                rates("recipients_opened_any", "Open rate as Salesforce shows it"),
                rates("recipients_clicked_human", "Click rate (people)"),
                rates("recipients_clicked_any", "Click rate with machine clicks"),
            ],
            percent=True,
        ),
    ]
    if leaderboard:
        charts.append(_leaderboard(scope))
    charts.append(_top_links(scope))
    charts.append(_funnel(scope))
    charts.append(_influence(scope))
    return Dashboard(scope=scope, totals=totals, charts=charts)


def _leaderboard(scope: Scope) -> Chart:
    """Each rep's sent, rates and replies in scope, and their follow-ups overdue today."""
    # Reps who sent or were replied to in scope (opens alone, on older sends, rank nobody).
    rows = list(
        scope.rows(EmailDailyStat.objects.all())
        .values("sender_key")
        .annotate(**_sums())
        .filter(Q(sent__gt=0) | Q(replied__gt=0))
        .order_by("-sent", "sender_key")
    )
    users = {
        user.pk: user.display_name
        for user in User.objects.filter(pk__in=[row["sender_key"] for row in rows])
    }
    overdue = dict(
        Task.objects.overdue()
        .filter(kind=Task.Kind.FOLLOW_UP, owner_id__in=users)
        .values("owner_id")
        .annotate(count=Count("pk"))
        .values_list("owner_id", "count")
    )
    rates = [_rates(row) for row in rows]

    def name(key: int) -> str:
        if not key:
            return "(no sender)"
        return users.get(key, f"(deleted user {key})")

    return Chart(
        "leaderboard",
        "Rep leaderboard",
        "bar",
        "Rep",
        [name(row["sender_key"]) for row in rows],
        [
            Series("Open rate (people)", [r["open_human"] or 0 for r in rates]),
            Series("Click rate (people)", [r["click_human"] or 0 for r in rates]),
        ],
        percent=True,
        empty_text="No rep sent email in this period.",
        extra=[
            Series("Sent", [row["sent"] for row in rows]),
            Series("Replies", [row["replied"] for row in rows]),
            Series("Follow-ups overdue", [overdue.get(row["sender_key"], 0) for row in rows]),
        ],
    )


def _top_links(scope: Scope) -> Chart:
    rows = list(
        scope.rows(LinkDailyStat.objects.all())
        .values("url")
        .annotate(human=Sum("clicks_human"), machine=Sum("clicks_machine"))
        .filter(Q(human__gt=0) | Q(machine__gt=0))
        .order_by("-human", "-machine", "url")[:TOP_LINKS]
    )
    return Chart(
        "links",
        "Top links",
        "hbar",
        "Link",
        [row["url"] for row in rows],
        [
            Series("Human clicks", [row["human"] for row in rows], "clicks"),
            Series("Machine clicks", [row["machine"] for row in rows], "clicks"),
        ],
        stacked=True,
        empty_text="No link was clicked in this period.",
    )


def _funnel(scope: Scope) -> Chart:
    """Campaign members who joined in the period, by how far they came: each step counts those
    who reached it or went further (tracking moves members forward, never back). The rep filter
    keeps the campaigns that rep owns."""
    members = CampaignMember.objects.filter(
        created_at__date__gte=scope.start, created_at__date__lte=scope.end
    )
    if scope.sender_id is not None:
        members = members.filter(campaign__owner_id=scope.sender_id)
    if scope.campaign_id is not None:
        members = members.filter(campaign_id=scope.campaign_id)
    funnel = funnel_reached(members)
    return Chart(
        "funnel",
        "Campaign funnel (members who joined in the period, by furthest step reached)",
        "hbar",
        "Step",
        [label for label, _ in funnel],
        [Series("Members", [count for _, count in funnel])],
        empty_text="No one joined a campaign in this period.",
    )


def _influence(scope: Scope) -> Chart:
    """Per campaign, under Primary Campaign Source: the pipeline it brought in (open
    opportunities created in the period) and the revenue it won (opportunities closed won in
    the period). The rep filter keeps that rep's opportunities; /campaigns/influence/ shows
    the other models."""
    created = Q(
        opportunity__created_at__date__gte=scope.start,
        opportunity__created_at__date__lte=scope.end,
    )
    closed = Q(opportunity__close_date__gte=scope.start, opportunity__close_date__lte=scope.end)
    open_ = created & ~Q(opportunity__stage__in=Opportunity.CLOSED_STAGES)
    won = closed & Q(opportunity__stage=Opportunity.Stage.CLOSED_WON)
    rows = CampaignInfluence.objects.filter(open_ | won, model=InfluenceModel.PRIMARY)
    if scope.sender_id is not None:
        rows = rows.filter(opportunity__owner_id=scope.sender_id)
    if scope.campaign_id is not None:
        rows = rows.filter(campaign_id=scope.campaign_id)
    totals = list(
        rows.order_by()
        .values("campaign_id", "campaign__name", "campaign__actual_cost")
        .annotate(
            pipeline=Sum("revenue_share", filter=open_),
            won=Sum("revenue_share", filter=won),
            opportunities=Count("opportunity", distinct=True),
        )
        .order_by("-won", "-pipeline", "campaign__name")
    )
    return Chart(
        "influence",
        "Influenced pipeline and won revenue by campaign (Primary Campaign Source)",
        "hbar",
        "Campaign",
        [row["campaign__name"] for row in totals],
        [
            Series("Pipeline", [float(row["pipeline"] or 0) for row in totals]),
            Series("Won revenue", [float(row["won"] or 0) for row in totals]),
        ],
        empty_text="No opportunity a campaign influenced closes in this period.",
        extra=[
            Series("Opportunities", [row["opportunities"] for row in totals]),
            Series("Actual cost", [float(row["campaign__actual_cost"]) for row in totals]),
        ],
    )
