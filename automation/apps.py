"""automation's app: sequences (cadences) and triggered emails, sent through crm.sending."""

from django.apps import AppConfig


class AutomationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from automation import tasks  # noqa: F401 -- registers the tasks by name
        from automation.enrolment import lead_enrolments_stop
        from automation.history import email_origins, enrolment_entries
        from crm import hooks

        hooks.on_lead_converted(lead_enrolments_stop)
        hooks.on_timeline_entries(enrolment_entries)
        hooks.on_email_origins(email_origins)
