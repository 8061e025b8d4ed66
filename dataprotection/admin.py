"""The Django admin for dataprotection: the retention runs, read-only (the nightly job writes
them)."""

from django.contrib import admin
from django.http import HttpRequest

from dataprotection.models import RetentionRun


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "counts", "error"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
