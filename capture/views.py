"""The Mailbox page: connect (tested first), status, folders, sync now, resume, disconnect.

Every view acts on the signed-in user's own mailbox only; no view names another's.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from capture import imap
from capture.addresses import capture_address
from capture.credentials import KEY_MISSING, encryption_available
from capture.forms import ConnectionForm, FoldersForm
from capture.mailboxes import (
    mailbox_connect,
    mailbox_disconnect,
    mailbox_folders_set,
    mailbox_probe,
    mailbox_resume,
)
from capture.models import Mailbox
from capture.sync import SYNC_MAILBOX
from crm import jobs
from crm.models import User


def _mailbox(user: User) -> Mailbox | None:
    return Mailbox.objects.filter(user=user).first()


def _page(
    request: HttpRequest,
    *,
    form: ConnectionForm | None = None,
    folders: FoldersForm | None = None,
    probe_error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    mailbox = _mailbox(user)
    if form is None:
        initial = (
            {
                "host": mailbox.host,
                "port": mailbox.port,
                "security": mailbox.security,
                "username": mailbox.username,
                "other_addresses": mailbox.other_addresses,
            }
            if mailbox
            else {"username": user.email}
        )
        form = ConnectionForm(initial=initial)
    if mailbox is not None and folders is None:
        folders = FoldersForm(mailbox=mailbox)
    context = {
        "mailbox": mailbox,
        "form": form,
        "folders_form": folders,
        "probe_error": probe_error,
        "capture_address": capture_address(user.pk),
        "encryption_available": encryption_available(),
    }
    return render(request, "capture/mailbox.html", context, status=status)


@login_required
def mailbox_page(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST: test the connection, or test it and connect (action=connect)."""
    if request.method != "POST":
        return _page(request)
    user = request.user
    assert isinstance(user, User)
    form = ConnectionForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    if not encryption_available():
        return _page(request, form=form, probe_error=KEY_MISSING, status=400)
    try:
        probe = mailbox_probe(account=form.account())
    except imap.MailboxError as error:
        return _page(request, form=form, probe_error=str(error), status=400)
    if request.POST.get("action") != "connect":
        messages.success(request, f"{probe.summary} Nothing was saved yet.")
        return _page(request, form=form)
    mailbox_connect(
        user=user,
        account=form.account(),
        security=form.cleaned_data["security"],
        probe=probe,
        other_addresses=form.cleaned_data["other_addresses"],
    )
    messages.success(request, f"Mailbox connected. {probe.summary}")
    return redirect("capture:mailbox")


@login_required
@require_POST
def mailbox_folders(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    mailbox = _mailbox(user)
    if mailbox is None:
        messages.error(request, "Connect a mailbox first.")
        return redirect("capture:mailbox")
    form = FoldersForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return _page(request, folders=form, status=400)
    mailbox_folders_set(
        mailbox=mailbox,
        inbox=form.cleaned_data["inbox"],
        sent=form.cleaned_data["sent"],
        private=form.cleaned_data["private"],
    )
    messages.success(request, "Folders saved: the next sync reads them.")
    return redirect("capture:mailbox")


@login_required
@require_POST
def mailbox_sync_now(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    mailbox = _mailbox(user)
    if mailbox is None or mailbox.is_paused:
        messages.error(request, "There is no connected, running mailbox to sync.")
        return redirect("capture:mailbox")
    jobs.enqueue(SYNC_MAILBOX, mailbox.pk)
    messages.success(request, "A sync has been started: new mail appears in a moment.")
    return redirect("capture:mailbox")


@login_required
@require_POST
def mailbox_resume_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    mailbox = _mailbox(user)
    if mailbox is not None:
        mailbox_resume(mailbox=mailbox)
        messages.success(request, "Syncing resumed.")
    return redirect("capture:mailbox")


@login_required
def mailbox_disconnect_view(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation. POST: delete the connection and its stored password."""
    user = request.user
    assert isinstance(user, User)
    mailbox = _mailbox(user)
    if mailbox is None:
        return redirect("capture:mailbox")
    if request.method != "POST":
        return render(request, "capture/disconnect.html", {"mailbox": mailbox})
    mailbox_disconnect(user=user)
    messages.success(
        request, "Mailbox disconnected: its password is deleted. Captured email stays."
    )
    return redirect("capture:mailbox")
