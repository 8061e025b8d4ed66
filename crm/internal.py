"""Who is "us": Setup's internal addresses and IP ranges, whose opens and clicks are not
engagement.

Reps open their own email, send tests to colleagues and click the links in them from the
office. Those events are real, but they are not a customer's: counted, they inflate every rate.
An event is internal when the copy went to an internal address (an address, or any address at
a domain or its subdomains) or came from an internal IP range. Internal events are stored and
shown, and counted nowhere (tracking.ingestion, tracking.recount, tracking.rollups).

IP addresses are matched as they are stored: with Setup's "Store full IP addresses" off, an
event keeps only its /24 (IPv4) or /48 (IPv6), so a narrower range is widened to that prefix,
at ingestion and at the recount alike (one rule, one result).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from django.db.models import Q

# What one line of the IP box may hold, and how many of either (a bound on Setup's input).
MAX_ENTRIES = 500
_DOMAIN = re.compile(r"(?i)^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ADDRESS = re.compile(r"(?i)^[^@\s]+@([^@\s]+)$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def entries(text: str) -> list[str]:
    """The lines (or comma-separated items) of a Setup box, without blanks and # comments."""
    items = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        items += [item.strip() for item in line.split(",") if item.strip()]
    return items


def parse_ip_ranges(text: str) -> tuple[list[Network], list[str]]:
    """The networks in the IP box ("10.0.0.0/8", "203.0.113.7", "2001:db8::/32") and an error
    in words for each item that is none."""
    networks: list[Network] = []
    errors: list[str] = []
    for item in entries(text):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            errors.append(f"“{item[:60]}” is not an IP address or range (e.g. 203.0.113.0/24).")
    if len(networks) > MAX_ENTRIES:
        errors.append(f"At most {MAX_ENTRIES} ranges: merge neighbouring ones into one.")
    return networks, errors


def parse_addresses(text: str) -> tuple[set[str], set[str], list[str]]:
    """The addresses and domains in the address box ("rep@example.com", "example.com",
    "@example.com"), lower-cased, and an error in words for each item that is neither."""
    addresses: set[str] = set()
    domains: set[str] = set()
    errors: list[str] = []
    for item in entries(text):
        value = item.lower()
        match = _ADDRESS.match(value)
        if match and _DOMAIN.match(match.group(1)):
            addresses.add(value)
        elif _DOMAIN.match(value.removeprefix("@")):
            domains.add(value.removeprefix("@"))
        else:
            errors.append(f"“{item[:60]}” is neither an email address nor a domain.")
    if len(addresses) + len(domains) > MAX_ENTRIES:
        errors.append(f"At most {MAX_ENTRIES} addresses and domains.")
    return addresses, domains, errors


@dataclass(frozen=True)
class InternalRules:
    """Setup's internal addresses, domains and IP ranges, ready to match."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def from_setup(cls, addresses_text: str, ranges_text: str, *, full_ip: bool) -> InternalRules:
        addresses, domains, _ = parse_addresses(addresses_text)
        networks, _ = parse_ip_ranges(ranges_text)
        if not full_ip:
            # Stored addresses keep /24 or /48: a narrower range can only match at that width.
            networks = [
                n.supernet(new_prefix=p) if n.prefixlen > (p := 24 if n.version == 4 else 48) else n
                for n in networks
            ]
        return cls(frozenset(addresses), frozenset(domains), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains or self.networks)

    def address_is_internal(self, address: str) -> bool:
        address = address.strip().lower()
        if address in self.addresses:
            return True
        domain = address.rpartition("@")[2]
        return any(domain == d or domain.endswith(f".{d}") for d in self.domains)

    def ip_is_internal(self, ip: str) -> bool:
        """Whether `ip` (as stored: maybe truncated) falls in an internal range."""
        if not self.networks or not ip:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def address_q(self, field: str) -> Q:
        """A filter on the address field `field` matching internal addresses (nothing if none)."""
        condition = Q(pk__in=[])
        if self.addresses:
            condition |= Q(**{f"{field}__iregex": _any_of(self.addresses, whole=True)})
        if self.domains:
            condition |= Q(**{f"{field}__iregex": _any_of(self.domains, whole=False)})
        return condition


def _any_of(values: frozenset[str], *, whole: bool) -> str:
    """One regular expression for a set of addresses (the whole value) or domains (the part
    after "@", or a subdomain of it): one condition however many entries Setup holds."""
    alternatives = "|".join(re.escape(value) for value in sorted(values))
    return f"^({alternatives})$" if whole else f"[@.]({alternatives})$"
