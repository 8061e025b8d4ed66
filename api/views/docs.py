"""/api/docs/: the API's reference, read from the OpenAPI description and rendered on the
server. Swagger UI and Redoc load their scripts from a CDN or inline, which our
Content-Security-Policy refuses (script-src 'self'), and drf-spectacular-sidecar (which serves
them locally) is not a dependency; a page of plain HTML needs neither."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    """A property's type in words: "string (date)", "integer or null", "one of a, b"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema or "oneOf" in schema:
        parts = [_type(part) for part in schema.get("allOf", schema.get("oneOf", []))]
        return " or ".join(part for part in parts if part)
    if "enum" in schema:
        return "one of " + ", ".join(
            str(value) for value in schema["enum"] if value not in ("", None)
        )
    kind = str(schema.get("type", ""))
    if kind == "array":
        kind = f"list of {_type(schema.get('items', {}))}"
    if schema.get("format"):
        kind += f" ({schema['format']})"
    if schema.get("nullable"):
        kind += " or null"
    return kind


def _fields(components: dict[str, Any], reference: str) -> list[dict[str, Any]]:
    schema = components.get(reference.rsplit("/", 1)[-1], {})
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type(field),
            "required": name in required,
            "read_only": field.get("readOnly", False),
            "description": field.get("description", ""),
        }
        for name, field in schema.get("properties", {}).items()
    ]


def _body(components: dict[str, Any], content: dict[str, Any]) -> list[dict[str, Any]]:
    for media in content.values():
        reference = media.get("schema", {}).get("$ref")
        if reference:
            return _fields(components, reference)
    return []


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of the description, in path order, with what a reader needs."""
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            request_body = operation.get("requestBody", {}).get("content", {})
            success = {
                code: response
                for code, response in operation.get("responses", {}).items()
                if code.startswith("2")
            }
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "id": operation.get("operationId", ""),
                    "tag": (operation.get("tags") or ["api"])[0],
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        {
                            "name": parameter["name"],
                            "in": parameter.get("in", ""),
                            "required": parameter.get("required", False),
                            "type": _type(parameter.get("schema", {})),
                            "description": parameter.get("description", ""),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                    "request": _body(components, request_body),
                    "responses": [
                        {"code": code, "fields": _body(components, response.get("content", {}))}
                        for code, response in success.items()
                    ],
                    "errors": sorted(
                        code for code in operation.get("responses", {}) if code[0] in "45"
                    ),
                }
            )
    return found


@cache
def _reference() -> dict[str, Any]:
    """The description read once per process (it changes only with the code; generating it
    takes a second)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {"info": schema.get("info", {}), "operations": operations(schema)}


def api_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api/docs.html", _reference())
