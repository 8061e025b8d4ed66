"""Recompute the dashboards' daily rollups from the email log and the stored events."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm.models import OrgSettings
from crm.rollups import first_day_held_in_full
from tracking.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily rollups the dashboards read, from the email log and the tracking "
        "events, from --since (YYYY-MM-DD) on. By default from the first day the log still "
        "holds in full: older days' events were deleted by Setup's retention, and their "
        "rollups are all that is left of them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, default=None)

    def handle(self, *args: Any, since: date | None = None, **options: Any) -> None:
        if since is None:
            since = first_day_held_in_full(OrgSettings.load().email_log_retention_months)
        rollups_rebuild(since=since)
        self.stdout.write(self.style.SUCCESS(f"Rollups rebuilt from {since}."))
