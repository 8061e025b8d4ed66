"""crm's app: it registers the tasks crm.jobs queues by name."""

from django.apps import AppConfig


class CrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm"

    def ready(self) -> None:
        # Registers the tasks that crm.jobs queues by name, in every process (see crm.jobs).
        from crm import tasks  # noqa: F401
