"""capture's app: reps' own mailboxes (IMAP) and their Bcc address on the timeline."""

from django.apps import AppConfig


class CaptureConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "capture"
    verbose_name = "Inbox capture"
