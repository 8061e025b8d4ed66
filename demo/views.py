"""The local Outbox pages (embedded mode with DEBUG on): the mail `make run` delivered, and one
message shown as its recipient sees it, with the pixel and tracked links live.

Any signed-in user may read it, not only staff: the outbox exists only on a developer's own
embedded install (DEBUG on, mail kept in var/outbox), and the person trying Openrate signs in
as the demo rep, who is not staff, to send themselves an email and open it here.
"""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from crm.listing import page_size
from crm.models import EmailMessage, EmailMessageRelation, OrgSettings
from crm.views.access import current_user
from demo.outbox import (
    OUTBOX_KEEP,
    outbox_enabled,
    outbox_keys,
    outbox_read,
    recipient_view_html,
    tracking_origin,
)


def _require_outbox() -> None:
    # The URLs are mounted only with the outbox on; a settings change in a running process
    # (tests) must not show it either.
    if not outbox_enabled():
        raise Http404("There is no outbox: Openrate is not in embedded DEBUG mode.")


@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    """The delivered messages, newest first, a page at a time."""
    _require_outbox()
    paginator = Paginator(outbox_keys(), page_size(request.GET.get("per_page")))
    page = paginator.get_page(request.GET.get("page"))
    messages = [m for m in (outbox_read(key) for key in page.object_list) if m is not None]
    context = {"page": page, "outbox_messages": messages, "keep": OUTBOX_KEEP}
    return render(request, "demo/outbox.html", context)


@login_required
def outbox_message(request: HttpRequest, key: str) -> HttpResponse:
    """One message as its recipient's mail program shows it: opening it loads the pixel."""
    _require_outbox()
    message = outbox_read(key)
    if message is None:
        raise Http404("This message is no longer in the outbox.")
    window = OrgSettings.load().scanner_window_seconds
    clickable_at = message.delivered_at + timedelta(seconds=window)
    # The email's page in Openrate, for a user who may see it: where the open and click show.
    email_id = (
        EmailMessageRelation.objects.filter(
            message_id=message.message_id,
            email__in=EmailMessage.objects.visible_to(current_user(request)),
        )
        .values_list("email_id", flat=True)
        .first()
        if message.message_id
        else None
    )
    context = {
        "message": message,
        "frame": recipient_view_html(message.html) if message.html else "",
        "scanner_window": window,
        "clickable_at": clickable_at,
        "wait_seconds": max(0, int((clickable_at - timezone.now()).total_seconds()) + 1),
        "tracking_origin": tracking_origin(),
        "email_id": email_id,
    }
    response = render(request, "demo/outbox_message.html", context)
    # The page's policy governs the frame's document too: the pixel's origin must be allowed
    # (it may differ from the page's own, e.g. localhost against 127.0.0.1). This is what
    # csp.decorators.csp_update sets, with the origin read at request time.
    response._csp_update = {"img-src": [tracking_origin()]}  # type: ignore[attr-defined]
    return response
