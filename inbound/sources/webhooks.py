"""ESP webhooks: django-anymail verifies each one and sends its `tracking` signal; this hands
the event to the service (the receiver holds no logic)."""

from typing import Any

from anymail.signals import tracking
from django.dispatch import receiver

from inbound.esp import esp_event_process


@receiver(tracking, dispatch_uid="openrate-esp-events")
def on_esp_event(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    esp_event_process(event=event, esp_name=esp_name)
