"""The Django admin for tracking events and the database event buffer."""

from django.contrib import admin

from tracking.models import BufferedEvent, TrackingEvent


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "label", "reason", "relation", "client", "ip"]
    list_filter = ["kind", "label"]
    search_fields = ["relation__address", "event_id", "user_agent"]
    raw_id_fields = ["relation", "link"]
    date_hierarchy = "occurred_at"
    list_select_related = ["relation"]


@admin.register(BufferedEvent)
class BufferedEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "kind", "received_at", "method"]
    list_filter = ["kind"]
