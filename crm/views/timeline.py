"""The Activity Timeline on a record's page and what is done from it: load more, log a call,
the person's privacy choices."""

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm import forms
from crm.calls import call_log
from crm.models import (
    Account,
    Contact,
    Lead,
    Opportunity,
    OrgSettings,
)
from crm.privacy_changes import PRIVACY_FLAGS, privacy_update
from crm.scheduling import user_zone
from crm.timeline import timeline
from crm.views.access import current_user, get_kind_for_user, get_record_for_user
from privacy.models import Individual


def timeline_context(
    request: HttpRequest, record: Contact | Lead | Account | Opportunity, kind: str
) -> dict[str, Any]:
    """One page of the record's timeline, filtered as the query string says."""
    form = forms.TimelineFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = timeline(
        record,
        kind=filters.get("show") or "all",
        start=filters.get("start"),
        end=filters.get("end"),
        cursor=request.GET.get("before", ""),
        previous_month=request.GET.get("month", ""),
        viewer=current_user(request),
    )
    more_url = ""
    if page.next_cursor:
        query = {k: v for k, v in request.GET.items() if k in form.fields}
        last = timezone.localtime(page.entries[-1].when)
        query |= {"before": page.next_cursor, "month": last.strftime("%Y-%m")}
        more_url = f"{reverse('crm:timeline', args=[kind, record.pk])}?{urlencode(query)}"
    return {
        "timeline": page,
        "timeline_form": form,
        "timeline_kind": kind,
        "timeline_record": record,
        "more_url": more_url,
        "log_call_form": forms.LogCallForm(),
        "today": timezone.localdate(),
        # Scheduled emails' times, as the Scheduled page writes them: in the viewer's zone.
        "viewer_zone": user_zone(current_user(request)),
    }


def timeline_page(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """The next page of a timeline, as a fragment the page's "Load more" appends."""
    record = get_kind_for_user(request, kind, pk, permission=f"crm.view_{kind}")
    context = timeline_context(request, record, kind)
    return render(request, "crm/partials/timeline_entries.html", context)


@require_POST
def log_call(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    record = get_kind_for_user(request, kind, pk, permission="crm.add_task")
    form = forms.LogCallForm(request.POST)
    if form.is_valid():
        call_log(
            owner=current_user(request),
            record=record,
            subject=form.cleaned_data["subject"],
            comments=form.cleaned_data["comments"],
        )
        messages.success(request, "Call logged.")
    else:
        messages.error(request, "The call was not logged: give it a subject.")
    return redirect(record)


@require_POST
def person_privacy(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Change a Contact's or Lead's privacy choices from their page."""
    if kind not in ("contact", "lead"):
        raise Http404
    model: type[Contact] | type[Lead] = Contact if kind == "contact" else Lead
    person = get_record_for_user(model, request, pk, "individual")
    form = _privacy_form(request, person, data=request.POST)
    if not form.may_edit:
        raise PermissionDenied
    form.is_valid()  # booleans: every input is valid; disabled fields keep their initial value
    data = form.cleaned_data
    changes = privacy_update(
        person=person,
        by=current_user(request),
        source="record page",
        email_opt_out=data["has_opted_out_of_email"] if form.may_opt_out else None,
        flags={name: data[name] for name in PRIVACY_FLAGS} if form.may_change_individual else None,
    )
    if changes:
        messages.success(request, "Privacy saved: " + ", ".join(str(c) for c in changes) + ".")
    else:
        messages.info(request, "Nothing changed.")
    return redirect(person)


def _privacy_form(
    request: HttpRequest, person: Contact | Lead, data: Any = None
) -> forms.PrivacyForm:
    """The person's privacy form, with what this user may change: Email Opt Out with the
    record's change permission, the Individual's flags with privacy.change_individual."""
    kind = "contact" if isinstance(person, Contact) else "lead"
    individual = person.individual
    initial = {"has_opted_out_of_email": person.has_opted_out_of_email} | {
        name: bool(individual and getattr(individual, name)) for name in PRIVACY_FLAGS
    }
    return forms.PrivacyForm(
        data,
        initial=initial,
        may_opt_out=request.user.has_perm(f"crm.change_{kind}"),
        may_change_individual=request.user.has_perm("privacy.change_individual"),
    )


def privacy_context(request: HttpRequest, person: Contact | Lead) -> dict[str, Any] | None:
    """The person's privacy at a glance, when Setup makes it available in records."""
    if not OrgSettings.load().data_protection_in_records:
        return None
    kind = "contact" if isinstance(person, Contact) else "lead"
    form = _privacy_form(request, person)
    return {
        "individual": person.individual,
        "flags": [(Individual.flag_label(name), form.initial[name]) for name in PRIVACY_FLAGS],
        "form": form,
        "may_edit": form.may_edit,
        "url": reverse("crm:person_privacy", args=[kind, person.pk]),
    }
