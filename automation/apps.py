"""automation's app: sequences (cadences) and triggered emails, sent through crm.sending."""

from django.apps import AppConfig


class AutomationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "automation"
    verbose_name = "Automation"
