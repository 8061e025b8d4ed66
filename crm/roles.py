"""The three roles (Django groups) and what each may do, kept complete on every migrate.

Migration 0002 created the groups once, with the permissions that existed then; a model added
later (tracking's, inbound's) had no permission in any role, so admins could not open it.
`roles_sync` runs after every `migrate` (crm's AppConfig connects it to post_migrate) and sets
each role's permissions from the rules below, so a new model is covered the day it is migrated.

- Sales Rep: works their own records (view, add, change; deletes their tasks and contact roles),
  sends email (now or later), uses the template library and keeps private templates, views
  campaigns.
- Sales Manager: a rep's permissions on every rep's records, deletes records, reads the
  dashboards, writes the shared email templates, creates and changes campaigns, imports
  records from a file.
- Admin: every permission of Openrate's apps, the roles themselves, and what an admin runs from
  the Django admin: unlocking a locked-out login (axes) and resetting a lost second factor (otp).
"""

from typing import Any

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

from crm.models.records import Role

# Openrate's own apps (the ones under this repository), whose every model an Admin manages.
OPENRATE_APPS = (
    "privacy",
    "crm",
    "tracking",
    "inbound",
    "campaigns",
    "reports",
    "dataprotection",
    "webhooks",
    "imports",
    "api",
    "demo",
    "automation",
    "capture",
)
# Third-party apps whose models an Admin manages in the Django admin, when installed.
ADMIN_TOOL_APPS = ("axes", "otp_totp", "otp_static")

_WORK = ("account", "contact", "lead", "opportunity", "opportunitycontactrole", "task")
REP = frozenset(
    {f"crm.{action}_{model}" for model in _WORK for action in ("view", "add", "change")}
    | {
        "crm.delete_task",
        "crm.delete_opportunitycontactrole",
        "crm.view_emailmessage",
        "crm.add_emailmessage",
        "crm.view_emailmessagerelation",
        # The template library: reps use shared templates and keep private ones of their own
        # (the views let them change and delete only those: EmailTemplate.editable_by).
        *(f"crm.{action}_emailtemplate" for action in ("view", "add", "change", "delete")),
        # Send later: their own scheduled emails (crm.views.scheduled).
        *(f"crm.{action}_scheduledemail" for action in ("view", "add", "change")),
        "campaigns.view_campaign",
        # Sequences: reps see them, enrol their records and stop or pause their enrolments.
        "automation.view_sequence",
        "automation.view_enrolment",
        "automation.add_enrolment",
        "automation.change_enrolment",
    }
)
MANAGER = REP | {
    *(f"crm.delete_{model}" for model in _WORK),
    "crm.view_all_records",
    "crm.view_dashboards",
    "crm.manage_shared_templates",
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "imports.add_importjob",
    # Managers build sequences; triggered-email rules are the admins' (every permission).
    *(f"automation.{action}_sequence" for action in ("add", "change")),
    *(f"automation.{action}_step" for action in ("view", "add", "change", "delete")),
}


def _by_name(names: frozenset[str] | set[str]) -> Q:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return query


def role_permissions(role: Role) -> Q:
    """The permissions a role holds, as a filter on auth's Permission."""
    if role == Role.REP:
        return _by_name(REP)
    if role == Role.MANAGER:
        return _by_name(MANAGER)
    return (
        Q(content_type__app_label__in=OPENRATE_APPS)
        | Q(content_type__app_label__in=ADMIN_TOOL_APPS)
        | Q(content_type__app_label="auth", content_type__model="group")
    )


def roles_sync(*, apps: Any = global_apps, using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
    """Create the roles if missing and set each one's permissions to exactly its rules.

    The rules are the source of truth: a permission given to a role by hand in the admin is
    taken back at the next migrate. Change a role here, in code, reviewed like any change.
    """
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in Role:
        group, _created = Group.objects.using(using).get_or_create(name=role.value)
        group.permissions.set(Permission.objects.using(using).filter(role_permissions(role)))
