"""The naive pixel: the fast path's work, done as an ordinary Django view.

It runs through the project's full middleware stack and writes one row into PostgreSQL per hit,
in its own autocommit transaction, before answering. It records the same raw event as the fast
path (into the BufferedEvent table instead of the Redis stream), so the comparison measures the
design, not a difference in what is stored.
"""

import time
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from mailkit.tokens import parse_token, signing_keys
from tracking.fastpath import GIF, MAX_USER_AGENT, NO_STORE
from tracking.models import BufferedEvent

KEYS = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)


@login_not_required
@require_safe
def pixel(request: HttpRequest, token: str) -> HttpResponse:
    data = parse_token(token, keys=KEYS)
    if data is not None and data.link_id == 0:
        BufferedEvent.objects.create(
            event_id=uuid.uuid4().hex,
            kind="open",
            token=token,
            received_at=time.time(),
            ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
            method=request.method or "GET",
        )
    response = HttpResponse(GIF, content_type="image/gif")
    for name, value in NO_STORE:
        response[name] = value
    return response
