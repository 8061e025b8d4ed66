import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkit.tokens import TokenData, make_token, parse_token, signing_keys

KEY = b"k" * 32
OLD_KEY = b"o" * 32
BIG = 2**40


def test_it_round_trips_recipient_and_link():
    token = make_token(1234, 56, key=KEY)

    assert parse_token(token, keys=[KEY]) == TokenData(recipient_id=1234, link_id=56)


def test_link_zero_stands_for_the_pixel():
    assert parse_token(make_token(7, key=KEY), keys=[KEY]) == TokenData(7, 0)


def test_it_stays_under_40_url_safe_characters_for_big_ids():
    token = make_token(BIG, BIG, key=KEY, key_id=15)

    assert len(token) < 40
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert parse_token(token, keys=[KEY]) == TokenData(BIG, BIG)


def test_a_token_made_with_an_old_key_still_verifies_after_rotation():
    token = make_token(9, 3, key=OLD_KEY, key_id=1)

    assert parse_token(token, keys=[KEY, OLD_KEY]) == TokenData(9, 3)


def test_it_rejects_a_token_whose_key_was_retired():
    token = make_token(9, 3, key=OLD_KEY)

    assert parse_token(token, keys=[KEY]) is None


def test_it_rejects_a_forged_token():
    forged = make_token(1, 0, key=b"attacker" * 4)

    assert parse_token(forged, keys=[KEY]) is None


def test_it_rejects_a_token_with_another_recipient_spliced_in():
    raw = bytearray(base64.urlsafe_b64decode(make_token(1, 0, key=KEY) + "=="))
    raw[1] = 2  # the recipient varint
    spliced = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    assert parse_token(spliced, keys=[KEY]) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "A",
        "AAAA",
        "not a token",
        "abc$def",
        "x" * 65,
        "é" * 20,
        "\x00" * 20,
    ],
    ids=[
        "empty",
        "one-char",
        "too-short",
        "spaces",
        "bad-alphabet",
        "over-long",
        "non-ascii",
        "nul",
    ],
)
def test_it_rejects_garbage(token):
    assert parse_token(token, keys=[KEY]) is None


def test_it_rejects_a_truncated_token():
    token = make_token(1234, 56, key=KEY)

    for end in range(len(token)):
        assert parse_token(token[:end], keys=[KEY]) is None


def test_it_rejects_a_token_with_padding():
    token = make_token(1234, 56, key=KEY)
    padded = token + "=" * (-len(token) % 4 or 4)

    assert parse_token(padded, keys=[KEY]) is None


def test_it_rejects_a_token_with_trailing_bytes():
    token = make_token(1234, 56, key=KEY)

    assert parse_token(token + "AAAA", keys=[KEY]) is None


def test_a_flipped_character_anywhere_invalidates_the_token():
    token = make_token(123456, 789, key=KEY)
    alphabet = string.ascii_letters + string.digits + "-_"

    for index, original in enumerate(token):
        for replacement in alphabet:
            if replacement != original:
                altered = token[:index] + replacement + token[index + 1 :]
                assert parse_token(altered, keys=[KEY]) is None, altered


def test_it_rejects_everything_when_no_key_is_configured():
    assert parse_token(make_token(1, key=KEY), keys=[]) is None


@pytest.mark.parametrize("recipient_id", [-1, 2**63])
def test_it_refuses_to_sign_ids_a_bigint_column_cannot_hold(recipient_id):
    with pytest.raises(ValueError, match="non-negative"):
        make_token(recipient_id, key=KEY)


@given(st.text())
def test_parse_token_never_raises_on_any_text(text):
    assert parse_token(text, keys=[KEY]) is None


@given(st.binary().map(lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()))
def test_parse_token_never_raises_on_any_well_formed_base64(text):
    assert parse_token(text, keys=[KEY]) is None


@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_any_ids_round_trip(recipient_id, link_id):
    token = make_token(recipient_id, link_id, key=KEY)

    assert parse_token(token, keys=[KEY]) == TokenData(recipient_id, link_id)


def test_configured_keys_are_used_newest_first():
    assert signing_keys("secret", ["new", "old"]) == (b"new", b"old")


def test_without_configured_keys_one_key_is_derived_from_the_secret_key():
    (key,) = signing_keys("secret", [])

    assert len(key) == 32
    assert b"secret" not in key
    assert signing_keys("secret", [""]) == (key,)
    assert signing_keys("other secret", []) != (key,)


def test_a_verp_suffix_survives_lower_casing_and_gives_the_token_back() -> None:
    from mailkit.tokens import from_verp, to_verp

    token = make_token(123456, key=b"k")

    suffix = to_verp(token)

    assert suffix == suffix.lower() and suffix.isalnum()
    assert from_verp(suffix.upper()) == token
    assert from_verp("not-ours!") == "" and from_verp("") == ""


@pytest.mark.parametrize("length", [1, 16, 32, 63, 64, 65, 100, 200])
def test_the_mac_is_hmac_sha256_for_keys_of_any_length(length: int) -> None:
    import hmac
    import random

    from mailkit.tokens import MAC_BYTES, _mac

    randomly = random.Random(length)
    for _ in range(20):
        key = randomly.randbytes(length)
        body = randomly.randbytes(randomly.randrange(0, 40))
        assert _mac(key, body) == hmac.digest(key, body, "sha256")[:MAC_BYTES]
