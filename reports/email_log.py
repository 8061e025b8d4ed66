"""The email log: delivery events (crm.EmailEvent) and opens and clicks (tracking.TrackingEvent)
read as one list, newest first.

Both sides are filtered alike and read with the same columns, each in the order its time index
gives, and merged in Python: a page reads at most `offset + page size` rows of each side and the
CSV streams both sides at once, where a UNION ALL would make the database sort every row of the
period first. A filter that only one side can match leaves the other side out.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from itertools import islice
from operator import itemgetter
from typing import Any, overload

import django_tables2 as tables
from django import forms
from django.db.models import F, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat, Trim
from django.db.models.query import EmptyQuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns.models import Campaign
from crm.filters import owners_by_name
from crm.forms import style_widgets
from crm.listing import SearchField
from crm.models import EmailEvent, User
from reports.forms import sales_users
from tracking.classify import Label
from tracking.models import TrackingEvent

DEFAULT_DAYS = 30
OPENED, CLICKED = "opened", "clicked"
_TRACKED_KINDS = {OPENED: TrackingEvent.Kind.OPEN, CLICKED: TrackingEvent.Kind.CLICK}
KINDS = [
    *((kind.value, kind.label) for kind in EmailEvent.Kind),
    (OPENED, "Opened"),
    (CLICKED, "Clicked"),
]
LABELS = [*TrackingEvent.Label.choices, ("machine", "Machine (any)")]
# The log's columns, in order: both sides of the union name them alike.
COLUMNS = (
    "log_at",
    "log_pk",
    "log_kind",
    "log_address",
    "log_contact_id",
    "log_lead_id",
    "log_person",
    "log_email_id",
    "log_subject",
    "log_label",
    "log_detail",
)


class EmailLogFilterForm(forms.Form):
    q = SearchField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Address, name or subject"}),
    )
    # Checkboxes in a drop-down (reports/partials/filters.html): a multiple select three rows
    # high in a narrow column showed two event names of eleven.
    kind = forms.MultipleChoiceField(
        choices=KINDS, required=False, label="Event", widget=forms.CheckboxSelectMultiple
    )
    label = forms.ChoiceField(choices=[("", "Any client"), *LABELS], required=False)
    start = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    rep = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="All reps", label="Rep"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="All campaigns",
        label="Campaign",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rep_field, campaign_field = self.fields["rep"], self.fields["campaign"]
        assert isinstance(rep_field, forms.ModelChoiceField)
        assert isinstance(campaign_field, forms.ModelChoiceField)
        rep_field.queryset = sales_users()
        owners_by_name(self, "rep")
        campaign_field.queryset = Campaign.objects.order_by("name")
        # An unfiltered page shows the period it covers.
        self.fields["start"].initial, self.fields["end"].initial = self._days({})
        style_widgets(self.fields.values())
        self.fields["kind"].widget.attrs["class"] = "form-check-input"

    def kind_summary(self) -> str:
        """The event filter's button: the events chosen, or that any will do."""
        field = self["kind"]
        chosen = {str(value) for value in field.value() or ()}
        names = [str(label) for value, label in KINDS if value in chosen]
        if not names:
            return "Any event"
        return ", ".join(names) if len(names) <= 2 else f"{len(names)} events"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data

    @staticmethod
    def _days(data: dict[str, Any]) -> tuple[date, date]:
        end: date = data.get("end") or timezone.localdate()
        start: date = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        return start, max(start, end)

    def period(self) -> tuple[datetime, datetime]:
        """[since, until) in the site's time zone: the last 30 days unless chosen."""
        start, end = self._days(self.cleaned_data if self.is_valid() else {})
        since = timezone.make_aware(datetime.combine(start, time.min))
        return since, timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))


class LogRows:
    """The log's sides as one sequence of dicts (COLUMNS), newest first, for django-tables2."""

    def __init__(self, *sides: tuple[QuerySet[Any], QuerySet[Any]]) -> None:
        """Each side: its rows (COLUMNS), and the filtered events they read (counted alone)."""
        kept = [side for side in sides if not isinstance(side[1], EmptyQuerySet)]
        self.sides = [rows for rows, _ in kept]
        self._events = [events for _, events in kept]
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            # Without the row's columns: the person and email joins would only slow the count.
            self._count = sum(events.count() for events in self._events)
        return self._count

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, key: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, key: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, key: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(key, int):
            return self[key : key + 1][0]
        start, stop = key.start or 0, key.stop
        newest = [side.order_by("-log_at", "-log_pk")[:stop] for side in self.sides]
        merged = heapq.merge(*newest, key=itemgetter("log_at", "log_pk"), reverse=True)
        return list(islice(merged, start, stop))

    def oldest_first(self) -> Iterator[dict[str, Any]]:
        """Every row, oldest first, read from the database in chunks (for the CSV)."""
        sides = [side.order_by("log_at", "log_pk").iterator(chunk_size=2000) for side in self.sides]
        return heapq.merge(*sides, key=itemgetter("log_at", "log_pk"))


