"""Signatures as the Standard Webhooks libraries make and check them."""

from webhooks.signing import PREFIX, secret_bytes, secret_new, signature, signature_valid

# The example in the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_it_signs_the_specifications_example() -> None:
    assert signature(SECRET, MESSAGE_ID, TIMESTAMP, BODY) == EXPECTED


def _headers(signatures: str, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def test_a_receiver_accepts_it_among_several_signatures() -> None:
    headers = _headers(f"v1,bm9wZQ== {EXPECTED}")
    assert signature_valid(SECRET, headers, BODY, now=TIMESTAMP + 10)


def test_a_receiver_refuses_a_changed_body_an_old_timestamp_or_no_headers() -> None:
    assert not signature_valid(SECRET, _headers(EXPECTED), BODY + " ", now=TIMESTAMP)
    assert not signature_valid(SECRET, _headers(EXPECTED), BODY, now=TIMESTAMP + 301)
    assert not signature_valid(SECRET, {}, BODY, now=TIMESTAMP)


def test_a_new_secret_is_24_random_bytes_shown_with_the_prefix() -> None:
    first, second = secret_new(), secret_new()
    assert first.startswith(PREFIX)
    assert len(secret_bytes(first)) == 24
    assert first != second
