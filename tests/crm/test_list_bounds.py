"""Every list keeps its bounds whatever the query string says (crm.listing): a page size among
a few choices, a page that exists, sort keys that name a sortable column, a search of a few
words and characters that says when it was cut."""

import re

import django_filters
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns import filters as campaign_filters
from campaigns.members import members_add
from campaigns.models import Campaign
from crm import filters as crm_filters
from crm.listing import (
    PER_PAGE_CHOICES,
    SEARCH_CUT_NOTICE,
    SEARCH_MAX_CHARS,
    SEARCH_MAX_WORDS,
    SearchField,
    SearchFilter,
    ids_from,
    search_text,
)
from crm.models import Contact
from reports.email_log import EmailLogFilterForm

HUGE = "99999999999999999999"


@pytest.fixture
def thirty_contacts(rep) -> None:
    Contact.objects.bulk_create(
        Contact(first_name="Ada", last_name=f"P{i:02d}", owner=rep) for i in range(30)
    )


def _rows(response) -> list:
    return list(response.context["table"].page.object_list)


@pytest.mark.parametrize(
    ("per_page", "rows"),
    [("50", 30), ("25", 25), ("100000", 25), ("-1", 25), ("0", 25), ("1e3", 25), ("", 25)],
)
def test_a_page_size_among_the_choices_is_used_and_any_other_is_the_default(
    client_for, rep, thirty_contacts, per_page, rows
) -> None:
    response = client_for(rep).get(reverse("crm:contact_list"), {"per_page": per_page})

    assert response.status_code == 200
    assert len(_rows(response)) == rows


@pytest.mark.parametrize(
    ("page", "shown"), [(HUGE, 2), ("3", 2), ("-1", 1), ("0", 1), ("abc", 1), ("9" * 5000, 2)]
)
def test_a_page_past_the_last_is_the_last_and_anything_but_a_page_number_the_first(
    client_for, rep, thirty_contacts, page, shown
) -> None:
    response = client_for(rep).get(reverse("crm:contact_list"), {"page": page})

    assert response.status_code == 200
    assert response.context["table"].page.number == shown


def test_a_list_offers_each_page_size_and_keeps_its_filters(
    client_for, rep, thirty_contacts
) -> None:
    response = client_for(rep).get(reverse("crm:contact_list"), {"q": "ada", "page": "2"})

    page = response.content.decode()
    for size in PER_PAGE_CHOICES:
        assert re.search(rf'href="\?[^"]*per_page={size}[^"]*"', page)
    assert "q=ada" in re.search(r'href="(\?[^"]*per_page=50[^"]*)"', page).group(1)
    # Paging is not filtering: the list offers no "Clear" for it.
    assert (
        not client_for(rep)
        .get(reverse("crm:contact_list"), {"per_page": "50"})
        .context["is_filtered"]
    )


@pytest.mark.parametrize("sort", ["__class__", "-nonexistent", "password", "-", "owner__password"])
def test_an_unknown_sort_key_keeps_the_default_order(client_for, rep, make_task, sort) -> None:
    for subject in ("b", "c", "a"):
        make_task(subject=subject)
    client = client_for(rep)

    response = client.get(reverse("crm:task_list"), {"sort": sort})

    assert response.status_code == 200
    default = client.get(reverse("crm:task_list"))
    assert [row.record for row in _rows(response)] == [row.record for row in _rows(default)]


def test_a_known_sort_key_still_sorts_and_a_repeated_one_counts_once(
    client_for, rep, make_task
) -> None:
    make_task(subject="a")
    make_task(subject="b")

    response = client_for(rep).get(
        reverse("crm:task_list") + "?sort=-subject&sort=subject&sort=nonexistent"
    )

    assert [row.record.subject for row in _rows(response)] == ["b", "a"]
    assert list(response.context["table"].order_by) == ["-subject"]


@pytest.mark.parametrize("sort", ["__class__", "-nonexistent", "password", "log_at"])
def test_the_email_log_ignores_any_sort_key(client_for, admin_user, sort) -> None:
    response = client_for(admin_user).get(reverse("reports:email_log"), {"sort": sort})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("reports:email_log", {"per_page": "-1", "page": HUGE}),
        ("reports:email_log", {"per_page": "100000", "page": "-1"}),
        ("crm:my_tasks", {"per_page": "-1", "page": HUGE, "sort": "__class__"}),
        ("crm:email_list", {"per_page": "-1", "page": HUGE, "sort": "__class__"}),
        ("campaigns:list", {"per_page": "-1", "page": HUGE, "sort": "__class__"}),
    ],
)
def test_every_list_answers_hostile_paging(client_for, admin_user, url, query) -> None:
    response = client_for(admin_user).get(reverse(url), query)

    assert response.status_code == 200


