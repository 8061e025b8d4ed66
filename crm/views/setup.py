"""Setup (admins): the org's switches; a change other apps react to goes through crm.hooks."""

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm import forms, hooks
from crm.models import (
    OrgSettings,
)
from crm.views.access import current_user
from privacy.audit import audit_changes
from privacy.models import AuditEntry


@permission_required("crm.manage_setup", raise_exception=True)
def setup(request: HttpRequest) -> HttpResponse:
    org = OrgSettings.load()
    form = forms.SetupForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        if form.has_changed():
            user = current_user(request)
            with transaction.atomic():
                org = form.save(commit=False)
                org.updated_by = user
                org.save()
                hooks.setup_changed(fields=form.changed_data)
                audit_changes(
                    actor=user,
                    action=AuditEntry.Action.SETUP,
                    target="Setup",
                    changes=[
                        (
                            str(form.fields[name].label),
                            _shown(form.fields[name], form.initial.get(name)),
                            _shown(form.fields[name], form.cleaned_data[name]),
                        )
                        for name in form.changed_data
                    ],
                )
            changed = ", ".join(str(form.fields[name].label) for name in form.changed_data)
            messages.success(request, f"Setup saved: {changed}.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("crm:setup")
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    return render(request, "crm/setup.html", {"form": form, "org": org})


def _shown(field: django_forms.Field, value: Any) -> Any:
    """A setting's value as the Setup page shows it: a choice by its label (a switch is
    written "on" / "off" by the audit trail)."""
    if isinstance(field, django_forms.ChoiceField):
        choices: Any = field.choices
        return dict(choices).get(value, value)
    return value
