"""ESP webhooks (django-anymail): which ESPs' URLs are mounted, and where their events go.

Anymail verifies each webhook (the ANYMAIL_WEBHOOK_SECRET basic auth, and the ESP's own
signature where it has one) and sends a `tracking` signal per delivery event and an `inbound`
one per received message; the receivers hand them to inbound.esp and hold no logic.

Only the ESPs the settings configure are mounted (inbound.urls): the one EMAIL_BACKEND sends
through and any with settings of its own in ANYMAIL (ANYMAIL_POSTMARK_SERVER_TOKEN, ...), and of
those only the webhooks that have what they need to verify a request (Mailgun's signing key,
Postal's webhook key, ...): anymail's views raise ImproperlyConfigured on every request without
it. Any other URL answers 404. A payload anymail cannot read is kept for a person to look at.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from email.errors import MessageError
from typing import Any

from anymail import urls as anymail_urls
from anymail.signals import inbound, tracking
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import URLPattern

from inbound.esp import esp_event_process, esp_inbound_process, esp_payload_keep, payload_bytes

logger = logging.getLogger(__name__)

_ESP_OF_ROUTE = re.compile(r"^\^?([a-z_]+)/")
_ANYMAIL_BACKEND = re.compile(r"^anymail\.backends\.([a-z_]+)\.EmailBackend$")
# What anymail raises when a payload is not what the ESP should send (ImproperlyConfigured: a
# payload of another kind, sent to this URL).
_UNREADABLE = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    MessageError,
    ImproperlyConfigured,
)


@receiver(tracking, dispatch_uid="openrate-esp-events")
def on_esp_event(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    esp_event_process(event=event, esp_name=esp_name)


@receiver(inbound, dispatch_uid="openrate-esp-inbound")
def on_esp_inbound(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    esp_inbound_process(event=event, esp_name=esp_name)


class KeepsUnreadablePayloads:
    """Put before an anymail webhook view: a verified request whose payload anymail cannot read
    is stored Unmatched (answered 200, as nothing is lost) instead of failing with a 500."""

    esp_name: str

    def parse_events(self, request: HttpRequest) -> list[Any]:
        try:
            return super().parse_events(request)  # type: ignore[misc]
        except _UNREADABLE as error:
            logger.warning("Unreadable %s webhook payload kept: %r", self.esp_name, error)
            esp_payload_keep(
                esp_name=self.esp_name,
                body=payload_bytes(request),
                error=f"{type(error).__name__}: {error}",
            )
            return []


def configured_esps() -> set[str]:
    """The ESPs the settings name: EMAIL_BACKEND's, and any with settings in ANYMAIL."""
    esps = {_esp_of(pattern) for pattern in anymail_urls.urlpatterns}
    named = {
        esp
        for esp in esps
        if any(str(key).upper().startswith(f"{esp.upper()}_") for key in settings.ANYMAIL)
    }
    if backend := _ANYMAIL_BACKEND.match(getattr(settings, "EMAIL_BACKEND", "")):
        named |= {backend.group(1)} & esps
    return named


def webhook_urlpatterns(esps: Iterable[str]) -> list[URLPattern]:
    """anymail's webhook URLs (its paths and names) for these ESPs, those that can verify."""
    wanted = set(esps)
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        if not isinstance(pattern, URLPattern) or _esp_of(pattern) not in wanted:
            continue
        view_class: Any = pattern.callback.view_class  # type: ignore[attr-defined]
        initkwargs = pattern.callback.view_initkwargs  # type: ignore[attr-defined]
        missing = _missing_setting(view_class, initkwargs)
        if missing:
            logger.warning("ESP webhook %s not mounted: %s", pattern.name, missing)
            continue
        keeping: Any = type(view_class.__name__, (KeepsUnreadablePayloads, view_class), {})
        view = keeping.as_view(**initkwargs)
        patterns.append(URLPattern(pattern.pattern, view, pattern.default_args, pattern.name))
    return patterns


def _esp_of(pattern: Any) -> str:
    match = _ESP_OF_ROUTE.match(str(pattern.pattern))
    return match.group(1) if match else ""


def _missing_setting(view_class: type, initkwargs: dict[str, Any]) -> str:
    """Why this webhook view cannot verify a request, or "" when it can."""
    try:
        view = view_class(**initkwargs)
    except (ImproperlyConfigured, ValueError) as error:
        return str(error)
    # Mandrill's view only raises on a POST without its key (so its HEAD check passes).
    if hasattr(view, "webhook_key") and view.webhook_key is None:
        return f"ANYMAIL_{view.esp_name.upper()}_WEBHOOK_KEY is not set"
    return ""
