"""Creating, checking and revoking personal API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from api.models import ApiToken
from crm.models import User

TOKEN_PREFIX = "opr_"
# last_used_at is written at most this often per token: one UPDATE a minute, not one a request.
LAST_USED_PRECISION = timedelta(minutes=1)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token text, which is never stored and
    so can be shown only now."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=secret_hash(secret), expires_at=expires_at
    )
    return token, f"{TOKEN_PREFIX}{prefix}_{secret}"


def token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if they have no such usable token."""
    changed = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return changed == 1


def token_find(text: str) -> ApiToken | None:
    """The usable token `text` names (its user active), or None: malformed, unknown, wrong
    secret, revoked or expired all look the same to the caller."""
    if not text.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = text.removeprefix(TOKEN_PREFIX).partition("_")
    if not prefix or not secret or len(prefix) > 16:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, secret_hash(secret)):
        return None
    if not token.is_usable or not token.user.is_active:
        return None
    return token


def token_touch(token: ApiToken) -> None:
    """Note that the token was used, at most once a LAST_USED_PRECISION (one UPDATE, made
    conditional so concurrent requests write it once)."""
    now = timezone.now()
    stale = now - LAST_USED_PRECISION
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).exclude(last_used_at__gt=stale).update(last_used_at=now)
    token.last_used_at = now
