"""`manage.py classify_mail FILE...`: what the parser reads in each message, as JSON lines."""

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from inbound.parsing import ParsedMessage, classify_message


class Command(BaseCommand):
    help = (
        "Classify raw inbound messages (bounce, complaint, auto_reply, reply, other) and print "
        "one JSON line per file. Changes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="raw RFC 5322 message")

    def handle(self, *args: Any, **options: Any) -> None:
        for name in options["files"]:
            try:
                raw = Path(name).read_bytes()
            except OSError as error:
                # One unreadable file must not stop the others.
                result = ParsedMessage(kind="other", reason=f"unreadable: {error.strerror}")
            else:
                result = classify_message(raw)
            self.stdout.write(json.dumps(_line(name, result)))


def _line(name: str, result: ParsedMessage) -> dict[str, Any]:
    line: dict[str, Any] = {
        "file": name,
        "kind": result.kind,
        "recipients": [
            {
                "address": r.address,
                "status": r.status,
                "reply_code": r.reply_code,
                "hard": r.hard,
                "reason": r.reason,
            }
            for r in result.recipients
        ],
        "feedback_type": result.feedback_type,
    }
    if result.kind == "other":
        line["reason"] = result.reason
    return line
