"""reports' app: it registers its task."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        # Registers the tasks beat names (crm.jobs explains why every app does this).
        from reports import tasks  # noqa: F401
