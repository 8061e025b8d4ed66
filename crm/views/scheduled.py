"""The Scheduled page: the single emails waiting to be sent later, and those that went or did
not. A rep sees their own; managers and admins (who see every record) see everyone's and may
cancel any, but only its sender changes one. Scheduled list emails are on their campaign's
pages (campaigns.views), where they are changed or cancelled."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from crm import forms
from crm.listing import page_size
from crm.models import ScheduledEmail
from crm.scheduling import (
    ScheduleRefused,
    scheduled_email_cancel,
    scheduled_email_update,
    user_zone,
)
from crm.views.access import current_user
from mailkit.display import editable_html

# The page's tabs: which statuses each shows.
TABS = {
    "waiting": [ScheduledEmail.Status.SCHEDULED, ScheduledEmail.Status.SENDING],
    "sent": [ScheduledEmail.Status.SENT],
    "failed": [ScheduledEmail.Status.FAILED],
    "cancelled": [ScheduledEmail.Status.CANCELLED],
}
TAB_LABELS = {"waiting": "Waiting", "sent": "Sent", "failed": "Not sent", "cancelled": "Cancelled"}


def _get_scheduled_for_user(request: HttpRequest, pk: int) -> ScheduledEmail:
    return get_object_or_404(
        ScheduledEmail.objects.visible_to(current_user(request)).select_related(
            "sender", "contact", "lead"
        ),
        pk=pk,
    )


@permission_required("crm.view_scheduledemail", raise_exception=True)
def scheduled_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    tab = request.GET.get("show", "waiting")
    if tab not in TABS:
        tab = "waiting"
    rows = (
        ScheduledEmail.objects.visible_to(user)
        .filter(status__in=TABS[tab])
        .select_related("sender", "contact", "lead", "email")
        .order_by("send_at" if tab == "waiting" else "-send_at", "pk")
    )
    page = Paginator(rows, page_size(request.GET.get("per_page"))).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "tab": tab,
        "tabs": list(TAB_LABELS.items()),
        "tab_label": TAB_LABELS[tab].lower(),
        "sees_all": user.has_perm("crm.view_all_records"),
        "zone": user_zone(user),
    }
    return render(request, "crm/scheduled_list.html", context)


@permission_required("crm.change_scheduledemail", raise_exception=True)
def scheduled_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a waiting email: recipients, subject, body and time (its sender only)."""
    scheduled = _get_scheduled_for_user(request, pk)
    user = current_user(request)
    if scheduled.sender_id != user.pk:
        raise PermissionDenied
    waiting = scheduled.status == ScheduledEmail.Status.SCHEDULED
    initial = {
        "to": scheduled.to_addresses,
        "cc": scheduled.cc_addresses,
        "bcc": scheduled.bcc_addresses,
        "subject": scheduled.subject,
        "html_body": scheduled.html_body,
        "send_at": scheduled.send_at,
    }
    form = forms.EmailComposeForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        user=user,
        later=True,
        campaigns=None,
    )
    for name in ("template", "related_to"):
        del form.fields[name]
    if request.method == "POST" and not waiting:
        form.add_error(None, "It is no longer waiting: it has been sent or cancelled.")
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            scheduled_email_update(
                scheduled=scheduled,
                to=data["to"],
                cc=data["cc"],
                bcc=data["bcc"],
                subject=data["subject"],
                html_body=data["html_body"],
                send_at=data["send_at"],
            )
        except ScheduleRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Scheduled email changed.")
            return redirect("crm:scheduled_list")
    context = {
        "scheduled": scheduled,
        "waiting": waiting,
        "form": form,
        "templates": {},
        "body": editable_html(form["html_body"].value() or ""),
    }
    return render(request, "crm/scheduled_edit.html", context)


@permission_required("crm.change_scheduledemail", raise_exception=True)
def scheduled_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a waiting email, after a confirmation; its sender, or a manager or an admin."""
    scheduled = _get_scheduled_for_user(request, pk)
    if request.method == "POST":
        if scheduled_email_cancel(scheduled=scheduled):
            messages.success(request, f"“{scheduled}” cancelled: it will not be sent.")
        else:
            messages.error(
                request, f"“{scheduled}” could not be cancelled: it is no longer waiting."
            )
        return redirect("crm:scheduled_list")
    return render(
        request,
        "crm/scheduled_confirm_cancel.html",
        {"scheduled": scheduled, "zone": user_zone(current_user(request))},
    )
