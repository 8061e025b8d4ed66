"""The import pages: past imports, upload, mapping, preview, start, progress, the failed-rows
report and deleting an import. Managers and admins only."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.listing import table_configure
from crm.views.access import current_user
from imports import run, uploads
from imports.forms import MappingForm, UploadForm
from imports.mapping import targets
from imports.models import ImportJob
from imports.reading import UnreadableFile
from imports.tables import ImportJobTable
from reports.email_log import spreadsheet_safe

PERMISSION = "imports.add_importjob"
ERRORS_SHOWN = 50


def _jobs_for(request: HttpRequest) -> QuerySet[ImportJob]:
    """A manager sees their own imports (their failed rows hold what they uploaded); an admin
    sees everyone's."""
    user = current_user(request)
    jobs = ImportJob.objects.select_related("requested_by", "owner")
    return jobs if user.has_perm("crm.manage_setup") else jobs.filter(requested_by=user)


def _get_job_for_user(request: HttpRequest, pk: int) -> ImportJob:
    return get_object_or_404(_jobs_for(request), pk=pk)


def _get_draft_for_user(request: HttpRequest, pk: int) -> ImportJob:
    """A job still being set up, by the user who uploaded it (an admin sees it, not edits it)."""
    job = _get_job_for_user(request, pk)
    if job.requested_by_id != current_user(request).pk:
        raise PermissionDenied
    return job


@permission_required(PERMISSION, raise_exception=True)
def import_list(request: HttpRequest) -> HttpResponse:
    table = table_configure(request, ImportJobTable(_jobs_for(request)))
    return render(request, "imports/import_list.html", {"table": table})


@permission_required(PERMISSION, raise_exception=True)
def import_new(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    initial = {"kind": kind} if kind in ImportJob.Kind.values else None
    form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            job = uploads.upload_receive(
                file=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
                user=current_user(request),
            )
        except UnreadableFile as problem:
            form.add_error("file", str(problem))
        else:
            return redirect("imports:map", job.pk)
    context = {"form": form, "max_mb": uploads.max_bytes() // (1024 * 1024)}
    return render(request, "imports/import_new.html", context)


@permission_required(PERMISSION, raise_exception=True)
def import_map(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_draft_for_user(request, pk)
    if job.status != ImportJob.Status.DRAFT:
        return redirect(job)
    user = current_user(request)
    form = MappingForm(request.POST or None, job=job, user=user)
    if request.method == "POST" and form.is_valid():
        job.mapping = form.mapping()
        job.duplicate_rule = form.cleaned_data["duplicate_rule"]
        job.duplicate_action = form.cleaned_data["duplicate_action"]
        job.owner = form.cleaned_data["owner"]
        job.save(update_fields=["mapping", "duplicate_rule", "duplicate_action", "owner"])
        uploads.mapping_remember(job=job)
        return redirect("imports:preview", job.pk)
    required = [t.label for t in targets(job.kind, user).values() if t.required]
    context = {"job": job, "form": form, "required": required}
    return render(request, "imports/import_map.html", context)


@permission_required(PERMISSION, raise_exception=True)
def import_preview(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_draft_for_user(request, pk)
    if job.status != ImportJob.Status.DRAFT:
        return redirect(job)
    try:
        plans = run.import_preview(job=job)
    except UnreadableFile as problem:
        messages.error(request, str(problem))
        plans = []
    fields = targets(job.kind, current_user(request))
    columns = [
        (column, fields[name].label)
        for column, name in job.mapping.items()
        if name in fields and column in job.header
    ]
    positions = [job.header.index(column) for column, _label in columns]
    rows = [
        {"plan": plan, "cells": [plan.cells[i] if plan.cells else "" for i in positions]}
        for plan in plans
    ]
    context = {"job": job, "columns": columns, "rows": rows, "shown": len(plans)}
    return render(request, "imports/import_preview.html", context)


@require_POST
@permission_required(PERMISSION, raise_exception=True)
def import_start(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_draft_for_user(request, pk)
    if run.import_start(job=job):
        messages.success(request, f"Import of “{job.original_name}” started.")
    return redirect(job)


def _progress(job: ImportJob) -> dict[str, Any]:
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "progress": job.progress,
        "rows_done": job.rows_done,
        "rows_estimate": job.rows_estimate,
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "failed": job.failed_count,
        "finished": job.is_finished,
        "error": job.error,
    }


@permission_required(PERMISSION, raise_exception=True)
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, pk)
    if job.status == ImportJob.Status.DRAFT and job.requested_by_id == current_user(request).pk:
        return redirect("imports:map", job.pk)
    context = {
        "job": job,
        "progress": _progress(job),
        "errors": job.errors.all()[:ERRORS_SHOWN],
        "errors_shown": ERRORS_SHOWN,
        "list_url": reverse(f"crm:{job.kind}_list"),
    }
    return render(request, "imports/import_detail.html", context)


@permission_required(PERMISSION, raise_exception=True)
def import_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_progress(_get_job_for_user(request, pk)))


class _Echo:
    def write(self, value: str) -> str:
        return value


@permission_required(PERMISSION, raise_exception=True)
def import_errors_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every failed row with why, and the row as uploaded, streamed."""
    job = _get_job_for_user(request, pk)
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(spreadsheet_safe(["Row", "Why", *job.header]))
        for row in job.errors.order_by("row_number").iterator(chunk_size=2000):
            values = [row.values.get(column, "") for column in job.header]
            yield writer.writerow(spreadsheet_safe([row.row_number, row.message, *values]))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-failed-rows.csv"'
    return response


@permission_required(PERMISSION, raise_exception=True)
def import_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes the import and its failed rows (the records it
    created stay)."""
    job = _get_job_for_user(request, pk)
    if job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
        messages.error(request, "An import cannot be deleted while it runs.")
        return redirect(job)
    if request.method == "POST":
        uploads.job_delete(job=job)
        messages.success(request, f"Import of “{job.original_name}” deleted.")
        return redirect("imports:list")
    kept = "Its failed rows and its uploaded file are" if job.file_path else "Its failed rows are"
    context = {
        "record": job,
        "noun": "import",
        "consequence": f"{kept} deleted with it; the records it created or updated stay.",
    }
    return render(request, "crm/record_confirm_delete.html", context)
