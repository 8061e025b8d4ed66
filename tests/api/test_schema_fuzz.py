"""Schemathesis against the OpenAPI description: every operation, with the tokens of a rep, a
manager and an admin, answers no 5xx and nothing the description does not allow.

The description is read from the app itself (/api/schema/ through WSGI) and the requests go
through Django's WSGI handler in-process, on the test database (SQLite or PostgreSQL, as the
run is configured). A handful of examples per operation keeps the run short.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api.tokens import token_create
from campaigns.models import Campaign
from crm.models import Account, Contact, Lead, Opportunity, OpportunityContactRole, Task
from crm.sending import email_send

ROLES = ("rep", "manager", "admin_user")
# Random examples only (the coverage phase's boundary cases number hundreds per operation).
CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": 3},
    }
)


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, keeping the test's database connection (and its transaction)
    across requests, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(request, rep, manager, admin_user):
    """A token per role, and a few records of each kind so lists answer rows."""
    account = Account.objects.create(name="Acme", owner=rep, website="https://acme.example")
    contact = Contact.objects.create(
        last_name="Lovelace", email="ada@example.com", account=account, owner=rep
    )
    Lead.objects.create(last_name="Hopper", company="Navy", owner=rep)
    opportunity = Opportunity.objects.create(
        name="Pilot", account=account, owner=rep, close_date="2027-01-01", amount=1000
    )
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=contact, is_primary=True)
    Task.objects.create(subject="Call", who_contact=contact, owner=rep)
    email_send(sender=rep, to=[contact], subject="Hi", html_body="<p>Hi</p>")
    Campaign.objects.create(name="Spring", owner=manager)
    return {
        role: token_create(user=request.getfixturevalue(role), name="fuzz")[1] for role in ROLES
    }


@pytest.fixture
def api_schema(wsgi_app, tokens):
    headers = {"Authorization": f"Bearer {tokens['admin_user']}"}
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", wsgi_app, config=CONFIG, headers=headers
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_description(case, tokens):
    for role in ROLES:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {tokens[role]}"},
            checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
        )
