"""Every API error as RFC 9457 problem details (application/problem+json): type, title,
status, detail, instance, and "errors" ({field: [messages]}) when a request did not validate."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(
    status_code: int, *, detail: str, instance: str, errors: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The problem document for a status: its type is "about:blank" (RFC 9457 3.1.1: the
    status says it all), its title the status's phrase."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def _field_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure flattened to {"field": [messages]} ("roles.0.contact")."""
    if isinstance(data, dict):
        flat: dict[str, list[str]] = {}
        for key, value in data.items():
            name = "non_field_errors" if key in ("__all__", "non_field_errors") else str(key)
            flat.update(
                _field_errors(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
            )
        return flat
    if isinstance(data, list) and any(isinstance(item, dict | list) for item in data):
        flat = {}
        for index, item in enumerate(data):
            flat.update(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = data if isinstance(data, list) else [data]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST framework's EXCEPTION_HANDLER: its own handling (status, Retry-After, WWW-
    Authenticate), the body rewritten as problem details."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""
    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(response.data)
        detail = "The request did not validate: see errors."
    elif isinstance(exc, Http404):
        detail = "Not found, or not visible to you."
    elif isinstance(exc, PermissionDenied):
        detail = "You do not have permission to do this."
    elif isinstance(exc, exceptions.APIException):
        detail = str(exc.detail) if not isinstance(exc.detail, list | dict) else str(exc)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            detail = f"Too many requests with this token; retry in {int(wait) or 1} seconds."
    else:
        detail = HTTPStatus(response.status_code).phrase
    response.data = problem(response.status_code, detail=detail, instance=instance, errors=errors)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class Conflict(exceptions.APIException):
    """409: the record's state refuses the request (a lead already converted, a record still
    in use)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The record's state refuses this."
    default_code = "conflict"


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that names no endpoint: a problem document, not the HTML page."""
    body = problem(404, detail="No API endpoint here.", instance=request.get_full_path())
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
