"""List pages: who sees what, search, filters, sorting, paging, empty states, bounded queries."""

import pytest
from django.urls import reverse

from crm.models import Contact, Lead, Task

LISTS = ["account", "contact", "lead", "opportunity", "task"]


@pytest.fixture
def two_reps_records(
    rep, other_rep, make_account, make_contact, make_lead, make_opportunity, make_task
):
    for owner in (rep, other_rep):
        account = make_account(name=f"{owner.username} Corp", owner=owner)
        for index in range(3):
            make_contact(last_name=f"{owner.username}-{index}", account=account, owner=owner)
        make_lead(last_name=f"{owner.username}-lead", owner=owner)
        make_opportunity(name=f"{owner.username} deal", account=account, owner=owner)
        make_task(subject=f"{owner.username} task", owner=owner)


@pytest.mark.parametrize("model", LISTS)
def test_a_rep_sees_only_their_own_records(client_for, rep, two_reps_records, model) -> None:
    response = client_for(rep).get(reverse(f"crm:{model}_list"))

    rows = list(response.context["table"].page.object_list)
    assert rows
    assert {row.record.owner for row in rows} == {rep}


@pytest.mark.parametrize("model", LISTS)
def test_a_manager_sees_every_reps_records(
    client_for, manager, rep, other_rep, two_reps_records, model
) -> None:
    response = client_for(manager).get(reverse(f"crm:{model}_list"))

    owners = {row.record.owner for row in response.context["table"].page.object_list}
    assert owners == {rep, other_rep}


@pytest.mark.parametrize("model", LISTS)
def test_each_list_runs_a_bounded_number_of_queries(
    client_for, manager, two_reps_records, django_assert_max_num_queries, model
) -> None:
    client = client_for(manager)
    client.get(reverse(f"crm:{model}_list"))  # warm the session and permission caches

    # the contact list's eight, and the owner filter's choices for a manager
    with django_assert_max_num_queries(9):
        response = client.get(reverse(f"crm:{model}_list"))

    assert response.status_code == 200


def test_the_contact_list_stays_at_the_same_query_count_with_more_rows(
    client_for, rep, make_contact, make_account, django_assert_num_queries
) -> None:
    client = client_for(rep)
    account = make_account()
    make_contact(account=account)
    client.get(reverse("crm:contact_list"))
    # session, user, user and group permissions, the row count, the rows (with their account and
    # activity metrics), the navbar's roles and its count of open follow-ups and alerts
    with django_assert_num_queries(8):
        client.get(reverse("crm:contact_list"))
    for index in range(20):
        make_contact(last_name=f"More {index}", account=make_account(name=f"A{index}"))

    with django_assert_num_queries(8):
        client.get(reverse("crm:contact_list"))


def test_search_matches_every_word_across_fields(
    client_for, rep, make_contact, make_account
) -> None:
    make_contact(first_name="Ada", last_name="Lovelace", account=make_account(name="Analytical"))
    make_contact(first_name="Ada", last_name="Byron", email="byron@example.com")

    response = client_for(rep).get(reverse("crm:contact_list"), {"q": "ada analytical"})

    names = [row.record.name for row in response.context["table"].page.object_list]
    assert names == ["Ada Lovelace"]


def test_a_choice_filter_narrows_the_list(client_for, rep, make_lead) -> None:
    make_lead(last_name="Open")
    make_lead(last_name="Working", status=Lead.Status.WORKING)

    response = client_for(rep).get(reverse("crm:lead_list"), {"status": "working"})

    assert [row.record.last_name for row in response.context["table"].page.object_list] == [
        "Working"
    ]


def test_the_list_sorts_by_a_column(client_for, rep, make_task) -> None:
    make_task(subject="b", priority=Task.Priority.LOW)
    make_task(subject="a", priority=Task.Priority.HIGH)

    response = client_for(rep).get(reverse("crm:task_list"), {"sort": "-subject"})

    assert [row.record.subject for row in response.context["table"].page.object_list] == ["b", "a"]


def test_the_list_is_paginated_by_25(client_for, rep) -> None:
    Contact.objects.bulk_create(Contact(last_name=f"P{i:02d}", owner=rep) for i in range(30))
    client = client_for(rep)

    first = client.get(reverse("crm:contact_list"))
    second = client.get(reverse("crm:contact_list"), {"page": 2})

    assert len(first.context["table"].page.object_list) == 25
    assert len(second.context["table"].page.object_list) == 5
    assert b"30 contacts" in first.content


def test_an_empty_list_invites_the_user_to_create_the_first_record(client_for, rep) -> None:
    response = client_for(rep).get(reverse("crm:opportunity_list"))

    assert b"No opportunities yet" in response.content
    assert reverse("crm:opportunity_create").encode() in response.content


def test_a_filter_with_no_match_offers_to_clear_it(client_for, rep, make_contact) -> None:
    make_contact()

    response = client_for(rep).get(reverse("crm:contact_list"), {"q": "nobody-here"})

    assert b"No contacts match these filters" in response.content
    assert b"Clear filters" in response.content


def test_a_rep_gets_no_owner_filter_but_a_manager_does(client_for, rep, manager) -> None:
    rep_page = client_for(rep).get(reverse("crm:contact_list"))
    manager_page = client_for(manager).get(reverse("crm:contact_list"))

    assert "owner" not in rep_page.context["filter"].form.fields
    assert "owner" in manager_page.context["filter"].form.fields


def test_a_yes_no_filter_offers_any_yes_and_no(client_for, rep, make_contact) -> None:
    make_contact(last_name="In")
    make_contact(last_name="Out", has_opted_out_of_email=True)

    response = client_for(rep).get(reverse("crm:contact_list"), {"has_opted_out_of_email": "true"})

    assert [row.record.last_name for row in response.context["table"].page.object_list] == ["Out"]
    assert b'<option value="" selected>Any</option>' not in response.content
    assert b">Any</option>" in response.content