def log_rows(form: EmailLogFilterForm) -> LogRows:
    """The filtered log, newest first."""
    data = form.cleaned_data if form.is_valid() else {}
    since, until = form.period()
    kinds = set(data.get("kind") or ())
    label = data.get("label") or ""
    common = Q(occurred_at__gte=since, occurred_at__lt=until)
    if data.get("rep"):
        common &= Q(relation__email__sender=data["rep"])
    if data.get("campaign"):
        common &= Q(relation__email__campaign=data["campaign"])
    for word in (data.get("q") or "").split():
        common &= (
            Q(relation__address__icontains=word)
            | Q(relation__email__subject__icontains=word)
            | Q(relation__contact__first_name__icontains=word)
            | Q(relation__contact__last_name__icontains=word)
            | Q(relation__lead__first_name__icontains=word)
            | Q(relation__lead__last_name__icontains=word)
        )

    delivery = EmailEvent.objects.filter(common)
    delivery_kinds = kinds - {OPENED, CLICKED}
    if kinds and not delivery_kinds:
        delivery = delivery.none()
    elif delivery_kinds:
        delivery = delivery.filter(kind__in=delivery_kinds)
    if label:
        # Only opens and clicks carry a human / machine label.
        delivery = delivery.none()

    engagement = TrackingEvent.objects.filter(common)
    tracked_kinds = [kind for name, kind in _TRACKED_KINDS.items() if name in kinds]
    if kinds and not tracked_kinds:
        engagement = engagement.none()
    elif tracked_kinds:
        engagement = engagement.filter(kind__in=tracked_kinds)
    if label == "machine":
        engagement = engagement.exclude(label=Label.HUMAN)
    elif label:
        engagement = engagement.filter(label=label)

    text: Any = TextField()
    left = _columns(
        delivery,
        kind=F("kind"),
        label=F("bounce"),
        detail=Cast(F("detail"), text),
    )
    right = _columns(
        engagement,
        kind=Cast(F("kind"), text),
        label=F("label"),
        detail=Coalesce(F("link__url"), Cast(F("client"), text), Value(""), output_field=text),
    )
    return LogRows((left, delivery), (right, engagement))


def _columns(queryset: QuerySet[Any], *, kind: Any, label: Any, detail: Any) -> QuerySet[Any]:
    text: Any = TextField()

    def name(part: str) -> Any:
        return Coalesce(
            Cast(F(f"relation__contact__{part}"), text),
            Cast(F(f"relation__lead__{part}"), text),
            Value(""),
            output_field=text,
        )

    person = Trim(Concat(name("first_name"), Value(" "), name("last_name"), output_field=text))
    return (
        queryset.order_by()
        .annotate(
            log_at=F("occurred_at"),
            log_pk=F("pk"),
            log_kind=kind,
            log_address=Cast(F("relation__address"), text),
            log_contact_id=F("relation__contact_id"),
            log_lead_id=F("relation__lead_id"),
            log_person=person,
            log_email_id=F("relation__email_id"),
            log_subject=Cast(F("relation__email__subject"), text),
            log_label=Cast(label, text),
            log_detail=detail,
        )
        .values(*COLUMNS)
    )


def _kind_name(kind: str) -> str:
    if kind == "open":
        return "Opened"
    if kind == "click":
        return "Clicked"
    return EmailEvent.Kind(kind).label if kind in EmailEvent.Kind.values else kind


def _label_name(label: str) -> str:
    if label in TrackingEvent.Label.values:
        return TrackingEvent.Label(label).label
    return {"hard": "Hard bounce", "soft": "Soft bounce"}.get(label, label)


class EmailLogTable(tables.Table):
    # The app's date format (config/formats), with seconds: a log orders events within a minute.
    log_at = tables.DateTimeColumn(
        verbose_name="Time",
        format="M j, Y H:i:s",
        orderable=False,
        attrs={"td": {"class": "text-nowrap"}},
    )
    log_kind = tables.Column(verbose_name="Event", orderable=False)
    log_address = tables.Column(verbose_name="Recipient", orderable=False)
    log_person = tables.Column(verbose_name="Contact / Lead", orderable=False, empty_values=())
    log_subject = tables.Column(verbose_name="Email", orderable=False, empty_values=())
    log_label = tables.Column(verbose_name="Label", orderable=False)
    log_detail = tables.Column(verbose_name="Detail", orderable=False)

    class Meta:
        empty_text = "No event matches."
        attrs = {"class": "table table-sm table-hover mb-0"}

    def render_log_kind(self, value: str) -> str:
        return _kind_name(value)

    def render_log_label(self, value: str) -> str:
        return _label_name(value)

    def render_log_person(self, record: dict[str, Any]) -> str:
        if record["log_contact_id"]:
            url = reverse("crm:contact_detail", args=[record["log_contact_id"]])
        elif record["log_lead_id"]:
            url = reverse("crm:lead_detail", args=[record["log_lead_id"]])
        else:
            return "—"
        return format_html('<a href="{}">{}</a>', url, record["log_person"] or "(no name)")

    def render_log_subject(self, record: dict[str, Any]) -> str:
        url = reverse("tracking:email_detail", args=[record["log_email_id"]])
        return format_html('<a href="{}">{}</a>', url, record["log_subject"] or "(no subject)")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streamed response."""

    def write(self, value: str) -> str:
        return value


CSV_HEADER = ["time", "event", "recipient", "contact_id", "lead_id", "person", "email_id",
              "subject", "label", "detail"]  # fmt: skip


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(values: Iterable[Any]) -> list[Any]:
    """The row's text cells that a spreadsheet would run as formulas, quoted as text: subjects,
    names and bounce details come from outside (OWASP's advice: a leading apostrophe)."""
    return [
        f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value
        for value in values
    ]


def csv_lines(rows: LogRows) -> Iterator[str]:
    """The log as CSV lines, oldest first, read from the database in chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for row in rows.oldest_first():
        yield writer.writerow(
            spreadsheet_safe(
                [
                    row["log_at"].isoformat(),
                    _kind_name(row["log_kind"]).lower(),
                    row["log_address"],
                    row["log_contact_id"] or "",
                    row["log_lead_id"] or "",
                    row["log_person"],
                    row["log_email_id"],
                    row["log_subject"],
                    row["log_label"],
                    row["log_detail"],
                ]
            )
        )
