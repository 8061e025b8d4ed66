"""The audit trail's page and CSV (admins): every privacy and configuration change, filtered."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

import django_tables2 as tables
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from crm.forms import style_widgets
from crm.listing import LIST_PARAMS, SearchField, table_configure
from privacy.models import AuditEntry
from reports.email_log import spreadsheet_safe

# The actor filter's choice for entries no user made (a job, a recipient's unsubscribe); no
# username can hold "~".
NO_USER = "~"
# Characters of a before / after value the page shows.
VALUE_SHOWN = 120
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("", "Any change"), *AuditEntry.Action.choices], required=False, label="Change"
    )
    actor = forms.ChoiceField(choices=[("", "Anyone")], required=False, label="Who")
    target = SearchField(
        required=False,
        label="Target contains",
        widget=forms.TextInput(attrs={"placeholder": "Setup, Contact #12, User #3"}),
    )
    start = forms.DateField(required=False, label="From", widget=DATE_WIDGET)
    end = forms.DateField(required=False, label="To", widget=DATE_WIDGET)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = (
            AuditEntry.objects.exclude(actor_name="")
            .order_by("actor_name")
            .values_list("actor_name", flat=True)
            .distinct()
        )
        actor = self.fields["actor"]
        assert isinstance(actor, forms.ChoiceField)
        actor.choices = [
            ("", "Anyone"),
            (NO_USER, "No user (a job, a recipient)"),
            *((name, name) for name in names),
        ]
        style_widgets(self.fields.values())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data

    def entries(self) -> QuerySet[AuditEntry]:
        """The entries the filters choose, newest first; every entry if the filters are not
        valid. Days are the user's (the active time zone)."""
        data = self.cleaned_data if self.is_valid() else {}
        entries = AuditEntry.objects.all()
        if data.get("action"):
            entries = entries.filter(action=data["action"])
        if data.get("actor"):
            entries = entries.filter(actor_name="" if data["actor"] == NO_USER else data["actor"])
        if data.get("target"):
            entries = entries.filter(target__icontains=data["target"])
        if data.get("start"):
            entries = entries.filter(at__gte=_midnight(data["start"]))
        if data.get("end"):
            entries = entries.filter(at__lt=_midnight(data["end"] + timedelta(days=1)))
        return entries


def _midnight(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditTable(tables.Table):
    at = tables.DateTimeColumn(
        verbose_name="When",
        format="M j, Y H:i:s",
        orderable=False,
        attrs={"td": {"class": "text-nowrap"}},
    )
    actor_name = tables.Column(verbose_name="Who", orderable=False, empty_values=())
    action = tables.Column(verbose_name="Change", orderable=False)
    target = tables.Column(orderable=False, attrs={"td": {"class": "text-nowrap"}})
    field = tables.Column(orderable=False)
    before = tables.Column(orderable=False, attrs={"td": {"class": "text-break"}})
    after = tables.Column(orderable=False, attrs={"td": {"class": "text-break"}})
    note = tables.Column(orderable=False)

    class Meta:
        empty_text = "No entry matches."
        attrs = {"class": "table table-sm table-hover mb-0"}

    def render_actor_name(self, value: str) -> str:
        return value or "No user"

    def render_before(self, value: str) -> str:
        return _shortened(value)

    def render_after(self, value: str) -> str:
        return _shortened(value)


def _shortened(value: str) -> str:
    """A long value (a list of addresses) cut on the page, whole on hover and in the CSV."""
    short = Truncator(value).chars(VALUE_SHOWN)
    return format_html('<span title="{}">{}</span>', value, short) if short != value else value


CSV_HEADER = ["at", "who", "change", "target", "field", "before", "after", "note"]


class _Line:
    """csv.writer's file: each write gives back the line, for a streamed response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(entries: QuerySet[AuditEntry], *, zone: tzinfo) -> Iterator[str]:
    """The entries as CSV lines, times in `zone`, read in chunks."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    for entry in entries.iterator(chunk_size=2000):
        yield writer.writerow(
            spreadsheet_safe(
                [
                    timezone.localtime(entry.at, zone).isoformat(),
                    entry.actor_name,
                    entry.get_action_display(),
                    entry.target,
                    entry.field,
                    entry.before,
                    entry.after,
                    entry.note,
                ]
            )
        )


@permission_required("privacy.view_auditentry", raise_exception=True)
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"{error} Showing every entry.")
    table = table_configure(request, AuditTable(form.entries()), per_page=50)
    query = request.GET.copy()
    for name in LIST_PARAMS:
        query.pop(name, None)
    context = {"table": table, "filter_form": form, "query": query.urlencode()}
    return render(request, "dataprotection/audit.html", context)


@permission_required("privacy.view_auditentry", raise_exception=True)
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered trail as CSV, streamed: entries are read and written in chunks."""
    form = AuditFilterForm(request.GET or None)
    # The user's zone, read now: the lines are written after the middleware has let it go.
    lines = csv_lines(form.entries(), zone=timezone.get_current_timezone())
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = f"audit-trail-{timezone.localdate()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns: list[URLPattern] = [
    path("audit/", audit, name="audit"),
    path("audit/csv/", audit_csv, name="audit_csv"),
]
