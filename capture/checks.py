"""`manage.py check --deploy`: mailbox connections need MAILBOX_ENCRYPTION_KEY."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning


@register(Tags.security, deploy=True)
def encryption_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    keys = [key.strip() for key in settings.MAILBOX_ENCRYPTION_KEY if key.strip()]
    if not keys:
        return [
            CheckWarning(
                "MAILBOX_ENCRYPTION_KEY is not set: users cannot connect their mailboxes.",
                hint="Set it to a key from "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`.',
                id="capture.W001",
            )
        ]
    problems: list[CheckMessage] = []
    for key in keys:
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                CheckWarning(
                    "A MAILBOX_ENCRYPTION_KEY entry is not a Fernet key (32 url-safe base64 "
                    "bytes).",
                    id="capture.W002",
                )
            )
    return problems
