"""Move an existing database's email log and tracking events into their monthly partitions.

`migrate` makes the tables partitioned without moving a row: what they held becomes each
table's default partition, read and written as before. This command moves that history into
month partitions, one month per transaction (oldest first), while the app keeps running; stop
it at any point and run it again to go on. See README, "Running at scale".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from crm.partitions import (
    default_months,
    default_move,
    default_tidy,
    partitioned_tables,
    partitions_ensure,
)


class Command(BaseCommand):
    help = "Move the email log and tracking events into monthly partitions (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would move, and move nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: only PostgreSQL partitions its tables.")
            return
        tables = partitioned_tables()
        if not tables:
            self.stdout.write("No partitioned table: run `manage.py migrate` first.")
            return
        for table in tables:
            if options["dry_run"]:
                months = default_months(table)
                if not months:
                    self.stdout.write(f"{table}: nothing to move.")
                for month, count in months:
                    self.stdout.write(f"{table}: {month:%Y-%m}: {count:,} rows to move")
                continue
            for month, moved in default_move(table):
                self.stdout.write(f"{table}: {month:%Y-%m}: moved {moved:,} rows")
            dropped = default_tidy(table)
            if dropped:
                self.stdout.write(f"{table}: dropped the old table's indexes {', '.join(dropped)}")
        if not options["dry_run"]:
            made = partitions_ensure()
            self.stdout.write(
                f"Partitions made ahead: {', '.join(made)}" if made else "Months ahead: in place."
            )
