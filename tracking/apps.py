"""tracking's app: it registers its tasks and the Setup hook that queues a recount."""

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tracking"

    def ready(self) -> None:
        from crm import hooks
        from tracking import tasks  # noqa: F401 -- registers the tasks queued by name (crm.jobs)
        from tracking.recount import recount_when_setup_changed

        hooks.on_setup_changed(recount_when_setup_changed)
