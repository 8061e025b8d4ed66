"""imports's app: it registers the task imports.run queues by name."""

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imports"

    def ready(self) -> None:
        # Registers the task imports.run queues by name, in every process (see crm.jobs).
        from imports import tasks  # noqa: F401
