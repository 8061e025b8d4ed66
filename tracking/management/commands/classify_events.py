"""`manage.py classify_events`: how the rules label the stored events, for checking them."""

import json
import math
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from tracking.classify import EventFacts, classify

# What a missing (or null) field stands for.
_DEFAULTS: dict[str, Any] = {
    "kind": "open",
    "user_agent": "",
    "ip": "",
    "method": "GET",
    "seconds_since_delivery": None,
    "honeypot": False,
    "links_clicked_same_second": 1,
}


class Command(BaseCommand):
    help = (
        "Classify events read as JSON lines from stdin (kind, user_agent, ip, method, "
        "seconds_since_delivery, honeypot, links_clicked_same_second) and print one JSON "
        "line with label and reason per event, using the same rules as ingestion."
    )
    # A pure stdin-to-stdout filter: it needs neither the database nor the system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--scanner-window",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="clicks this soon after delivery are a scanner's (default: 10)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        window: float = options["scanner_window"]
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                facts = _facts(line)
            except ValueError as error:
                self.stdout.write(json.dumps({"error": f"line {number}: {error}"}))
                continue
            verdict = classify(facts, scanner_window_seconds=window)
            self.stdout.write(json.dumps({"label": verdict.label, "reason": verdict.reason}))


def _facts(line: str) -> EventFacts:
    """Build the facts of one JSON line, raising ValueError with a readable message."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    values = {**_DEFAULTS, **{k: v for k, v in data.items() if k in _DEFAULTS and v is not None}}
    if values["kind"] not in ("open", "click"):
        raise ValueError('kind must be "open" or "click"')
    for field in ("user_agent", "ip", "method"):
        if not isinstance(values[field], str):
            raise ValueError(f"{field} must be a string")
    seconds = values["seconds_since_delivery"]
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or math.isnan(seconds)
    ):
        raise ValueError("seconds_since_delivery must be a number or null")
    if not isinstance(values["honeypot"], bool):
        raise ValueError("honeypot must be true or false")
    links = values["links_clicked_same_second"]
    # bool is a subclass of int, and true is not a count.
    if isinstance(links, bool) or not isinstance(links, int) or links < 1:
        raise ValueError("links_clicked_same_second must be a positive integer")
    return EventFacts(
        kind=values["kind"],
        user_agent=values["user_agent"],
        ip=values["ip"],
        method=values["method"],
        seconds_since_delivery=None if seconds is None else float(seconds),
        honeypot=values["honeypot"],
        links_clicked_same_second=links,
    )
