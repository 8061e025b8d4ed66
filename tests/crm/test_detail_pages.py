"""Record pages show the record and its related lists in a fixed number of queries."""

import pytest
from django.urls import reverse

from crm.models import OpportunityContactRole, OrgSettings


@pytest.fixture(autouse=True)
def _setup_is_cached(db) -> None:
    OrgSettings.load()


@pytest.fixture
def full_account(make_account, make_contact, make_opportunity, make_task, make_individual):
    account = make_account(name="Analytical Engines")
    contacts = [
        make_contact(last_name=f"C{i}", account=account, individual=make_individual())
        for i in range(5)
    ]
    opportunity = make_opportunity(account=account)
    for contact in contacts:
        OpportunityContactRole.objects.create(opportunity=opportunity, contact=contact)
        make_task(who_contact=contact, what_account=account)
        make_task(who_contact=contact, what_opportunity=opportunity)
    return account, contacts[0], opportunity


@pytest.mark.parametrize(
    "kind,queries",
    [
        # session, user, permissions (2), the record (with its activity metrics), the navbar's
        # roles and count of open follow-ups and alerts, the timeline's emails, done tasks,
        # open tasks and scheduled emails, then per page:
        ("account", 14),  # privacy changes, contacts, opportunities
        ("contact", 14),  # privacy changes, roles with their opportunity, enrolment history
        ("opportunity", 12),  # contact roles
    ],
)
def test_a_record_page_runs_a_fixed_number_of_queries(
    client_for, rep, full_account, django_assert_num_queries, kind, queries
) -> None:
    account, contact, opportunity = full_account
    record = {"account": account, "contact": contact, "opportunity": opportunity}[kind]
    client = client_for(rep)

    with django_assert_num_queries(queries):
        response = client.get(reverse(f"crm:{kind}_detail", args=[record.pk]))

    assert response.status_code == 200
    assert str(record).encode() in response.content


def test_the_lead_and_task_pages_run_a_fixed_number_of_queries(
    client_for, rep, make_lead, make_task, make_contact, django_assert_num_queries
) -> None:
    lead = make_lead()
    task = make_task(who_lead=lead)
    client = client_for(rep)

    # ... with the lead's enrolment history in sequences (automation, through crm.hooks)
    with django_assert_num_queries(13):
        assert client.get(reverse("crm:lead_detail", args=[lead.pk])).status_code == 200
    with django_assert_num_queries(7):
        assert client.get(reverse("crm:task_detail", args=[task.pk])).status_code == 200


def test_the_contact_page_shows_privacy_flags_when_setup_allows(
    client_for, rep, make_contact, make_individual
) -> None:
    contact = make_contact(individual=make_individual(has_opted_out_tracking=True))

    page = client_for(rep).get(reverse("crm:contact_detail", args=[contact.pk]))

    assert ("Don't Track", True) in page.context["privacy"]["flags"]
    assert b'name="has_opted_out_tracking" class="form-check-input" disabled' in page.content
    assert b'id="id_has_opted_out_tracking" checked' in page.content


def test_the_contact_page_hides_privacy_flags_when_setup_says_so(
    client_for, rep, admin_user, make_contact, make_individual
) -> None:
    contact = make_contact(individual=make_individual(has_opted_out_tracking=True))
    org = OrgSettings.load()
    org.data_protection_in_records = False
    org.save()

    page = client_for(rep).get(reverse("crm:contact_detail", args=[contact.pk]))

    assert b"Don&#x27;t Track" not in page.content
