"""The OpenAPI description's error responses: every operation documents the problem details
(RFC 9457) it may answer, so clients and the schema tests know their shape."""

from __future__ import annotations

from typing import Any

from django_filters import FilterSet

from api.errors import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Field name: its messages (validation errors only).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
}
ERRORS = {
    "400": "The request did not validate (see errors).",
    "401": "No credentials, or a token unknown, revoked or expired.",
    "403": "Your role may not do this.",
    "404": "Not found, or not visible to you.",
    "429": "Too many requests with this token (see Retry-After).",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the token may be used again.",
        "schema": {"type": "integer"},
    }
}
CONFLICT = {"409": "The record's state refuses this (a lead already converted, a record in use)."}


def problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a Problem component and, on every operation, the
    error statuses it may answer (what an operation documents itself is kept)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            errors = ERRORS | (CONFLICT if method in ("post", "put", "patch", "delete") else {})
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": reference})
            responses["429"].setdefault("headers", RETRY_AFTER)
    return result


def filter_fields_uncached(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular reads each filter's form field on the filter sets' class-level filters,
    which caches the field there (django-filter's `Filter.field`); every filter set built later
    would copy that cached field, and the list pages' empty choices ("Any status") would be lost.
    Drop the cache once the description is built."""
    pending: list[type[FilterSet]] = [FilterSet]
    while pending:
        filterset = pending.pop()
        pending.extend(filterset.__subclasses__())
        for declared in filterset.base_filters.values():
            declared.__dict__.pop("_field", None)
    return result
