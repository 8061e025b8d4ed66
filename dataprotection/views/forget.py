"""forget pages: an admin confirms forgetting a person, and the job is queued."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods

from crm.views.access import current_user
from dataprotection import forget
from dataprotection.models import DataRequest
from dataprotection.people import KINDS, person_from

# Forgetting is an admin's act: the Admin role holds every privacy permission, reps and
# managers none.
PERMISSION = "privacy.delete_individual"


@permission_required(PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def forget_confirm(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """GET: what a forget erases and keeps; POST: the request is made and the job queued."""
    if kind not in KINDS:
        raise Http404("No such kind of record")
    person = person_from(kind, pk)
    preview = forget.forget_preview(person)
    pending = DataRequest.objects.filter(
        kind=DataRequest.Kind.FORGET,
        status__in=[DataRequest.Status.QUEUED, DataRequest.Status.RUNNING],
        **{f"{kind}_id": pk},
    ).first()
    if request.method == "POST" and not preview.already_forgotten and pending is None:
        data_request = forget.forget_request(actor=current_user(request), kind=kind, pk=pk)
        messages.success(request, f"{person.label} will be forgotten in a moment.")
        return redirect("dataprotection:request", data_request.pk)
    return render(
        request,
        "dataprotection/forget_confirm.html",
        {
            "person": person,
            "addresses": sorted(person.addresses),
            "names": sorted(person.names - {forget.FORGOTTEN_NAME}, key=len, reverse=True)[:1],
            "kind": kind,
            "preview": preview,
            "pending": pending,
            "backups": forget.BACKUPS,
            "record": _record_url(kind, pk),
        },
    )


def _record_url(kind: str, pk: int) -> str:
    if kind == "individual":
        return reverse("admin:privacy_individual_change", args=[pk])
    return reverse(f"crm:{kind}_detail", args=[pk])


urlpatterns: list[URLPattern] = [
    path("forget/<str:kind>/<int:pk>/", forget_confirm, name="forget"),
]
