"""Two reps sending at the same moment cannot go past the daily limit together."""

from collections.abc import Callable

import pytest
from django.db import connection

from crm.models import EmailMessage, OrgSettings
from crm.sending import SendRefused, email_send
from tests.conftest import run_at_once

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_sends_respect_the_daily_limit(rep, other_rep, make_contact) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")
    org = OrgSettings.load()
    org.daily_single_email_limit = 1
    org.save()
    people = [make_contact(email=f"p{n}@example.com") for n in range(2)]

    def send(sender, person) -> Callable[[], object]:
        return lambda: email_send(sender=sender, to=[person], subject="Hi", html_body="<p>Hi</p>")

    errors = run_at_once(send(rep, people[0]), send(other_rep, people[1]))

    assert [type(error) for error in errors] == [SendRefused]  # one sent, one refused
    assert EmailMessage.objects.count() == 1
