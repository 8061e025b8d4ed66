"""Setup (admins): the org's switches; a change other apps react to goes through crm.hooks."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm import forms, hooks
from crm.models import (
    OrgSettings,
)
from crm.views.access import current_user


@permission_required("crm.manage_setup", raise_exception=True)
def setup(request: HttpRequest) -> HttpResponse:
    org = OrgSettings.load()
    form = forms.SetupForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        if form.has_changed():
            org = form.save(commit=False)
            org.updated_by = current_user(request)
            org.save()
            hooks.setup_changed(fields=form.changed_data)
            changed = ", ".join(str(form.fields[name].label) for name in form.changed_data)
            messages.success(request, f"Setup saved: {changed}.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("crm:setup")
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    return render(request, "crm/setup.html", {"form": form, "org": org})
