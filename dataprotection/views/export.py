"""Exporting a person's data (admins), and the data-requests pages of both kinds."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from crm.listing import table_configure
from crm.views.access import current_user
from dataprotection.export import (
    EXPORT_DAYS,
    NothingToExport,
    export_file,
    export_request,
    export_summary,
)
from dataprotection.models import DataRequest
from dataprotection.people import KINDS

# What each section of an export is called on the confirmation and request pages.
SECTION_LABELS = {
    "records": "Records (Individual, Contacts, Leads)",
    "privacy_changes": "Privacy flag changes",
    "emails": "Emails (their copies)",
    "events": "Email events (opens, clicks, delivery)",
    "campaign_memberships": "Campaign memberships",
    "inbound_messages": "Inbound messages",
    "scheduled_emails": "Scheduled emails",
    "captured_attachments": "Attachments of captured email (names and sizes)",
    "sequences": "Sequences (enrolments and their history)",
    "triggered_emails": "Triggered emails (rule firings)",
    "tasks": "Tasks",
}
ADMIN_ONLY = "dataprotection.add_datarequest"


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Http404("No such kind of record")
    return kind


@permission_required(ADMIN_ONLY, raise_exception=True)
def export_confirm(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    kind = _kind(kind)
    subject = f"{kind.capitalize()} #{pk}"
    try:
        if request.method == "POST":
            data_request = export_request(actor=current_user(request), kind=kind, pk=pk)
            messages.success(request, f"Export of {subject} queued: this page shows its progress.")
            return redirect("dataprotection:request", pk=data_request.pk)
        counts = export_summary(kind=kind, pk=pk)
    except NothingToExport:
        return render(request, "dataprotection/export_forgotten.html", {"subject": subject})
    context = {
        "subject": subject,
        "kind": kind,
        "pk": pk,
        "sections": [(SECTION_LABELS[name], count) for name, count in counts.items()],
        "days": EXPORT_DAYS,
        "back": reverse(
            "admin:privacy_individual_change" if kind == "individual" else f"crm:{kind}_detail",
            args=[pk],
        ),
    }
    return render(request, "dataprotection/export_confirm.html", context)


class DataRequestTable(tables.Table):
    requested_at = tables.DateTimeColumn(verbose_name="Requested")
    subject = tables.Column(
        linkify=lambda record: reverse("dataprotection:request", args=[record.pk]),
        verbose_name="Person",
    )
    requested_by = tables.Column(accessor="requested_by__username", verbose_name="By")

    class Meta:
        model = DataRequest
        fields = ["requested_at", "kind", "subject", "status", "requested_by", "finished_at"]
        empty_text = "No data requests yet."


@permission_required("dataprotection.view_datarequest", raise_exception=True)
def request_list(request: HttpRequest) -> HttpResponse:
    table = table_configure(
        request, DataRequestTable(DataRequest.objects.select_related("requested_by"))
    )
    return render(request, "dataprotection/request_list.html", {"table": table})


def _get_request(request: HttpRequest, pk: int) -> DataRequest:
    return get_object_or_404(DataRequest.objects.select_related("requested_by"), pk=pk)


def _progress(data_request: DataRequest) -> dict[str, Any]:
    return {
        "status": data_request.status,
        "status_label": data_request.get_status_display(),
        "progress": data_request.progress,
        "step": data_request.step,
        "error": data_request.error,
        "finished": data_request.status
        not in (DataRequest.Status.QUEUED, DataRequest.Status.RUNNING),
    }


@permission_required("dataprotection.view_datarequest", raise_exception=True)
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    data_request = _get_request(request, pk)
    can_download = (
        data_request.kind == DataRequest.Kind.EXPORT
        and data_request.status == DataRequest.Status.DONE
        and data_request.requested_by_id == request.user.pk
        and data_request.expires_at is not None
        and data_request.expires_at > timezone.now()
    )
    counts = [
        (SECTION_LABELS.get(name, name.replace("_", " ").capitalize()), count)
        for name, count in (data_request.counts or {}).items()
    ]
    context = {
        "data_request": data_request,
        "progress": _progress(data_request),
        "counts": counts,
        "can_download": can_download,
    }
    return render(request, "dataprotection/request_detail.html", context)


@permission_required("dataprotection.view_datarequest", raise_exception=True)
def request_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_progress(_get_request(request, pk)))


@login_required
def request_download(request: HttpRequest, pk: int) -> FileResponse:
    data_request, archive = export_file(request_id=pk, user=current_user(request))
    day = timezone.localdate(data_request.finished_at or timezone.now())
    name = f"openrate-export-{data_request.subject.replace(' #', '-').lower()}-{day:%Y-%m-%d}.zip"
    return FileResponse(archive.open("rb"), as_attachment=True, filename=name)


urlpatterns: list[URLPattern] = [
    path("export/<str:kind>/<int:pk>/", export_confirm, name="export"),
    path("requests/", request_list, name="requests"),
    path("requests/<int:pk>/", request_detail, name="request"),
    path("requests/<int:pk>/progress/", request_progress, name="request_progress"),
    path("requests/<int:pk>/download/", request_download, name="request_download"),
]
