"""Two workers creating follow-ups at the same moment still leave one open follow-up a record."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from crm.activity import follow_ups_create
from crm.models import Contact, Lead, Opportunity, Task
from tests.conftest import run_at_once

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_two_concurrent_runs_make_one_open_follow_up_per_record(rep) -> None:
    if connection.vendor != "postgresql":
        # SQLite runs one writer at a time: there is no race to test.
        pytest.skip("concurrent writers need PostgreSQL")
    Contact.objects.bulk_create(Contact(last_name=f"C{i}", owner=rep) for i in range(200))
    Lead.objects.bulk_create(Lead(last_name=f"L{i}", company="X", owner=rep) for i in range(50))
    Opportunity.objects.bulk_create(
        Opportunity(name=f"O{i}", owner=rep, close_date=NOW.date()) for i in range(50)
    )
    for model in (Contact, Lead, Opportunity):
        model.objects.update(created_at=NOW - timedelta(days=30))
    with time_machine.travel(NOW, tick=False):
        errors = run_at_once(follow_ups_create, follow_ups_create)

    assert errors == []
    follow_ups = Task.objects.filter(kind=Task.Kind.FOLLOW_UP).exclude(status="completed")
    assert follow_ups.filter(who_contact__isnull=False).count() == 200
    assert follow_ups.filter(who_lead__isnull=False).count() == 50
    assert follow_ups.filter(what_opportunity__isnull=False).count() == 50
    assert follow_ups.count() == 300
