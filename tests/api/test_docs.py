"""The OpenAPI description (/api/schema/) and the reference page (/api/docs/)."""

import re

import yaml
from django.test import Client


def test_the_description_is_openapi_3_and_needs_a_login(rep, api_for):
    assert Client().get("/api/schema/").status_code == 401
    response = api_for(rep).get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"] == {"title": "Openrate API", "version": "1"}
    assert "/api/v1/leads/{id}/convert/" in schema["paths"]
    problem = schema["paths"]["/api/v1/accounts/"]["get"]["responses"]["429"]
    assert "application/problem+json" in problem["content"]
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_reference_page_lists_every_operation_without_scripts(client_for, rep):
    response = client_for(rep).get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("/api/v1/accounts/", "/api/v1/leads/{id}/convert/", "POST", "DELETE"):
        assert text in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script (CSP)
    assert "cdn" not in page.lower()


def test_the_reference_page_needs_a_login(client):
    response = client.get("/api/docs/")
    assert response.status_code == 302
