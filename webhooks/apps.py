"""webhooks's app: signed outgoing webhooks (registers its tasks, queued by name)."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self) -> None:
        # Registers the tasks queued by name (crm.jobs) and run by beat, in every process.
        from webhooks import tasks  # noqa: F401
