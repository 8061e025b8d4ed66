"""Recompute the dashboards' daily rollups from the email log and the stored events."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tracking.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily rollups the dashboards read, from the email log and the tracking "
        "events: all days, or from --since (YYYY-MM-DD) on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, default=None)

    def handle(self, *args: Any, since: date | None = None, **options: Any) -> None:
        rollups_rebuild(since=since)
        self.stdout.write(
            self.style.SUCCESS(f"Rollups rebuilt{f' from {since}' if since else ''}.")
        )
