"""The Django admin for inbound messages: the Unmatched ones are a person's queue, and an admin
applies a bounce or complaint from it (inbound.review) with an action or the change page's
button, both POST + CSRF."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from inbound.models import InboundMessage
from inbound.review import ApplyRefused, inbound_message_apply


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """What came back, as received (read-only); the Unmatched ones are the queue to look at."""

    list_display = [
        "received_at",
        "source",
        "kind",
        "status",
        "named_addresses",
        "from_address",
        "subject",
        "note",
    ]
    list_filter = ["status", "kind", "source"]
    search_fields = ["from_address", "subject", "message_id", "note"]
    date_hierarchy = "received_at"
    readonly_fields = (
        "received_at",
        "source",
        "kind",
        "status",
        "note",
        "report",
        "applied_at",
        "applied_by",
        "from_address",
        "subject",
        "message_id",
        "relation",
        "created_email",
        "fingerprint",
    )
    fields = readonly_fields
    actions = ["apply_reports"]
    change_form_template = "admin/inbound/inboundmessage/change_form.html"

    @admin.display(description="Addresses it names")
    def named_addresses(self, message: InboundMessage) -> str:
        return ", ".join(message.addresses)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages are received, never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of what came back; applying is its own permission

    def has_apply_permission(self, request: HttpRequest) -> bool:
        """Applying changes people's status: the Admin role (who may change inbound messages)."""
        return request.user.has_perm("inbound.change_inboundmessage")

    @admin.action(
        description="Apply what the selected Unmatched messages report (bounce, complaint)",
        permissions=["apply"],
    )
    def apply_reports(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        applied, refused = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                inbound_message_apply(message_id=pk, by=request.user)  # type: ignore[arg-type]
            except ApplyRefused:
                refused += 1
            else:
                applied += 1
        if applied:
            self.message_user(request, f"Applied {applied} message(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Refused {refused}: applied already, not an Unmatched bounce or complaint, "
                "or naming no address.",
                messages.WARNING,
            )

    def get_urls(self) -> list[URLPattern]:
        apply = path(
            "<int:pk>/apply/",
            self.admin_site.admin_view(require_POST(self.apply_view)),
            name="inbound_inboundmessage_apply",
        )
        return [apply, *super().get_urls()]

    def apply_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_apply_permission(request):
            raise PermissionDenied
        message = get_object_or_404(InboundMessage, pk=pk)
        try:
            inbound_message_apply(message_id=message.pk, by=request.user)  # type: ignore[arg-type]
        except ApplyRefused as refusal:
            self.message_user(request, f"Not applied: {refusal}", messages.WARNING)
        else:
            self.message_user(request, "Applied.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:inbound_inboundmessage_change", args=[pk]))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        message = self.get_object(request, object_id)
        can_apply = (
            message is not None and message.can_be_applied() and self.has_apply_permission(request)
        )
        context = {**(extra_context or {}), "can_apply": can_apply}
        return super().change_view(request, object_id, form_url, extra_context=context)
