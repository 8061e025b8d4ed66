"""The Django admin: every user's mailbox status in one paginated list (read-only; the
password is never shown), with a "resume" action for paused ones."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from capture.models import Mailbox

STATUS_FIELDS = (
    "user",
    "host",
    "port",
    "security",
    "username",
    "inbox_folder",
    "sent_folder",
    "private_folder",
    "connected_at",
    "last_sync_at",
    "last_success_at",
    "messages_captured",
    "failures_in_a_row",
    "last_error",
    "last_error_at",
    "paused_at",
)


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "username",
        "host",
        "last_sync_at",
        "messages_captured",
        "failures_in_a_row",
        "last_error",
        "last_error_at",
        "paused_at",
    ]
    list_filter = [("paused_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "user__email", "username", "host"]
    list_select_related = ["user"]
    list_per_page = 50
    fields = STATUS_FIELDS
    readonly_fields = STATUS_FIELDS
    actions = ["resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # each user connects their own, on the Mailbox page

    def has_change_permission(self, request: HttpRequest, obj: Mailbox | None = None) -> bool:
        return False

    @admin.action(description="Resume syncing the selected mailboxes", permissions=["view"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        count = queryset.filter(paused_at__isnull=False).update(paused_at=None, failures_in_a_row=0)
        self.message_user(request, f"{count} mailbox(es) resumed.", messages.SUCCESS)
