"""The project's middleware: login required everywhere but the public endpoints, a verified
second factor on the admin site for users who enrolled one, the admin's query string
bounded like every other list's, and each user's time zone on their pages."""

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django_otp import user_has_device

from crm.listing import search_text
from tracking.fastpath import client_ip as forwarded_client_ip

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict


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


@cache
def _admin_prefix() -> str:
    """Where the admin site is mounted, resolved once (both admin middlewares ask on every
    request)."""
    return reverse("admin:index")


class AdminRequiresVerifiedMiddleware:
    """The admin site answers an enrolled user only in a session verified by their code.

    Our login asks for the code, so this catches the other ways a session exists: one opened
    before the user enrolled. Only admin paths pay the device lookup.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if (
            request.path_info.startswith(_admin_prefix())
            and user.is_authenticated
            and not user.is_verified()
            and user_has_device(user)
        ):
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('login_code')}?{query}")
        return self.get_response(request)


class UserTimeZoneMiddleware:
    """Pages show dates and times in the user's own time zone (chosen on Account security),
    else in the site's (TIME_ZONE). A name the zone database no longer knows falls back to the
    site's rather than failing every page the user opens."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        name = user.time_zone if user.is_authenticated else ""
        try:
            zone = ZoneInfo(name) if name else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)


class AdminQueryBoundsMiddleware:
    """The Django admin's lists and forms, ours and the libraries' alike, get the bounds the
    app's own lists keep (crm.listing): the search `q` reads its first words only (SQLite
    refuses a deeper WHERE clause or a longer LIKE pattern), and an empty `_to_field` is
    dropped (Django's change view looks up a field named "" and fails with a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(_admin_prefix()):
            query = request.GET.copy()
            if "q" in query:
                query["q"] = search_text(query.get("q") or "")
            if query.get("_to_field", None) == "":
                del query["_to_field"]
            query._mutable = False
            request.GET = cast("_ImmutableQueryDict", query)
            if request.method == "POST" and request.POST.get("_to_field", None) == "":
                form = request.POST.copy()
                del form["_to_field"]
                form._mutable = False
                request.POST = cast("_ImmutableQueryDict", form)
        return self.get_response(request)


def client_ip(request: HttpRequest) -> str:
    """The client's address for login throttling (AXES_CLIENT_IP_CALLABLE), read the way the
    tracking fast path reads it behind TRACKING_TRUSTED_PROXIES proxies."""
    return forwarded_client_ip(request.META, settings.TRACKING_TRUSTED_PROXIES)
