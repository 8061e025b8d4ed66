"""inbound's app: it connects the ESP webhook receiver and registers its task."""

from django.apps import AppConfig


class InboundConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inbound"
    verbose_name = "Inbound mail"

    def ready(self) -> None:
        # Connects the ESP webhook receiver, and registers the tasks queued by name (crm.jobs).
        from inbound import tasks  # noqa: F401
        from inbound.sources import webhooks  # noqa: F401
