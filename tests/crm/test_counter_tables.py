"""The tables ingestion counts into leave room on each page, so its updates can be made in place."""

import pytest
from django.db import connection

COUNTER_TABLES = ("crm_emailmessage", "crm_emailmessagerelation", "crm_trackedlink")


@pytest.mark.django_db
def test_the_counter_tables_leave_a_fifth_of_each_page_free_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("fillfactor is a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [list(COUNTER_TABLES)],
        )
        options = dict(cursor.fetchall())

    assert options == {table: ["fillfactor=80"] for table in COUNTER_TABLES}


@pytest.mark.django_db
def test_a_recipients_contact_and_lead_are_indexed_once_each() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "crm_emailmessagerelation")
    indexed = sorted(
        tuple(c["columns"])
        for c in constraints.values()
        if c["index"] and {"contact_id", "lead_id"} & set(c["columns"])
    )

    assert indexed == [("contact_id", "email_id"), ("lead_id", "email_id")]
