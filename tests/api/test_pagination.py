"""Cursor pages: next and previous links, a stable order, bounded page sizes, orderings."""

import pytest

from crm.models import Account


@pytest.fixture
def accounts(rep):
    return [Account.objects.create(name=f"Acme {i:02}", owner=rep).pk for i in range(30)]


def test_pages_follow_next_and_previous_in_a_stable_order(accounts, rep, api_for):
    client = api_for(rep)
    first = client.get("/api/v1/accounts/").json()
    assert first["previous"] is None
    assert [row["id"] for row in first["results"]] == sorted(accounts, reverse=True)[:25]
    # A row added meanwhile appears on no page already read, and shifts nothing.
    Account.objects.create(name="Newer", owner=rep)
    second = client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == sorted(accounts, reverse=True)[25:]
    assert second["next"] is None
    back = client.get(second["previous"]).json()
    assert [row["id"] for row in back["results"]] == sorted(accounts, reverse=True)[:25]


@pytest.mark.parametrize(("asked", "size"), [("50", 30), ("7", 25), ("1000", 25), ("-1", 25)])
def test_the_page_size_is_one_the_pages_offer(accounts, rep, api_for, asked, size):
    body = api_for(rep).get(f"/api/v1/accounts/?page_size={asked}").json()
    assert len(body["results"]) == size


def test_a_list_may_be_ordered_by_an_allowed_column_only(accounts, rep, api_for):
    client = api_for(rep)
    names = [row["name"] for row in client.get("/api/v1/accounts/?ordering=name").json()["results"]]
    assert names == sorted(names) and names[0] == "Acme 00"
    ids = [
        row["id"] for row in client.get("/api/v1/accounts/?ordering=billing_city").json()["results"]
    ]
    assert ids == sorted(accounts, reverse=True)[:25]


def test_ordered_pages_do_not_repeat_rows(accounts, rep, api_for):
    client = api_for(rep)
    Account.objects.filter(pk__in=accounts[:10]).update(name="Same")
    seen: list[int] = []
    url = "/api/v1/accounts/?ordering=name&page_size=25"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(accounts)
