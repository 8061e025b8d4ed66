"""Activity metrics through the API: of the records the user may see, as the record pages."""

import pytest
from django.utils import timezone

from crm.models import ActivityMetric

METRICS = "/api/v1/metrics/"


@pytest.fixture
def metrics(other_rep, make_contact, make_lead, make_account):
    now = timezone.now()
    rows = {
        "contact": ActivityMetric.objects.create(contact=make_contact(), computed_at=now),
        "lead": ActivityMetric.objects.create(lead=make_lead(), computed_at=now, inactive_days=40),
        "account": ActivityMetric.objects.create(account=make_account(), computed_at=now),
        "theirs": ActivityMetric.objects.create(
            contact=make_contact(email="o@example.com", owner=other_rep),
            computed_at=now,
            emails_sent_30d=3,
        ),
    }
    return rows


def _ids(response):
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def test_a_rep_reads_the_metrics_of_their_records(client_for, rep, metrics) -> None:
    mine = sorted(metrics[k].pk for k in ("contact", "lead", "account"))

    assert _ids(client_for(rep).get(METRICS)) == mine
    assert client_for(rep).get(f"{METRICS}{metrics['theirs'].pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["manager", "admin_user"])
def test_managers_and_admins_read_every_records_metrics(
    client_for, request, persona, metrics
) -> None:
    user = request.getfixturevalue(persona)

    assert _ids(client_for(user).get(METRICS)) == sorted(m.pk for m in metrics.values())


def test_metrics_filter_by_record_and_kind(client_for, manager, metrics) -> None:
    client = client_for(manager)
    theirs = metrics["theirs"]

    one = client.get(f"{METRICS}?contact={theirs.contact_id}").json()["results"]

    assert [(row["id"], row["emails_sent_30d"]) for row in one] == [(theirs.pk, 3)]
    assert _ids(client.get(f"{METRICS}?kind=lead")) == [metrics["lead"].pk]
    assert _ids(client.get(f"{METRICS}?inactive_days_min=30")) == [metrics["lead"].pk]


def test_a_user_without_a_role_sees_no_metrics(client_for, outsider, metrics) -> None:
    assert _ids(client_for(outsider).get(METRICS)) == []
