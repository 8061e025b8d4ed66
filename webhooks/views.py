"""Admins' pages for outgoing webhooks: endpoints, their secrets, and each delivery's attempts."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm import jobs
from crm.listing import table_configure
from crm.views.access import current_user
from webhooks.dispatch import endpoint_disable
from webhooks.events import sample_delivery_add
from webhooks.forms import EndpointForm
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.signing import secret_new
from webhooks.tables import DeliveryTable, EndpointTable

DISPATCH = "webhooks.tasks.dispatch_deliveries"
# The session key holding a new secret until the endpoint page has shown it once.
SHOWN_ONCE = "webhooks_new_secret"

admin_only = permission_required("webhooks.change_endpoint", raise_exception=True)


def _endpoint(pk: int) -> Endpoint:
    return get_object_or_404(Endpoint.objects.select_related("owner"), pk=pk)


def _show_secret_once(request: HttpRequest, endpoint: Endpoint) -> None:
    request.session[SHOWN_ONCE] = {"endpoint": endpoint.pk, "secret": endpoint.secret}


@admin_only
def endpoint_list(request: HttpRequest) -> HttpResponse:
    endpoints = Endpoint.objects.annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING))
    )
    table = table_configure(request, EndpointTable(endpoints))
    return render(request, "webhooks/endpoint_list.html", {"table": table})


@admin_only
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.owner = current_user(request)
        endpoint.save()
        _show_secret_once(request, endpoint)
        messages.success(request, f"Endpoint {endpoint.name} added.")
        return redirect(endpoint)
    context = {
        "form": form,
        "title": "New webhook endpoint",
        "cancel_url": reverse("webhooks:list"),
    }
    return render(request, "crm/record_form.html", context)


@admin_only
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Endpoint {endpoint.name} saved.")
        return redirect(endpoint)
    context = {
        "form": form,
        "title": f"Edit {endpoint.name}",
        "cancel_url": endpoint.get_absolute_url(),
    }
    return render(request, "crm/record_form.html", context)


def _deliveries(endpoint: Endpoint) -> Any:
    last = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-attempted_at", "-pk")
    return endpoint.deliveries.annotate(
        last_status_code=Subquery(last.values("status_code")[:1]),
        last_response_ms=Subquery(last.values("response_ms")[:1]),
        last_error=Subquery(last.values("error")[:1]),
    )


@admin_only
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    shown = request.session.get(SHOWN_ONCE)
    secret = None
    if shown and shown.get("endpoint") == endpoint.pk:
        secret = shown["secret"]
        del request.session[SHOWN_ONCE]
    table = table_configure(request, DeliveryTable(_deliveries(endpoint)))
    context = {"endpoint": endpoint, "table": table, "secret": secret}
    return render(request, "webhooks/endpoint_detail.html", context)


@admin_only
def endpoint_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST makes a new secret, shown once on the endpoint page."""
    endpoint = _endpoint(pk)
    if request.method == "POST":
        endpoint.secret = secret_new()
        endpoint.save(update_fields=["secret", "updated_at"])
        _show_secret_once(request, endpoint)
        messages.success(request, "A new signing secret was made; the old one no longer signs.")
        return redirect(endpoint)
    return render(request, "webhooks/endpoint_confirm.html", _confirm("rotate", endpoint))


@admin_only
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    if request.method == "POST":
        endpoint.delete()
        messages.success(request, f"Endpoint {endpoint.name} deleted with its delivery log.")
        return redirect("webhooks:list")
    return render(request, "webhooks/endpoint_confirm.html", _confirm("delete", endpoint))


def _confirm(action: str, endpoint: Endpoint) -> dict[str, Any]:
    if action == "rotate":
        return {
            "endpoint": endpoint,
            "question": f"Make a new signing secret for {endpoint.name}?",
            "consequence": "Deliveries are signed with the new secret at once: the receiver "
            "must be given it, or it will refuse them. The new secret is shown once.",
            "button": "Make a new secret",
            "danger": False,
        }
    return {
        "endpoint": endpoint,
        "question": f"Delete the endpoint {endpoint.name}?",
        "consequence": "Its pending deliveries are never sent and its delivery log is deleted. "
        "This cannot be undone.",
        "button": "Delete",
        "danger": True,
    }


@admin_only
@require_POST
def endpoint_disable_view(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    who = current_user(request).display_name
    endpoint_disable(endpoint, reason=f"disabled by {who}", notify=False)
    messages.success(request, f"Endpoint {endpoint.name} disabled; events are kept for it.")
    return redirect(endpoint)


@admin_only
@require_POST
def endpoint_enable(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        is_active=True, disabled_at=None, disabled_reason="", failing_since=None
    )
    jobs.enqueue(DISPATCH)
    messages.success(request, f"Endpoint {endpoint.name} enabled; pending deliveries go out now.")
    return redirect(endpoint)


@admin_only
@require_POST
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(pk)
    if not endpoint.is_active:
        messages.error(request, "Enable the endpoint first: a disabled endpoint sends nothing.")
        return redirect(endpoint)
    sample_delivery_add(endpoint)
    jobs.enqueue(DISPATCH)
    messages.success(request, "A test event was queued; its attempt appears below.")
    return redirect(endpoint)


@admin_only
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery.objects.select_related("endpoint"), pk=pk)
    context = {
        "delivery": delivery,
        "endpoint": delivery.endpoint,
        "attempts": list(delivery.attempt_set.all()),
        "payload": json.dumps(delivery.payload, indent=2),
    }
    return render(request, "webhooks/delivery_detail.html", context)
