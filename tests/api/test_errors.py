"""Every API error is RFC 9457 problem details (application/problem+json)."""

import pytest
from django.test import Client

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request["PATH_INFO"] or body["instance"].startswith(
        response.request["PATH_INFO"]
    )
    return body


def test_a_request_that_does_not_validate_is_a_400_with_field_errors(api_for, rep):
    response = api_for(rep).post(
        "/api/v1/tasks/", {"status": "nonsense"}, content_type="application/json"
    )
    body = assert_problem(response, 400)
    assert set(body["errors"]) >= {"subject", "status"}
    assert all(isinstance(message, str) for message in body["errors"]["subject"])


def test_the_page_forms_rules_hold_on_the_api(api_for, rep, make_account, make_contact):
    """A person account has one contact; a task is about a contact or a lead, not both."""
    person = make_account(name="Ada Lovelace", is_person_account=True)
    make_contact(account=person)
    client = api_for(rep)
    response = client.post(
        "/api/v1/contacts/",
        {"last_name": "Byron", "account": person.pk},
        content_type="application/json",
    )
    body = assert_problem(response, 400)
    assert "person account" in body["errors"].get("account", [""])[0], body
    contact = make_contact(email="b@example.com")
    lead = rep and __import__("crm.models", fromlist=["Lead"]).Lead.objects.create(
        last_name="L", company="C", owner=rep
    )
    response = client.post(
        "/api/v1/tasks/",
        {"subject": "Both", "who_contact": contact.pk, "who_lead": lead.pk},
        content_type="application/json",
    )
    assert "who_lead" in assert_problem(response, 400)["errors"]


def test_no_credentials_is_a_401_with_a_bearer_challenge(rep):
    response = Client().get("/api/v1/accounts/")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_permission_is_a_403(api_for, rep, outsider, make_account):
    assert_problem(api_for(outsider).get("/api/v1/accounts/"), 403)
    account = make_account()
    assert_problem(api_for(rep).delete(f"/api/v1/accounts/{account.pk}/"), 403)


def test_another_reps_record_and_an_unknown_path_are_404s(api_for, rep, other_rep, make_account):
    theirs = make_account(owner=other_rep)
    assert_problem(api_for(rep).get(f"/api/v1/accounts/{theirs.pk}/"), 404)
    assert_problem(api_for(rep).get("/api/v1/no-such-thing/"), 404)
    assert_problem(Client().get("/api/nothing/here"), 404)


def test_an_unsupported_method_is_a_405(api_for, rep):
    assert_problem(api_for(rep).put("/api/v1/accounts/"), 405)


@pytest.mark.parametrize("cursor", ["garbage!", "cD1hYmM=", "cD0lMDA="])
def test_a_bad_cursor_is_a_404_problem(api_for, rep, cursor):
    assert_problem(api_for(rep).get(f"/api/v1/accounts/?cursor={cursor}"), 404)


def test_a_token_over_its_rate_is_a_429_with_retry_after(api_for, rep, settings):
    settings.API_RATE_LIMIT = "2/min"
    client = api_for(rep)
    assert client.get("/api/v1/accounts/").status_code == 200
    assert client.get("/api/v1/accounts/").status_code == 200
    response = client.get("/api/v1/accounts/")
    assert_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another token of the same user has its own count.
    assert api_for(rep).get("/api/v1/accounts/").status_code == 200


def test_a_browser_session_is_not_rate_limited_per_token(client_for, rep, settings):
    settings.API_RATE_LIMIT = "1/min"
    client = client_for(rep)
    assert [client.get("/api/v1/accounts/").status_code for _ in range(3)] == [200] * 3


@pytest.mark.parametrize("body", ['{"name": "\\ud800"}', '{"name": "a\\u0000b"}', "{nope", "[1]"])
def test_a_body_that_cannot_be_stored_or_read_is_a_400(api_for, rep, body):
    response = api_for(rep).post("/api/v1/accounts/", body, content_type="application/json")
    assert_problem(response, 400)
