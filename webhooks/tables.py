"""The endpoint list and an endpoint's delivery log."""

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.safestring import SafeString

from webhooks.models import Delivery, Endpoint


class EndpointTable(tables.Table):
    name = tables.Column(linkify=True)
    url = tables.Column(verbose_name="URL")
    events = tables.Column(orderable=False)
    is_active = tables.Column(verbose_name="Status")
    pending = tables.Column(verbose_name="Pending", orderable=False)

    class Meta:
        model = Endpoint
        fields = ["name", "url", "events", "is_active", "pending"]
        empty_text = "No endpoint yet."

    def render_events(self, record: Endpoint) -> str:
        labels = record.event_labels()
        extra = " (with machine events)" if record.include_machine else ""
        return ", ".join(labels) + extra

    def render_is_active(self, record: Endpoint) -> SafeString:
        css, words = ("success", "Active") if record.is_active else ("secondary", "Disabled")
        return format_html('<span class="badge text-bg-{}">{}</span>', css, words)


class DeliveryTable(tables.Table):
    event_type = tables.Column(verbose_name="Event", linkify=True)
    created_at = tables.DateTimeColumn(verbose_name="Created", format="SHORT_DATETIME_FORMAT")
    status = tables.Column()
    attempts = tables.Column()
    last_attempt_at = tables.DateTimeColumn(
        verbose_name="Last attempt", format="SHORT_DATETIME_FORMAT"
    )
    last_status = tables.Column(verbose_name="Last answer", orderable=False, empty_values=())
    next_attempt_at = tables.DateTimeColumn(
        verbose_name="Next attempt", format="SHORT_DATETIME_FORMAT"
    )

    class Meta:
        model = Delivery
        fields = [
            "event_type",
            "created_at",
            "status",
            "attempts",
            "last_attempt_at",
            "last_status",
            "next_attempt_at",
        ]
        empty_text = "No delivery yet."

    def render_last_status(self, record: Delivery) -> str:
        code = getattr(record, "last_status_code", None)
        ms = getattr(record, "last_response_ms", None)
        error = getattr(record, "last_error", "") or ""
        if code is None and not error:
            return "—"
        answer = f"HTTP {code}" if code is not None else error
        return f"{answer} in {ms} ms" if ms is not None else answer
