"""The Django admin for Individuals and the audit trail (read-only)."""

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from privacy.audit import audit_changes
from privacy.models import AuditEntry, Individual


@admin.register(Individual)
class IndividualAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "has_opted_out_tracking",
        "has_opted_out_processing",
        "has_opted_out_solicit",
        "should_forget",
        "updated_at",
    ]
    list_filter = [
        "has_opted_out_tracking",
        "has_opted_out_processing",
        "has_opted_out_profiling",
        "has_opted_out_solicit",
        "has_opted_out_geo_tracking",
        "should_forget",
        "send_individual_data",
    ]
    search_fields = ["first_name", "last_name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Individual | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.has_perm("dataprotection.add_datarequest"):
            fields.append("data_export")
        if obj is not None and request.user.has_perm("privacy.delete_individual"):
            fields.append("forget")
        return fields

    def save_model(self, request: HttpRequest, obj: Individual, form: Any, change: bool) -> None:
        """Save, and add each changed privacy flag to the audit trail."""
        super().save_model(request, obj, form, change)
        flags = [
            name
            for name in form.changed_data
            if isinstance(Individual._meta.get_field(name), models.BooleanField)
        ]
        if change and flags:
            audit_changes(
                actor=request.user,
                action=AuditEntry.Action.PRIVACY_FLAG,
                target=f"Individual #{obj.pk}",
                changes=[
                    (Individual.flag_label(name), form.initial.get(name), getattr(obj, name))
                    for name in flags
                ],
                note="Django admin",
            )

    @admin.display(description="Data export")
    def data_export(self, obj: Individual) -> str:
        # By URL name: dataprotection sits above privacy, which imports nothing of it.
        url = reverse("dataprotection:export", args=["individual", obj.pk])
        return format_html('<a href="{}">Export data…</a>', url)

    @admin.display(description="Forget")
    def forget(self, obj: Individual) -> str:
        if obj.forgotten_at is not None:
            return f"Forgotten on {date_format(timezone.localtime(obj.forgotten_at), 'M j, Y')}"
        url = reverse("dataprotection:forget", args=["individual", obj.pk])
        return format_html('<a href="{}">Forget this person…</a>', url)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail, read-only: entries are appended by the application, never edited."""

    list_display = ["at", "actor_name", "action", "target", "field", "before", "after", "note"]
    list_filter = ["action"]
    search_fields = ["target", "actor_name", "field"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
