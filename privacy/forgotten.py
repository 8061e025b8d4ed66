"""Forgotten addresses: kept only as SHA-256 hashes, so a forgotten person does not come back.

A plain (unkeyed) hash of the lower-cased address: it must match across key rotations and
restores, and it is what every later path checks (sending, import, capture). It is pseudonymous,
not anonymous: someone who already knows an address can test whether it was forgotten, which is
the point of the list.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from itertools import islice

from privacy.models import ForgottenAddress


def address_hash(address: str) -> str:
    """The hash an address is remembered by: SHA-256 of it stripped and lower-cased, in hex."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def forgotten_remember(addresses: Iterable[str]) -> int:
    """Remember these addresses as forgotten; returns how many were new."""
    hashes = {address_hash(a) for a in addresses if a and a.strip()}
    if not hashes:
        return 0
    known = set(
        ForgottenAddress.objects.filter(address_hash__in=hashes).values_list(
            "address_hash", flat=True
        )
    )
    ForgottenAddress.objects.bulk_create(
        [ForgottenAddress(address_hash=h) for h in sorted(hashes - known)], ignore_conflicts=True
    )
    return len(hashes - known)


def forgotten_among(addresses: Iterable[str]) -> set[str]:
    """Which of these addresses (as given) belong to a forgotten person; one query."""
    by_hash: dict[str, list[str]] = {}
    for address in addresses:
        if address and address.strip():
            by_hash.setdefault(address_hash(address), []).append(address)
    if not by_hash:
        return set()
    found = ForgottenAddress.objects.filter(address_hash__in=list(by_hash)).values_list(
        "address_hash", flat=True
    )
    return {address for h in found for address in by_hash[h]}


def is_forgotten(address: str) -> bool:
    return bool(forgotten_among([address]))


# An address as text shows it (a report, a forwarded message, a webhook's JSON): the shapes the
# forget's own search of kept messages finds by the whole address. A match starts only where a
# run of the local part's characters starts (the lookbehind): tried from inside a run, a long
# run without an @ would be scanned again from each of its characters.
_LOCAL_PART = rb"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"
_ADDRESS_IN_TEXT = re.compile(
    rb"(?<![" + _LOCAL_PART + rb"])[" + _LOCAL_PART + rb"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
MAX_ADDRESSES_READ = 500
# No address's local part is longer (RFC 5321); a longer run is read from its end.
_LOCAL_MAX = 64
_CHECKED_AT_ONCE = 5_000


def forgotten_named_in(raw: bytes) -> bool:
    """Whether this text names a forgotten address: the first MAX_ADDRESSES_READ address-shaped
    strings in it, each also from every later character of its local part on (text joins
    other text to an address: email=ada@x, ?to=ada@x, 'ada@x, xada@x), so that an address the
    forget's search of kept messages (the whole address as a substring) would find is found.
    A query per 5,000 candidates, usually one. An address encoded in the text (base64,
    quoted-printable's =40) is not seen, as that search does not see it either."""
    found: set[str] = set()
    for match in islice(_ADDRESS_IN_TEXT.finditer(raw), MAX_ADDRESSES_READ):
        local, _, domain = match.group().decode("ascii").lower().rpartition("@")
        local = local[-_LOCAL_MAX:]
        found.update(f"{local[start:]}@{domain}" for start in range(len(local)))
    candidates = sorted(found)
    return any(
        forgotten_among(candidates[start : start + _CHECKED_AT_ONCE])
        for start in range(0, len(candidates), _CHECKED_AT_ONCE)
    )
