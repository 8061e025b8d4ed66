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


# An address as text shows it (a report, a forwarded message, a webhook's JSON). A match starts
# only where a run of the local part's characters starts (the lookbehind): tried from inside a
# run, a long run without an @ would be scanned again from each of its characters.
_LOCAL_PART = rb"A-Za-z0-9.!#$%&'*+/=?^_`{|}~-"
_ADDRESS_IN_TEXT = re.compile(
    rb"(?<![" + _LOCAL_PART + rb"])[" + _LOCAL_PART + rb"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
# Characters an address may hold that text also uses to join other text to one: email=ada@x,
# ?to=ada@x, 'ada@x'. What follows one is also read as an address. Not the characters
# addresses are made of (letters, digits, . _ + -): mada@x is not ada@x.
_JOINERS = frozenset("!#$%&'*/=?^`{|}~")
MAX_ADDRESSES_READ = 2_000  # distinct ones
# No address's local part is longer (RFC 5321); a longer run is read from its end.
_LOCAL_MAX = 64
_CHECKED_AT_ONCE = 5_000


def forgotten_named_in(raw: bytes) -> bool:
    """Whether this text names a forgotten address as a whole address: each address-shaped
    string in it (the first MAX_ADDRESSES_READ distinct ones), and what follows each joining
    character in its local part (email=ada@x, 'ada@x). One query per 5,000 candidates, usually
    one. Not seen: an address encoded in the text (base64, quoted-printable's =40), which the
    forget's search of kept messages does not see either. That search, a substring match run
    once with a preview, also finds ada@x inside mada@x; this check runs on every arrival
    without one, so it keeps to whole addresses."""
    seen: set[bytes] = set()
    found: set[str] = set()
    for match in _ADDRESS_IN_TEXT.finditer(raw):
        text = match.group()
        if text in seen:
            continue
        seen.add(text)
        local, _, domain = text.decode("ascii").lower().rpartition("@")
        local = local[-_LOCAL_MAX:]
        found.add(f"{local}@{domain}")
        found.update(
            f"{local[at + 1 :]}@{domain}"
            for at, character in enumerate(local)
            if character in _JOINERS and at + 1 < len(local)
        )
        if len(seen) >= MAX_ADDRESSES_READ:
            break
    candidates = sorted(found)
    return any(
        forgotten_among(candidates[start : start + _CHECKED_AT_ONCE])
        for start in range(0, len(candidates), _CHECKED_AT_ONCE)
    )
