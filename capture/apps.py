"""capture's app: reps' own mailboxes (IMAP) and their Bcc address on the timeline."""

from django.apps import AppConfig


class CaptureConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "capture"
    verbose_name = "Inbox capture"

    def ready(self) -> None:
        from capture import (  # noqa: F401 -- the deploy check, and the tasks queued by name
            checks,
            tasks,
        )
        from capture.bcc import bcc_mail_claim
        from crm import hooks

        hooks.on_mail_claimed(bcc_mail_claim)