def test_a_campaigns_member_table_keeps_the_bounds(client_for, rep, make_contact) -> None:
    campaign = Campaign.objects.create(name="Spring", owner=rep)
    members_add(
        campaign=campaign,
        contact_ids=[
            make_contact(last_name=f"M{i}", email=f"m{i}@example.com").pk for i in range(3)
        ],
    )
    path = reverse("campaigns:campaign_detail", args=[campaign.pk])

    response = client_for(rep).get(path, {"per_page": "-1", "page": HUGE, "sort": "password"})

    assert response.status_code == 200
    assert response.context["table"].paginator.per_page == 25
    assert len(response.context["table"].page.object_list) == 3


# Search


def test_search_text_keeps_the_first_words_within_the_first_characters() -> None:
    assert search_text("  a  b\tc ") == "a b c"
    assert search_text(" ".join(f"w{n}" for n in range(1000))) == " ".join(
        f"w{n}" for n in range(SEARCH_MAX_WORDS)
    )
    assert search_text("x" * 100_000) == "x" * SEARCH_MAX_CHARS


def test_a_search_of_a_thousand_words_uses_the_first_ten_and_says_so(
    client_for, rep, make_contact
) -> None:
    make_contact(first_name="Ada", last_name="Lovelace")
    words = " ".join(["ada"] * 1000)

    with CaptureQueriesContext(connection) as queries:
        response = client_for(rep).get(reverse("crm:contact_list"), {"q": words})

    assert response.status_code == 200
    assert [row.record.name for row in _rows(response)] == ["Ada Lovelace"]
    assert SEARCH_CUT_NOTICE in response.content.decode()
    # Five fields per word: the database is asked for ten words, on SQLite as on PostgreSQL.
    count = max(query["sql"].upper().count("LIKE") for query in queries.captured_queries)
    assert count == SEARCH_MAX_WORDS * len(crm_filters.ContactFilter.search_fields)


def test_a_search_of_one_enormous_word_uses_its_first_characters(
    client_for, rep, make_contact
) -> None:
    make_contact()

    with CaptureQueriesContext(connection) as queries:
        response = client_for(rep).get(reverse("crm:contact_list"), {"q": "9" * 100_000})

    assert response.status_code == 200
    assert SEARCH_CUT_NOTICE in response.content.decode()
    assert all(len(query["sql"]) < 20_000 for query in queries.captured_queries)


def test_a_short_search_says_nothing_about_bounds(client_for, rep, make_contact) -> None:
    make_contact()

    response = client_for(rep).get(reverse("crm:contact_list"), {"q": "ada lovelace"})

    assert SEARCH_CUT_NOTICE not in response.content.decode()
    assert f'maxlength="{SEARCH_MAX_CHARS}"' in response.content.decode()


@pytest.mark.parametrize(
    ("url", "args"),
    [("campaigns:list", []), ("reports:email_log", []), ("crm:email_list", [])],
)
def test_other_search_boxes_are_bounded_too(client_for, admin_user, url, args) -> None:
    response = client_for(admin_user).get(reverse(url, args=args), {"q": " ".join(["word"] * 1000)})

    assert response.status_code == 200
    assert SEARCH_CUT_NOTICE in response.content.decode()


def test_a_campaigns_member_search_is_bounded(client_for, rep) -> None:
    campaign = Campaign.objects.create(name="Spring", owner=rep)
    path = reverse("campaigns:campaign_detail", args=[campaign.pk])

    response = client_for(rep).get(path, {"q": "9" * 100_000})

    assert response.status_code == 200
    assert SEARCH_CUT_NOTICE in response.content.decode()


def _filter_sets() -> list[type[django_filters.FilterSet]]:
    return [
        value
        for module in (crm_filters, campaign_filters)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, django_filters.FilterSet)
    ]


@pytest.mark.parametrize("filter_set", _filter_sets(), ids=lambda cls: cls.__name__)
def test_every_free_text_filter_is_a_bounded_search(filter_set) -> None:
    for name, declared in filter_set.declared_filters.items():
        if isinstance(declared, django_filters.CharFilter):
            assert isinstance(declared, SearchFilter), f"{filter_set.__name__}.{name}"


def test_the_email_logs_search_is_a_bounded_search() -> None:
    assert isinstance(EmailLogFilterForm.base_fields["q"], SearchField)


def test_words_past_the_tenth_are_not_searched(client_for, rep, make_task) -> None:
    make_task(subject="call ada")
    make_task(subject="email ada")
    tail = " ".join(["unmatched"] * 5)

    response = client_for(rep).get(
        reverse("crm:task_list"), {"q": f"call {' '.join(['ada'] * 9)} {tail}"}
    )

    assert [row.record.subject for row in _rows(response)] == ["call ada"]


# Ticked rows


def test_ids_from_keeps_the_whole_numbers_a_primary_key_holds() -> None:
    assert ids_from(["1", "22", "²³", "-1", "x", "", "1.5", HUGE, " 3", "٣"]) == [1, 22]
