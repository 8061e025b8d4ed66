"""The API's URLs: /api/v1/ (the resources), /api/schema/ (OpenAPI 3), /api/docs/ (the
reference), /api/tokens/ (the user's tokens page).

The resources authenticate themselves (a token, or the session), so they are exempt from the
site's login redirect: an API client gets a 401 problem document, never the login page.
"""

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from api.errors import not_found
from api.views import campaigns, docs, mail, privacy, records, tokens

app_name = "api"

router = DefaultRouter()
router.include_format_suffixes = False  # JSON only: no /accounts.json twins
records.register(router)
mail.register(router)
campaigns.register(router)
privacy.register(router)


def _token_or_session(patterns: list[Any]) -> list[Any]:
    """Mark every view of these patterns login_not_required (REST framework authenticates)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _token_or_session(pattern.url_patterns)
        else:
            login_not_required(pattern.callback)
    return patterns


urlpatterns: list[URLPattern | URLResolver] = [
    path("v1/", include(_token_or_session(router.urls))),
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    # Anything else under /api/: a problem document, not the site's HTML 404 page.
    re_path(r"^.*$", login_not_required(not_found)),
]
