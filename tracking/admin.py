from django.contrib import admin

from tracking.models import BufferedEvent, InboundMessage, TrackingEvent


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "label", "reason", "relation", "client", "ip"]
    list_filter = ["kind", "label"]
    search_fields = ["relation__address", "event_id", "user_agent"]
    raw_id_fields = ["relation", "link"]
    date_hierarchy = "occurred_at"
    list_select_related = ["relation"]


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """What came back; the Unmatched ones are the queue a person looks at."""

    list_display = ["received_at", "source", "kind", "status", "from_address", "subject", "note"]
    list_filter = ["status", "kind", "source"]
    search_fields = ["from_address", "subject", "message_id", "note"]
    raw_id_fields = ["relation", "created_email"]
    date_hierarchy = "received_at"
    readonly_fields = ["fingerprint", "received_at"]


@admin.register(BufferedEvent)
class BufferedEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "kind", "received_at", "method"]
    list_filter = ["kind"]
