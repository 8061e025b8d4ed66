"""A rate limit per API token (settings.API_RATE_LIMIT, "600/min" by default); over it the
request answers 429 with Retry-After (api.errors writes the problem document)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from api.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """Counts a token's requests in the cache (Redis in production, so every web process
    shares the count). The browser's session is not limited here: its pages are not."""

    scope = "api_token"

    def get_rate(self) -> str:
        # Read at each request (DRF reads its rates once, at import), so a test or a restart
        # with a new API_RATE_LIMIT takes effect.
        rate: str = settings.API_RATE_LIMIT
        return rate

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
