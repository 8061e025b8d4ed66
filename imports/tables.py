"""The list of past imports."""

import django_tables2 as tables

from imports.models import ImportJob


class ImportJobTable(tables.Table):
    created_at = tables.DateTimeColumn(
        verbose_name="Uploaded", linkify=True, format="DATETIME_FORMAT"
    )
    original_name = tables.Column(verbose_name="File")
    kind = tables.Column(verbose_name="Records")
    requested_by = tables.Column(
        accessor="requested_by__display_name",
        verbose_name="By",
        order_by=("requested_by__first_name", "requested_by__username"),
    )
    status = tables.Column()
    created_count = tables.Column(verbose_name="Created")
    updated_count = tables.Column(verbose_name="Updated")
    skipped_count = tables.Column(verbose_name="Skipped")
    failed_count = tables.Column(verbose_name="Failed")

    class Meta:
        model = ImportJob
        fields = [
            "created_at",
            "original_name",
            "kind",
            "requested_by",
            "status",
            "created_count",
            "updated_count",
            "skipped_count",
            "failed_count",
        ]
        empty_text = "No imports yet."
