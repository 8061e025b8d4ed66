"""Read one raw message from standard input (an MTA pipe) and process it as inbound mail."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process


class Command(BaseCommand):
    help = "Process one message (bounce, complaint, auto-reply, reply) read from standard input."

    def handle(self, *args: Any, **options: Any) -> None:
        raw = sys.stdin.buffer.read()
        if not raw.strip():
            # The MTA sees the exit status: an empty delivery is refused, not silently dropped.
            raise CommandError("No message on standard input.")
        message = inbound_mail_process(raw=raw, source=InboundMessage.Source.PIPE)
        self.stdout.write(f"{message.kind} {message.status}: {message.note}")
