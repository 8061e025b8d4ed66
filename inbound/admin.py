"""The Django admin for inbound messages: the Unmatched ones are a person's queue."""

from django.contrib import admin

from inbound.models import InboundMessage


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """What came back; the Unmatched ones are the queue a person looks at."""

    list_display = ["received_at", "source", "kind", "status", "from_address", "subject", "note"]
    list_filter = ["status", "kind", "source"]
    search_fields = ["from_address", "subject", "message_id", "note"]
    raw_id_fields = ["relation", "created_email"]
    date_hierarchy = "received_at"
    readonly_fields = ["fingerprint", "received_at"]
