"""Create the three roles (groups) and give each its permissions.

Sales Rep: works their own records (view, add, change; delete their tasks).
Sales Manager: a rep's permissions on every rep's records, deletes records, reads dashboards.
Admin: everything in Openrate, including Setup, privacy records and users.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

WORK = ["account", "contact", "lead", "opportunity", "opportunitycontactrole", "task"]
REP = [f"{action}_{model}" for model in WORK for action in ("view", "add", "change")] + [
    "delete_task",
    "delete_opportunitycontactrole",
    "view_emailmessage",
    "add_emailmessage",
    "view_emailmessagerelation",
    "view_campaign",
]
MANAGER = [
    *REP,
    *(f"delete_{model}" for model in WORK),
    "view_all_records",
    "view_dashboards",
    "add_campaign",
    "change_campaign",
]
ADMIN_APPS = ["crm", "privacy", "tracking", "campaigns"]


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label__in=["crm", "campaigns"])

    rep, _ = Group.objects.get_or_create(name="Sales Rep")
    rep.permissions.set(ours.filter(codename__in=REP))
    manager, _ = Group.objects.get_or_create(name="Sales Manager")
    manager.permissions.set(ours.filter(codename__in=MANAGER))
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.set(
        Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
        | Permission.objects.filter(content_type__app_label="auth", content_type__model="group")
    )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["Sales Rep", "Sales Manager", "Admin"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("campaigns", "0002_initial"),
        ("privacy", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
