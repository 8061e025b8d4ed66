"""Personal API tokens: a user's key to the REST API, stored hashed."""

from __future__ import annotations

from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> Self:
        """Neither revoked nor expired."""
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    """A token is "opr_<prefix>_<secret>": the prefix finds the row (it is shown in the list so
    a user can tell their tokens apart), the secret is kept only as its SHA-256. The secret is
    256 random bits, so a fast hash is safe (nothing to brute-force) and costs a request
    nothing; a password hasher would add its deliberate slowness to every API call."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. “Reporting script”."
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"
        indexes = [
            # The tokens page: a user's tokens, newest first.
            models.Index(fields=["user", "created_at"], name="apitoken_user_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (opr_{self.prefix}_…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired
