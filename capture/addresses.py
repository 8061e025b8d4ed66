"""Each user's personal capture address, to Bcc or forward their own email to.

capture+<user id>.<secret>@<CAPTURE_ADDRESS_DOMAIN>: the secret is an HMAC of the id under
SECRET_KEY, so only someone who was shown the address can name it, and changing SECRET_KEY
changes every address. Mail to it is captured as the user's outgoing email only when it comes
from one of the user's own addresses (capture.bcc).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

_ADDRESS = re.compile(r"^capture\+(\d{1,18})\.([0-9a-f]{20})@", re.IGNORECASE)


def _secret(user_id: int) -> str:
    return salted_hmac("openrate.capture.address", str(user_id)).hexdigest()[:20]


def capture_address(user_id: int) -> str:
    """The user's address, or "" when no CAPTURE_ADDRESS_DOMAIN (or VERP domain) is set."""
    domain = settings.CAPTURE_ADDRESS_DOMAIN
    return f"capture+{user_id}.{_secret(user_id)}@{domain}" if domain else ""


def user_id_of(address: str) -> int | None:
    """The user a capture address names, if its secret is right; None for any other address."""
    match = _ADDRESS.match(address.strip())
    if match is None:
        return None
    user_id = int(match[1])
    return user_id if constant_time_compare(match[2].lower(), _secret(user_id)) else None


def looks_like_capture_address(address: str) -> bool:
    return address.strip().lower().startswith("capture+")
