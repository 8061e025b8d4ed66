"""The API's permission matrix against the pages': each role lists exactly the ids its list
page shows, gets 404 on a record it cannot see there, and writes only where the page lets it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Account, Contact, Lead, Opportunity, OpportunityContactRole, Task

RESOURCES = {
    "accounts": "/accounts/",
    "contacts": "/contacts/",
    "leads": "/leads/",
    "opportunities": "/opportunities/",
    "tasks": "/tasks/",
}
ROLES = ("rep", "other_rep", "manager", "admin_user")


@pytest.fixture
def world(rep, other_rep, manager):
    """Two records of each kind for each rep, and one for the manager."""
    made: dict[str, dict[str, list[int]]] = {name: {} for name in RESOURCES}
    for owner in (rep, other_rep, rep, other_rep, manager):
        account = Account.objects.create(name=f"{owner} Co", owner=owner)
        contact = Contact.objects.create(last_name=f"{owner}", account=account, owner=owner)
        lead = Lead.objects.create(last_name=f"{owner}", company="X", owner=owner)
        opportunity = Opportunity.objects.create(
            name="Deal", account=account, owner=owner, close_date=timezone.localdate()
        )
        task = Task.objects.create(subject="Call", who_contact=contact, owner=owner)
        for name, record in zip(
            RESOURCES, (account, contact, lead, opportunity, task), strict=True
        ):
            made[name].setdefault(owner.username, []).append(record.pk)
    return made


def api_ids(client, resource: str) -> list[int]:
    ids: list[int] = []
    url = f"/api/v1/{resource}/?page_size=100"
    while url:
        body = client.get(url).json()
        ids += [row["id"] for row in body["results"]]
        url = body["next"]
    return ids


def page_ids(client, path: str) -> set[int]:
    response = client.get(path)
    assert response.status_code == 200
    return {record.pk for record in response.context["filter"].qs}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_each_role_lists_what_its_list_page_shows(
    request, role, resource, world, api_for, client_for
):
    user = request.getfixturevalue(role)
    listed = api_ids(api_for(user), resource)
    assert len(listed) == len(set(listed))
    assert set(listed) == page_ids(client_for(user), RESOURCES[resource])
    assert listed  # each role sees something, so the comparison means something


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_rep_gets_404_on_another_reps_record(resource, world, rep, other_rep, api_for):
    client = api_for(rep)
    theirs = world[resource][other_rep.username][0]
    url = f"/api/v1/{resource}/{theirs}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {}, content_type="application/json").status_code == 404
    assert client.put(url, {}, content_type="application/json").status_code == 404
    mine = world[resource][rep.username][0]
    assert client.get(f"/api/v1/{resource}/{mine}/").status_code == 200
    # The filter owner= is the manager's: a rep cannot list someone else's records with it.
    listed = api_ids(api_for(rep), f"{resource}/?owner={other_rep.pk}&x=")
    assert not set(listed) & set(world[resource][other_rep.username])


@pytest.mark.parametrize("resource", ["accounts", "contacts", "leads", "opportunities"])
def test_deleting_takes_the_pages_delete_permission(resource, world, rep, manager, api_for):
    mine = world[resource][rep.username][0]
    assert api_for(rep).delete(f"/api/v1/{resource}/{mine}/").status_code == 403
    assert api_for(manager).delete(f"/api/v1/{resource}/{mine}/").status_code == 204
    assert api_for(manager).get(f"/api/v1/{resource}/{mine}/").status_code == 404


def test_a_rep_deletes_their_own_task(world, rep, api_for):
    mine = world["tasks"][rep.username][0]
    assert api_for(rep).delete(f"/api/v1/tasks/{mine}/").status_code == 204
    assert not Task.objects.filter(pk=mine).exists()


def test_a_rep_creates_their_own_records_and_cannot_give_them_away(rep, other_rep, api_for):
    response = api_for(rep).post(
        "/api/v1/accounts/",
        {"name": "Initech", "owner": other_rep.pk, "website": "initech.example"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    account = Account.objects.get(pk=response.json()["id"])
    assert account.owner == rep
    assert account.website == "https://initech.example"  # the page form's assume_scheme


def test_a_manager_may_name_the_owner(manager, rep, api_for):
    response = api_for(manager).post(
        "/api/v1/leads/",
        {"last_name": "Hopper", "company": "Navy", "owner": rep.pk},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert Lead.objects.get(pk=response.json()["id"]).owner == rep


def test_a_rep_cannot_point_a_record_at_one_they_cannot_see(world, rep, other_rep, api_for):
    theirs = world["accounts"][other_rep.username][0]
    response = api_for(rep).post(
        "/api/v1/contacts/",
        {"last_name": "Byron", "account": theirs},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "account" in response.json()["errors"]


def test_a_partial_edit_keeps_the_other_fields_and_a_new_stage_its_probability(rep, api_for):
    opportunity = Opportunity.objects.create(
        name="Deal", owner=rep, close_date=timezone.localdate() + timedelta(days=3), amount=10
    )
    response = api_for(rep).patch(
        f"/api/v1/opportunities/{opportunity.pk}/",
        {"stage": "proposal"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    opportunity.refresh_from_db()
    assert (opportunity.name, opportunity.amount) == ("Deal", 10)
    assert (opportunity.stage, opportunity.probability) == ("proposal", 60)


def test_an_opportunity_shows_the_contact_roles_the_page_shows(world, rep, other_rep, api_for):
    opportunity = Opportunity.objects.get(pk=world["opportunities"][rep.username][0])
    mine = Contact.objects.get(pk=world["contacts"][rep.username][0])
    theirs = Contact.objects.get(pk=world["contacts"][other_rep.username][0])
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=mine, is_primary=True)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=theirs)
    detail = api_for(rep).get(f"/api/v1/opportunities/{opportunity.pk}/").json()
    assert [role["contact"] for role in detail["contact_roles"]] == [mine.pk]
    listed = api_for(rep).get("/api/v1/opportunities/").json()["results"]
    row = next(row for row in listed if row["id"] == opportunity.pk)
    assert row["contact_roles"] == detail["contact_roles"]


def test_completing_a_task(world, rep, api_for):
    mine = world["tasks"][rep.username][0]
    response = api_for(rep).post(f"/api/v1/tasks/{mine}/complete/")
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert Task.objects.get(pk=mine).completed_at is not None


def test_lists_filter_on_the_list_pages_filters(world, rep, api_for):
    Lead.objects.filter(pk=world["leads"][rep.username][0]).update(status="working")
    client = api_for(rep)
    assert api_ids(client, "leads/?status=working&x=") == [world["leads"][rep.username][0]]
    assert client.get("/api/v1/leads/?status=bogus").status_code == 400
    assert api_ids(client, "accounts/?q=nothing-like-it&x=") == []


def test_a_list_page_is_a_few_queries_however_many_rows(
    world, manager, api_for, django_assert_max_num_queries
):
    client = api_for(manager)  # sees every row, opportunities with their contact roles
    for resource in RESOURCES:
        with django_assert_max_num_queries(8):
            assert client.get(f"/api/v1/{resource}/").status_code == 200
