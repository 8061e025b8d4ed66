"""The dashboards (manager and home), their CSVs, and the email log page and CSV."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from crm.listing import LIST_PARAMS
from crm.models import User
from crm.views.records import home_context
from reports.email_log import (
    EmailLogFilterForm,
    csv_lines,
    log_cells,
    log_rows,
    spreadsheet_safe,
)
from reports.forms import DashboardFilterForm
from reports.selectors import Chart, Dashboard, dashboard

LOG_PAGE_SIZE = 50
# The email log's header counts this many events at most ("more than 10,000"): counting a
# year's million would cost more than every page of it.
LOG_COUNT_CAP = 10_000


def _explain(request: HttpRequest, form: Form) -> None:
    """Say why filters were not applied: the page then shows its default period."""
    if form.is_bound and not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))


def _dashboard_context(
    request: HttpRequest, data: Dashboard, form: DashboardFilterForm
) -> dict[str, Any]:
    query = request.GET.copy()
    query.pop("chart", None)
    return {
        "dashboard": data,
        "charts_json": [chart.as_json() for chart in data.charts if chart.has_data],
        "filter_form": form,
        "query": query.urlencode(),
    }


@permission_required("crm.view_dashboards", raise_exception=True)
def dashboard_page(request: HttpRequest) -> HttpResponse:
    form = DashboardFilterForm(request.GET or None)
    _explain(request, form)
    data = dashboard(form.scope())
    return render(request, "reports/dashboard.html", _dashboard_context(request, data, form))


def home(request: HttpRequest) -> HttpResponse:
    """The home page: the user's records and tasks, and their own email dashboard."""
    user = request.user
    assert isinstance(user, User)
    form = DashboardFilterForm(request.GET or None, with_rep=False)
    data = dashboard(form.scope(sender_id=user.pk), leaderboard=False)
    context = {**home_context(request), **_dashboard_context(request, data, form)}
    return render(request, "reports/home.html", context)


def chart_csv(request: HttpRequest, key: str) -> HttpResponse:
    """One chart's data as CSV; without the dashboards permission, the user's own numbers."""
    user = request.user
    assert isinstance(user, User)
    everyone = user.has_perm("crm.view_dashboards")
    form = DashboardFilterForm(request.GET or None, with_rep=everyone)
    scope = form.scope() if everyone else form.scope(sender_id=user.pk)
    chart: Chart | None = dashboard(scope, leaderboard=everyone).chart(key)
    if chart is None:
        raise Http404("No such chart.")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{chart.key}-{scope.start}-{scope.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(chart.header)
    writer.writerows(spreadsheet_safe(row) for row in chart.rows())
    return response


@permission_required("crm.view_dashboards", raise_exception=True)
def email_log(request: HttpRequest) -> HttpResponse:
    form = EmailLogFilterForm(request.GET or None)
    _explain(request, form)
    rows = log_rows(form)
    # Keyset pages (reports.email_log): `cursor` names the row a page starts after (older
    # events) or, with `newer`, before; a malformed one is the first page.
    page = rows.page(request.GET.get("cursor"), newer="newer" in request.GET, size=LOG_PAGE_SIZE)
    counted = rows.count(cap=LOG_COUNT_CAP)
    query = request.GET.copy()
    for name in (*LIST_PARAMS, "cursor", "newer"):
        query.pop(name, None)
    since, until = form.period()
    context = {
        "page": page,
        "cells": log_cells(page.rows),
        "count": min(counted, LOG_COUNT_CAP),
        "count_capped": counted > LOG_COUNT_CAP,
        "filter_form": form,
        "query": query.urlencode(),
        "since": since,
        "until": until,
    }
    return render(request, "reports/email_log.html", context)


@permission_required("crm.view_dashboards", raise_exception=True)
def email_log_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed: rows are read and written in chunks."""
    form = EmailLogFilterForm(request.GET or None)
    since, until = form.period()
    response = StreamingHttpResponse(
        csv_lines(log_rows(form)), content_type="text/csv; charset=utf-8"
    )
    name = f"email-log-{since.date()}-{until.date()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
