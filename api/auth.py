"""Token authentication for the API: "Authorization: Bearer opr_<prefix>_<secret>"."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api import tokens
from api.models import ApiToken


class ApiTokenAuthentication(BaseAuthentication):
    """A personal API token (api.tokens) as a Bearer credential; a request without one is left
    to the next authenticator (the browser's session)."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("The Authorization header must be “Bearer <token>”.")
        try:
            text = parts[1].decode("ascii")
        except UnicodeDecodeError:
            text = ""
        token = tokens.token_find(text)
        if token is None:
            raise AuthenticationFailed(
                "This token is not valid: it is unknown, revoked or expired. Create a new one "
                "on your API tokens page."
            )
        tokens.token_touch(token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes an unauthenticated request a 401 (with this challenge), not a 403.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI description names this authentication: an HTTP Bearer scheme."""

    target_class = "api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from the API tokens page (/api/tokens/).",
        }
