"""Every list's filters and every record form say what an empty choice means: no "---------"."""

import pytest
from django.urls import reverse

EMPTY = "---------"


@pytest.mark.parametrize(
    "name",
    ["account_list", "contact_list", "lead_list", "opportunity_list", "task_list", "email_list"],
)
def test_a_lists_filters_name_their_empty_choice(client_for, manager, name) -> None:
    html = client_for(manager).get(reverse(f"crm:{name}")).content.decode()

    assert EMPTY not in html
    assert '<option value="" selected>Any owner</option>' in html or name == "email_list"


def test_the_lead_list_says_any_status_and_any_lead_source(client_for, rep) -> None:
    html = client_for(rep).get(reverse("crm:lead_list")).content.decode()

    assert '<option value="" selected>Any status</option>' in html
    assert '<option value="" selected>Any lead source</option>' in html


def test_the_owner_filter_lists_people_by_name(client_for, manager, rep) -> None:
    html = client_for(manager).get(reverse("crm:contact_list")).content.decode()

    assert f'<option value="{rep.pk}">Rita Rep</option>' in html


def test_the_campaign_lists_filters_name_their_empty_choice(client_for, rep) -> None:
    html = client_for(rep).get(reverse("campaigns:list")).content.decode()

    assert EMPTY not in html
    assert '<option value="" selected>Any type</option>' in html


@pytest.mark.parametrize("name", ["account_create", "contact_create", "opportunity_create"])
def test_a_record_form_says_no_account_rather_than_dashes(client_for, manager, name) -> None:
    html = client_for(manager).get(reverse(f"crm:{name}")).content.decode()

    assert EMPTY not in html


def test_an_optional_lookup_reads_no_account(client_for, rep) -> None:
    html = client_for(rep).get(reverse("crm:contact_create")).content.decode()

    assert '<option value="" selected>No account</option>' in html


def test_a_task_form_names_each_empty_lookup(client_for, rep) -> None:
    html = client_for(rep).get(reverse("crm:task_create")).content.decode()

    assert EMPTY not in html
    assert '<option value="" selected>No contact</option>' in html
