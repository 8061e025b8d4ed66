"""crm's app: it registers the tasks crm.jobs queues by name and keeps the roles complete."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm"

    def ready(self) -> None:
        # Registers the tasks that crm.jobs queues by name, in every process (see crm.jobs).
        from crm import tasks  # noqa: F401
        from crm.roles import roles_sync

        # After every migrate, each role holds exactly its rules' permissions (crm.roles), so a
        # model added later is covered. auth creates the permissions first: its receiver was
        # connected before ours, and each app's post_migrate runs the receivers in order.
        post_migrate.connect(roles_sync, dispatch_uid="crm.roles_sync")
