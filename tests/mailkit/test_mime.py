"""Mail whose MIME structure is broken, as real mail systems send it (shapes taken from the
shared corpus's Verizon and RFC 3464 samples): its words are still found."""

from email import message_from_bytes
from email import policy as email_policy

from inbound.parsing import message_content
from mailkit.mime import text_of_broken_mime

NO_BOUNDARY_LINES = (
    b"From: Ada <ada@example.com>\r\nTo: rita@openrate.example\r\nSubject: Re: Pricing\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="never-used"\r\n\r\n'
    b"Yes, call me on Tuesday.\r\n"
)
# The boundary parameter sits on a line of its own without the folding whitespace, so the
# header loses it: the parts are found again from the first "--" line.
LOST_BOUNDARY = (
    b"From: Ada <ada@example.com>\r\nTo: rita@openrate.example\r\nSubject: Re: Pricing\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"--outer\r\nContent-Type: multipart/alternative;\r\n"
    b'boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    b"Tuesday at ten works.\r\n"
    b"--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
    b"<p>Tuesday at ten works.</p>\r\n--inner--\r\n--outer--\r\n"
)


def _parsed(raw: bytes):
    return message_from_bytes(raw, policy=email_policy.default)


def test_a_multipart_without_boundary_lines_is_read_as_written() -> None:
    msg = _parsed(NO_BOUNDARY_LINES)
    assert msg.get_body(preferencelist=("plain", "html")) is None  # what the library finds

    assert text_of_broken_mime(msg).strip() == "Yes, call me on Tuesday."


def test_a_boundary_lost_from_its_header_is_found_again() -> None:
    msg = _parsed(LOST_BOUNDARY)
    assert msg.get_body(preferencelist=("plain", "html")) is None

    text = text_of_broken_mime(msg)

    assert text.strip() == "Tuesday at ten works."
    assert "Content-Type" not in text and "--inner" not in text


def test_nothing_is_made_up_for_a_message_without_words() -> None:
    empty = b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n'
    assert text_of_broken_mime(_parsed(empty)) == ""


def test_a_reply_with_a_broken_structure_keeps_its_words() -> None:
    assert message_content(LOST_BOUNDARY).text.strip() == "Tuesday at ten works."
    assert message_content(NO_BOUNDARY_LINES).text.strip() == "Yes, call me on Tuesday."
