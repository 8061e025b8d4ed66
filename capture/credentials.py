"""Mailbox app passwords encrypted at rest with Fernet (the `cryptography` package).

The key comes from the environment (MAILBOX_ENCRYPTION_KEY: one or more Fernet keys separated
by commas, the newest first; older ones still decrypt, so a key can be rotated). Without one,
only a DEBUG site (a laptop) falls back to a key derived from SECRET_KEY; anywhere else
connecting a mailbox is refused, and `check --deploy` says why.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

KEY_MISSING = (
    "Mailbox connections are off: the server has no MAILBOX_ENCRYPTION_KEY to encrypt the "
    "password with. Ask your administrator."
)


class KeyMissing(Exception):
    """No MAILBOX_ENCRYPTION_KEY on a site that is not in DEBUG."""


class Undecryptable(Exception):
    """A stored password no configured key opens (the key was changed without rotation)."""


def encryption_available() -> bool:
    return bool(settings.MAILBOX_ENCRYPTION_KEY) or settings.DEBUG


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in settings.MAILBOX_ENCRYPTION_KEY if key.strip()]
    if not keys:
        if not settings.DEBUG:
            raise KeyMissing(KEY_MISSING)
        # A laptop only (DEBUG): stable across restarts, and never used in production.
        digest = hashlib.sha256(f"openrate-mailbox:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def password_encrypt(password: str) -> str:
    return _fernet().encrypt(password.encode()).decode()


def password_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise Undecryptable(
            "The stored password cannot be read with the server's MAILBOX_ENCRYPTION_KEY: "
            "connect the mailbox again."
        ) from None
