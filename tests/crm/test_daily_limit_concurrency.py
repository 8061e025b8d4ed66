"""Two reps sending at the same moment cannot go past the daily limit together."""

import threading

import pytest
from django.db import connection

from crm.models import EmailMessage, OrgSettings
from crm.services import SendRefused, email_send

# Each thread has its own database connection: the rows must be committed for both to see them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_sends_respect_the_daily_limit(rep, other_rep, make_contact) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one writer at a time)")
    org = OrgSettings.load()
    org.daily_single_email_limit = 1
    org.save()
    people = [make_contact(email=f"p{n}@example.com") for n in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def send(sender, person) -> None:
        try:
            start.wait(timeout=10)
            email_send(sender=sender, to=[person], subject="Hi", html_body="<p>Hi</p>")
            outcomes.append("sent")
        except SendRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(sender, person))
        for sender, person in zip((rep, other_rep), people, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["refused", "sent"]
    assert EmailMessage.objects.count() == 1
