"""Run by test_list_email_sigkill in a process of its own: send a list email's next batch
through a mail backend that prints each address it takes and, handed the message the test names,
announces READY and sleeps until SIGKILL."""

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.core.mail.backends.base import BaseEmailBackend  # noqa: E402

import crm.delivery  # noqa: E402
from campaigns.list_email import list_email_batch_send  # noqa: E402

KILLED_AT = int(sys.argv[2])


class Backend(BaseEmailBackend):
    handed = 0

    def send_messages(self, email_messages: Any) -> int:
        for message in email_messages:
            Backend.handed += 1
            if Backend.handed == KILLED_AT:
                print("READY", flush=True)
                time.sleep(120)
            print("SENT", message.to[0], flush=True)
        return len(email_messages)


crm.delivery.get_connection = Backend  # type: ignore[assignment]
list_email_batch_send(list_email_id=int(sys.argv[1]))
