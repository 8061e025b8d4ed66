"""The retention page: Setup's policy in words and the nightly runs, for admins only."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from crm.models import OrgSettings
from dataprotection.models import RetentionRun

URL = reverse("dataprotection:retention")


def test_an_admin_reads_the_policy_from_setup_and_the_runs_newest_first(
    client_for, admin_user, django_assert_num_queries
) -> None:
    org = OrgSettings.load()
    org.email_body_retention_months = 18
    org.save()
    for day, bodies in ((1, 7), (2, 0)):
        with time_machine.travel(datetime(2026, 6, day, 3, 5, tzinfo=UTC), tick=False):
            RetentionRun.objects.create(
                finished_at=datetime(2026, 6, day, 3, 6, tzinfo=UTC),
                counts={"email_bodies": bodies, "inbound_raw": 3, "email_log_events": 1200},
            )
    RetentionRun.objects.create(counts={"email_bodies": 2}, error="Inbound raw: failed (x)")
    client = client_for(admin_user)
    client.get(URL)  # the session and Setup's cache

    # The session, the user, two for permissions, the nav (tasks, roles), the count, the page.
    with django_assert_num_queries(8):
        page = client.get(URL)

    text = page.content.decode()
    assert "removed after 18 months" in text
    assert reverse("crm:setup") in text
    rows = page.context["table"].page.object_list.data
    assert [run.counts.get("email_bodies") for run in rows] == [2, 0, 7]
    assert "1200" in text and "Inbound raw: failed (x)" in text


def test_with_no_run_yet_it_says_so(client_for, admin_user) -> None:
    page = client_for(admin_user).get(URL)

    assert b"No run yet" in page.content


@pytest.mark.parametrize("persona", ["rep", "manager"])
def test_reps_and_managers_may_not_see_it(client_for, persona, request) -> None:
    assert client_for(request.getfixturevalue(persona)).get(URL).status_code == 403
