"""Signing deliveries the Standard Webhooks way (pure: no models).

The secret is 24 random bytes shown as "whsec_" + base64. A delivery carries `webhook-id`,
`webhook-timestamp` (Unix seconds) and `webhook-signature`: "v1," + base64 of
HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}"), space-separated when there are several.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
# A receiver refuses a timestamp further than this from its clock (replayed deliveries).
TOLERANCE_SECONDS = 5 * 60


def secret_new() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def signature_valid(secret: str, headers: Mapping[str, str], body: str, *, now: float) -> bool:
    """What a receiver checks: one of the signatures matches and the timestamp is recent."""
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        given = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given)
