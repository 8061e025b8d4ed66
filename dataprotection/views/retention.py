"""The retention page (admins): Setup's policy in words and the nightly runs with their counts."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path

from crm.listing import table_configure
from crm.models import OrgSettings
from dataprotection.models import RetentionRun


class RetentionRunTable(tables.Table):
    started_at = tables.DateTimeColumn(verbose_name="Started", orderable=False)
    finished_at = tables.DateTimeColumn(verbose_name="Finished", orderable=False, default="—")
    email_bodies = tables.Column(
        verbose_name="Email bodies", accessor="counts__email_bodies", orderable=False
    )
    inbound_raw = tables.Column(
        verbose_name="Inbound raw messages", accessor="counts__inbound_raw", orderable=False
    )
    email_log_events = tables.Column(
        verbose_name="Email log events", accessor="counts__email_log_events", orderable=False
    )
    error = tables.Column(verbose_name="Errors", orderable=False, default="—")

    class Meta:
        model = RetentionRun
        fields = ["started_at", "finished_at"]
        sequence = [
            "started_at",
            "finished_at",
            "email_bodies",
            "inbound_raw",
            "email_log_events",
            "error",
        ]
        empty_text = "No retention run yet."
        attrs = {"class": "table table-sm table-hover mb-0"}


def policy(org: OrgSettings) -> list[str]:
    """Setup's retention, in words, one sentence per kind."""
    return [
        f"Email bodies (sent, received and captured) are removed after "
        f"{org.email_body_retention_months} months; the subject line, addresses and "
        f"engagement stay.",
        f"Delivery, open and click events of the email log are deleted after "
        f"{org.email_log_retention_months} months; the dashboards keep their counts.",
        f"Bounces, complaints and replies are kept as received for "
        f"{org.inbound_raw_retention_days} days, then their raw message is emptied; their "
        f"effects (bounce, opt-out, reply) stay.",
    ]


@permission_required("dataprotection.view_retentionrun", raise_exception=True)
def retention(request: HttpRequest) -> HttpResponse:
    table = table_configure(request, RetentionRunTable(RetentionRun.objects.all()))
    context: dict[str, Any] = {
        "policy": policy(OrgSettings.load()),
        "table": table,
    }
    return render(request, "dataprotection/retention.html", context)


urlpatterns: list[URLPattern] = [
    path("retention/", retention, name="retention"),
]
