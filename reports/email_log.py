"""The email log: delivery events (crm.EmailEvent) and opens and clicks (tracking.TrackingEvent)
read as one list, newest first.

Both sides are filtered alike and read with the same columns, each in the order its
(occurred_at, id) index gives, and merged in Python. Pages are keyset pages: a page's link names
the last row shown (time, side, id) and the next page reads at most a page and one row of each
side from there, however deep it is; the CSV streams both sides at once, where a UNION ALL would
make the database sort every row of the period first. A filter that only one side can match
leaves the other side out. On PostgreSQL the period bounds the months read (crm.partitions).
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any

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


# A page's place in the log: the (time, side, id) of a row, the log's order newest first
# (sides: 0 delivery events, 1 opens and clicks; ids are per table, so the side breaks ties).
Key = tuple[datetime, int, int]


@dataclass(frozen=True)
class LogPage:
    """One keyset page of the log, newest first, with the cursors of its neighbours."""

    rows: list[dict[str, Any]]
    newer: str | None  # the cursor of the page before (newer events), None on the first page
    older: str | None  # the cursor of the page after, None on the last


def cursor_text(key: Key) -> str:
    at, side, pk = key
    return f"{int(at.timestamp() * 1_000_000)}.{side}.{pk}"


def cursor_key(text: str | None) -> Key | None:
    """A cursor from the query string, or None (the first page) for anything malformed."""
    parts = (text or "").split(".")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 20 for part in parts):
        return None
    micros, side, pk = (int(part) for part in parts)
    if side not in (0, 1):
        return None
    try:
        at = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return at, side, pk


def _key(row: dict[str, Any]) -> Key:
    return row["log_at"], row["log_side"], row["log_pk"]


class LogRows:
    """The log's sides, newest first: keyset pages for the page, every row for the CSV."""

    def __init__(self, *sides: tuple[int, QuerySet[Any], QuerySet[Any]]) -> None:
        """Each side: its number, its rows (COLUMNS), and the filtered events they read."""
        kept = [side for side in sides if not isinstance(side[2], EmptyQuerySet)]
        self.sides = [(number, rows) for number, rows, _ in kept]
        self._events = [events for _, _, events in kept]
        self._count: int | None = None

    def count(self, *, cap: int | None = None) -> int:
        """How many rows; with `cap`, counting stops past it (a number above `cap` then means
        "more than `cap`"): a year of events would take longer to count than to page through."""
        if cap is not None:
            return sum(events.order_by()[: cap + 1].count() for events in self._events)
        if self._count is None:
            # Without the row's columns: the person and email joins would only slow the count.
            self._count = sum(events.count() for events in self._events)
        return self._count

    def page(self, cursor: str | None, *, newer: bool = False, size: int = 50) -> LogPage:
        """The `size` rows after the cursor (older), or before it with `newer`; the first page
        without one. Each side reads at most `size + 1` rows from its (occurred_at, id) index,
        wherever the page is: a later page costs what the first does."""
        key = cursor_key(cursor)
        if key is None:
            newer = False
        read = []
        for number, rows in self.sides:
            if key is not None:
                rows = rows.filter(_beyond(key, number, newer=newer))
            order = ("log_at", "log_pk") if newer else ("-log_at", "-log_pk")
            read.append([{**row, "log_side": number} for row in rows.order_by(*order)[: size + 1]])
        merged = list(islice(heapq.merge(*read, key=_key, reverse=not newer), size + 1))
        more = len(merged) > size
        merged = merged[:size]
        if newer:
            merged.reverse()
        if not merged:
            return LogPage([], None, None)
        first, last = cursor_text(_key(merged[0])), cursor_text(_key(merged[-1]))
        if newer:
            return LogPage(merged, first if more else None, last)
        return LogPage(merged, first if key is not None else None, last if more else None)

    def oldest_first(self) -> Iterator[dict[str, Any]]:
        """Every row, oldest first, read from the database in chunks (for the CSV)."""
        sides = [
            (
                {**row, "log_side": number}
                for row in rows.order_by("log_at", "log_pk").iterator(chunk_size=2000)
            )
            for number, rows in self.sides
        ]
        return heapq.merge(*sides, key=_key)


def _beyond(key: Key, side: int, *, newer: bool) -> Q:
    """This side's rows past `key` in the log's order: older ones, or newer ones with `newer`.
    The bound on occurred_at alone comes first so that the index scan starts at the cursor."""
    at, key_side, pk = key
    if newer:
        if side != key_side:
            return Q(occurred_at__gte=at) if side > key_side else Q(occurred_at__gt=at)
        return Q(occurred_at__gte=at) & (Q(occurred_at__gt=at) | Q(pk__gt=pk))
    if side != key_side:
        return Q(occurred_at__lte=at) if side < key_side else Q(occurred_at__lt=at)
    return Q(occurred_at__lte=at) & (Q(occurred_at__lt=at) | Q(pk__lt=pk))


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
    return LogRows((0, left, delivery), (1, right, engagement))


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


def log_cells(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's rows as the table shows them (templates/reports/partials/log_table.html):
    names for kinds and labels, links to the person and the email. A plain template loop over
    these, not django-tables2, which spent most of a page's time on its 350 cells."""
    cells = []
    for record in rows:
        if record["log_contact_id"]:
            url = reverse("crm:contact_detail", args=[record["log_contact_id"]])
        elif record["log_lead_id"]:
            url = reverse("crm:lead_detail", args=[record["log_lead_id"]])
        else:
            url = ""
        person = format_html('<a href="{}">{}</a>', url, record["log_person"] or "(no name)")
        email_url = reverse("tracking:email_detail", args=[record["log_email_id"]])
        cells.append(
            {
                "at": record["log_at"],
                "kind": _kind_name(record["log_kind"]),
                "address": record["log_address"] or "—",
                "person": person if url else "—",
                "subject": format_html(
                    '<a href="{}">{}</a>', email_url, record["log_subject"] or "(no subject)"
                ),
                "label": _label_name(record["log_label"]) if record["log_label"] else "—",
                "detail": record["log_detail"] or "—",
            }
        )
    return cells


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
