"""The project's middleware: login required everywhere but the public endpoints."""

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's: every page needs a login, except those marked login_not_required and the ESP
    webhooks, which django-anymail authenticates with their own secret."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Any,
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponseBase | None:
        if request.path_info.startswith("/anymail/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
