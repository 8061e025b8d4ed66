"""dataprotection's app: forget, export, retention and the audit trail's pages."""

from django.apps import AppConfig


class DataprotectionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "dataprotection"
    verbose_name = "Data protection"

    def ready(self) -> None:
        from dataprotection import tasks  # noqa: F401  (registers the Celery tasks)
