"""Setup's internal addresses and IP ranges: what they accept, and what they match."""

import pytest

from crm.internal import InternalRules, parse_addresses, parse_ip_ranges
from crm.models import EmailMessage, EmailMessageRelation


def test_the_boxes_take_addresses_domains_and_ranges_one_per_line_or_comma() -> None:
    addresses, domains, errors = parse_addresses(
        "Rep@Example.com, @corp.example\n# our own\nexample.org  # the test domain\n"
    )
    networks, range_errors = parse_ip_ranges("10.0.0.0/8, 203.0.113.7\n2001:db8::/32")

    assert (addresses, domains, errors) == (
        {"rep@example.com"},
        {"corp.example", "example.org"},
        [],
    )
    assert [str(n) for n in networks] == ["10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"]
    assert range_errors == []


@pytest.mark.parametrize("item", ["not an address", "a@@b.com", "http://example.com", "-x.com"])
def test_an_item_that_is_neither_address_nor_domain_is_named_in_the_error(item: str) -> None:
    *_, errors = parse_addresses(item)

    assert errors == [f"“{item}” is neither an email address nor a domain."]


@pytest.mark.parametrize("item", ["999.1.1.1", "10.0.0.0/33", "office"])
def test_an_item_that_is_no_ip_or_range_is_named_in_the_error(item: str) -> None:
    _, errors = parse_ip_ranges(item)

    assert errors == [f"“{item}” is not an IP address or range (e.g. 203.0.113.0/24)."]


def test_an_address_matches_exactly_and_a_domain_with_its_subdomains() -> None:
    rules = InternalRules.from_setup("rep@example.com\ncorp.example", "", full_ip=True)

    assert rules.address_is_internal("REP@example.com")
    assert not rules.address_is_internal("other@example.com")
    assert rules.address_is_internal("kim@corp.example")
    assert rules.address_is_internal("kim@eu.corp.example")
    assert not rules.address_is_internal("kim@notcorp.example")
    assert not rules.address_is_internal("corp.example@gmail.com")


def test_ranges_are_widened_to_what_is_stored_when_ips_are_shortened() -> None:
    full = InternalRules.from_setup("", "203.0.113.7\n2001:db8::1", full_ip=True)
    short = InternalRules.from_setup("", "203.0.113.7\n2001:db8::1", full_ip=False)

    assert full.ip_is_internal("203.0.113.7") and not full.ip_is_internal("203.0.113.0")
    assert short.ip_is_internal("203.0.113.0") and short.ip_is_internal("2001:db8::")
    assert not short.ip_is_internal("203.0.114.0")
    assert not short.ip_is_internal("") and not short.ip_is_internal("garbage")


@pytest.mark.django_db
def test_the_address_filter_matches_in_the_database_as_in_python(rep) -> None:
    email = EmailMessage.objects.create(subject="x", sender=rep)
    candidates = [
        "rep@example.com",
        "REP@EXAMPLE.COM",
        "other@example.com",
        "kim@corp.example",
        "kim@eu.corp.example",
        "kim@notcorp.example",
        "corp.example@gmail.com",
        "a_b@corp.example",
    ]
    for address in candidates:
        EmailMessageRelation.objects.create(email=email, relation_type="to", address=address)
    rules = InternalRules.from_setup("rep@example.com\ncorp.example", "", full_ip=True)

    matched = set(
        EmailMessageRelation.objects.filter(rules.address_q("address")).values_list(
            "address", flat=True
        )
    )

    assert matched == {a for a in candidates if rules.address_is_internal(a)}
    assert not EmailMessageRelation.objects.filter(InternalRules().address_q("address")).exists()
