"""Signing in and Account security.

Login is the password, then, for a user who enrolled two-factor (a django-otp TOTP device),
the six-digit code from their authenticator app; django-axes counts a wrong password or a
wrong code against the username and address. Account security enrols a device (a QR code
and the secret, confirmed with a code) and turns it off (with a current code); it also sets
the user's time zone.
"""

import base64
import time
from binascii import unhexlify
from typing import Any
from urllib.parse import urlencode

import django_otp
import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from crm.forms import CodeForm, LoginForm, SecurityChangeForm, TimeZoneForm
from crm.models import User
from crm.views.access import current_user

# The session keys: a user whose password was right and whose code is still to come, and the
# secret being enrolled (kept until confirmed, so the QR code a user scanned stays valid).
PENDING_LOGIN = "openrate_login_pending"
ENROLLING_KEY = "openrate_totp_enrolling"
# How long the code step waits after the password, in seconds.
PENDING_SECONDS = 300


def _confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def _next_url(request: HttpRequest) -> str:
    """The page asked for before logging in, if it is one of ours; else the home page."""
    target = request.POST.get("next") or request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else resolve_url(settings.LOGIN_REDIRECT_URL)


class LoginView(auth_views.LoginView):
    """The password step (axes watches it). A user with a device goes on to the code step
    instead of being logged in."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if _confirmed_device(user) is None:
            return super().form_valid(form)
        self.request.session[PENDING_LOGIN] = {
            "user": user.pk,
            "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]),
            "hash": user.get_session_auth_hash(),
            "until": time.time() + PENDING_SECONDS,
        }
        target = self.get_redirect_url()
        query = f"?{urlencode({'next': target})}" if target else ""
        return redirect(f"{reverse('login_code')}{query}")


def _pending_user(request: HttpRequest) -> tuple[User | None, str]:
    """The user the code step is for, and the backend that checked their password: the one
    whose password was just right, or a logged-in user whose session is not yet verified."""
    user: Any = request.user
    if user.is_authenticated:
        return (user, "") if not user.is_verified() else (None, "")
    pending = request.session.get(PENDING_LOGIN)
    if not pending or pending["until"] < time.time():
        return None, ""
    found = User.objects.filter(pk=pending["user"], is_active=True).first()
    if found is None or found.get_session_auth_hash() != pending["hash"]:
        return None, ""
    return found, pending["backend"]


@login_not_required
@sensitive_post_parameters("code")
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: the code from the user's authenticator app."""
    user, backend = _pending_user(request)
    device = _confirmed_device(user) if user is not None else None
    if user is None or device is None:
        if request.user.is_authenticated:
            return HttpResponseRedirect(_next_url(request))
        return redirect_to_login(_next_url(request))
    credentials = {"username": user.get_username()}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return get_lockout_response(request, credentials=credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _ = device.verify_is_allowed()
        verified = allowed and django_otp.verify_token(
            user, device.persistent_id, form.cleaned_data["code"]
        )
        if verified:
            request.session.pop(PENDING_LOGIN, None)
            if request.user.is_authenticated:
                django_otp.login(request, verified)
            else:
                # django-otp marks the new session verified when the user carries the device.
                user.otp_device = verified  # type: ignore[attr-defined]
                auth.login(request, user, backend=backend)
            return HttpResponseRedirect(_next_url(request))
        if allowed:
            # Counted like a wrong password: the username and address lock out alike.
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            form.add_error("code", "That code is not right. Enter the one your app shows now.")
        else:
            form.add_error("code", "Too many wrong codes: wait a few seconds and try again.")
    context = {"form": form, "next": _next_url(request)}
    return render(request, "registration/login_code.html", context)


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page sends to ours; a logged-in user without admin access gets 403
    (sending them to a login page would bounce straight back)."""
    if request.user.is_authenticated:
        raise PermissionDenied
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


def _qr_code(text: str) -> str:
    """A QR code of `text` as a data: URL (the CSP allows data: images, not inline script)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def _security_page(
    request: HttpRequest,
    *,
    enrol_form: SecurityChangeForm | None = None,
    disable_form: SecurityChangeForm | None = None,
    time_zone_form: TimeZoneForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    device = _confirmed_device(user)
    context: dict[str, Any] = {
        "device": device,
        "time_zone_form": time_zone_form or TimeZoneForm(instance=user),
    }
    if device is None:
        key = request.session.get(ENROLLING_KEY) or random_hex(20)
        request.session[ENROLLING_KEY] = key
        unsaved = TOTPDevice(user=user, key=key)
        context |= {
            "enrol_form": enrol_form or SecurityChangeForm(user=user),
            "secret": base64.b32encode(unhexlify(key)).decode(),
            "qr_code": _qr_code(unsaved.config_url),
        }
    else:
        context["disable_form"] = disable_form or SecurityChangeForm(user=user)
    return render(request, "crm/account_security.html", context)


def security(request: HttpRequest) -> HttpResponse:
    """Account security: two-factor sign-in, on or off."""
    return _security_page(request)


@require_POST
def security_time_zone(request: HttpRequest) -> HttpResponse:
    """Set the time zone the user's pages show dates and times in."""
    user = current_user(request)
    form = TimeZoneForm(request.POST, instance=user)
    if form.is_valid():
        form.save(commit=False).save(update_fields=["time_zone"])
        zone = user.time_zone or f"the site's ({settings.TIME_ZONE})"
        messages.success(request, f"Dates and times are now shown in {zone}.")
        return redirect("crm:security")
    return _security_page(request, time_zone_form=form)


@require_POST
@sensitive_post_parameters("code", "password")
def security_enrol(request: HttpRequest) -> HttpResponse:
    """Turn two-factor on: the password proves the owner asks, the code that the app holds the
    secret the page showed. The user's other sessions end."""
    user = current_user(request)
    key = request.session.get(ENROLLING_KEY)
    if _confirmed_device(user) is not None or not key:
        return redirect("crm:security")
    form = SecurityChangeForm(request.POST, user=user)
    if form.is_valid():
        totp = TOTP(unhexlify(key))
        if totp.verify(int(form.cleaned_data["code"]), tolerance=1):
            # last_t: the code just used cannot log in again.
            device = TOTPDevice.objects.create(
                user=user, name="Authenticator app", key=key, last_t=totp.t()
            )
            del request.session[ENROLLING_KEY]
            user.sessions_end_others(request)
            django_otp.login(request, device)
            messages.success(request, "Two-factor sign-in is on: login now asks for a code.")
            return redirect("crm:security")
        form.add_error("code", "That code does not match. Check the app shows Openrate.")
    return _security_page(request, enrol_form=form)


@require_POST
@sensitive_post_parameters("code", "password")
def security_disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor off, confirmed by the password and a current code. The user's other
    sessions end."""
    user = current_user(request)
    device = _confirmed_device(user)
    if device is None:
        return redirect("crm:security")
    form = SecurityChangeForm(request.POST, user=user)
    if form.is_valid():
        if django_otp.verify_token(user, device.persistent_id, form.cleaned_data["code"]):
            TOTPDevice.objects.filter(user=user).delete()
            user.sessions_end_others(request)
            messages.success(
                request, "Two-factor sign-in is off: login asks for the password only."
            )
            return redirect("crm:security")
        form.add_error("code", "That code is not right. Enter the one your app shows now.")
    return _security_page(request, disable_form=form)
