"""Per-recipient tracking tokens: short, opaque, URL-safe and signed.

Layout before base64url (no padding)::

    header   1 byte   high nibble: format version (1), low nibble: key_id (0-15)
    rid      varint   recipient id (unsigned LEB128, canonical)
    lid      varint   link id, 0 for the pixel / the message itself
    mac      12 bytes HMAC-SHA256(key, header + rid + lid), truncated to 96 bits

A token for ids below 2**40 is at most 25 bytes, 34 characters. Verification needs only
the keys, never the database, so the tracking fast path can reject garbage cheaply. It
tries each configured key, newest first, so rotation never depends on `key_id`: that is a
signed label of which key minted a token, for operators reading logs.

Each token has one purpose (`Purpose`): tracking (the pixel and click links), unsubscribe
(List-Unsubscribe and the unsubscribe page) and return (the VERP return path, the
X-Openrate-Token header, ESP metadata). A purpose signs with its own keys, derived from the
configured ones, so whoever sees an image URL (an image proxy, a forwarded email) holds a token
that can record an open and nothing else. Tracking keeps the configured keys themselves, so the
links in email already sent keep working.
"""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

VERSION = 1
MAC_BYTES = 12
MAX_TOKEN_CHARS = 64
MAX_ID = 2**63 - 1
# Nine varint bytes hold MAX_ID; a longer run is garbage.
_MAX_VARINT_BYTES = 9
# The salt keeps the name it had when tokens lived in tracking: a new one would change every
# derived key and break the links in every email already sent.
_DERIVATION_SALT = b"openrate.tracking.tokens.v1"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = {0: b"", 2: b"==", 3: b"="}
_SEXTET = {
    ord(char): value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_UNUSED_BITS = {0: 0, 2: 0b1111, 3: 0b11}


class Purpose(StrEnum):
    TRACK = "track"
    UNSUBSCRIBE = "unsubscribe"
    RETURN = "return"


class TokenData(NamedTuple):  # a tuple: made on every tracking hit, cheaper than a dataclass
    recipient_id: int
    link_id: int


def make_token(recipient_id: int, link_id: int = 0, *, key: bytes, key_id: int = 0) -> str:
    """Sign `recipient_id` and `link_id` with `key`; `key_id` (0-15) is recorded, not trusted."""
    if not (0 <= recipient_id <= MAX_ID and 0 <= link_id <= MAX_ID):
        raise ValueError("ids must be non-negative and fit a signed 64-bit column")
    if not 0 <= key_id <= 15:
        raise ValueError("key_id must be between 0 and 15")
    if not key:
        raise ValueError("an empty signing key would make tokens forgeable")
    body = bytes([VERSION << 4 | key_id]) + _varint(recipient_id) + _varint(link_id)
    raw = body + _mac(key, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_token(token: str, *, keys: Sequence[bytes]) -> TokenData | None:
    """Return the ids a valid token carries, or None for anything else; never raises."""
    # Cheap shape checks first: the endpoint sees arbitrary request paths.
    if (
        not isinstance(token, str)
        or not 0 < len(token) <= MAX_TOKEN_CHARS
        or len(token) % 4 == 1
        or _TOKEN_RE.fullmatch(token) is None
    ):
        return None
    # binascii directly (what base64's url-safe functions wrap): this runs on every hit.
    spelled = token.encode("ascii")
    try:
        raw = binascii.a2b_base64(spelled.translate(_FROM_URLSAFE) + _PADDING[len(token) % 4])
    except (binascii.Error, ValueError):
        return None
    # base64 ignores the unused low bits of the last character (4 of them after 2 characters
    # of a group, 2 after 3): they must be zero, so that exactly one spelling of each token
    # verifies.
    if _UNUSED_BITS[len(token) % 4] & _SEXTET[spelled[-1]]:
        return None
    if len(raw) < 3 + MAC_BYTES or raw[0] >> 4 != VERSION:
        return None
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    recipient = _read_varint(body, 1)
    if recipient is None:
        return None
    recipient_id, pos = recipient
    link = _read_varint(body, pos)
    if link is None:
        return None
    link_id, pos = link
    if pos != len(body):
        return None
    for key in keys:
        if key and hmac.compare_digest(_mac(key, body), mac):
            return TokenData(recipient_id, link_id)
    return None


def signing_keys(secret_key: str, configured: Sequence[str]) -> tuple[bytes, ...]:
    """The configured keys (newest first) as bytes, or one key derived from SECRET_KEY."""
    keys = tuple(k.encode("utf-8") for k in configured if k)
    if keys:
        return keys
    if not secret_key:
        raise ValueError("no tracking signing key configured and SECRET_KEY is empty")
    # A salted HMAC keeps these tokens from becoming an oracle for SECRET_KEY itself or for
    # anything else Django signs with it.
    return (hmac.digest(_DERIVATION_SALT, secret_key.encode("utf-8"), "sha256"),)


def configured_keys() -> tuple[bytes, ...]:
    """The keys Django's settings configure (TRACKING_SIGNING_KEYS, else derived from
    SECRET_KEY), newest first: what every part of Openrate signs and verifies tokens with."""
    from django.conf import settings  # here only: the rest of this module runs without Django

    return signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)


def purpose_keys(keys: Sequence[bytes], purpose: Purpose) -> tuple[bytes, ...]:
    """The keys that sign and verify tokens of one purpose, in the same order as `keys`."""
    if purpose is Purpose.TRACK:
        return tuple(keys)
    label = f"openrate.tokens.purpose.v1:{purpose.value}".encode()
    return tuple(hmac.digest(key, label, "sha256") for key in keys)


def _mac(key: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) of `body`, truncated: SHA-256 of the outer pad and the SHA-256 of
    the inner pad and the body. Both pads' hash states are set up once per key and copied per
    message, which costs a third of copying an `hmac.HMAC` (whose copy and update are Python
    wrappers around the same two states): this runs on every tracking hit and every link of
    every copy sent."""
    inner, outer = _pads(key)
    digest = inner.copy()
    digest.update(body)
    mac = outer.copy()
    mac.update(digest.digest())
    return mac.digest()[:MAC_BYTES]


_BLOCK = hashlib.sha256().block_size
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


@lru_cache(maxsize=64)
def _pads(key: bytes) -> tuple[Any, Any]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    if pos < len(data) and data[pos] < 0x80:
        return data[pos], pos + 1  # one byte: ids below 128, and every link id 0
    value = 0
    for shift, index in enumerate(range(pos, min(len(data), pos + _MAX_VARINT_BYTES))):
        byte = data[index]
        value |= (byte & 0x7F) << (7 * shift)
        if not byte & 0x80:
            # A trailing zero byte would be a second spelling of a shorter number.
            if byte == 0 and shift > 0:
                return None
            return value, index + 1
    return None


def to_verp(token: str) -> str:
    """The token as a VERP local-part suffix: base32, lower case, because mail systems may
    change the case of an address's local part and base64 is case-sensitive."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return base64.b32encode(raw).rstrip(b"=").decode("ascii").lower()


def from_verp(suffix: str) -> str:
    """The token a VERP suffix carries, or "" if it is not one of ours; never raises."""
    if not 0 < len(suffix) <= MAX_TOKEN_CHARS or not suffix.isascii() or not suffix.isalnum():
        return ""
    try:
        raw = base64.b32decode(suffix.upper() + "=" * (-len(suffix) % 8))
    except (binascii.Error, ValueError):
        return ""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
