"""The capture reader on 384 real messages from many mail systems (the shared corpus, in their
original encodings and line endings, some not RFC-conformant): none breaks it; each is read with
a sender, a Message-ID and its text (also where the MIME structure is broken: a multipart with no
boundary lines, a boundary lost from its header), or kept out in words because it names no
sender."""

import re
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest

from capture.reading import Mail, Unreadable, mail_read

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bounces"
if not CORPUS.is_dir():  # pragma: no cover -- the corpus sits beside the project
    pytest.skip(f"bounce corpus missing at {CORPUS}", allow_module_level=True)
MESSAGES = sorted((CORPUS / "messages").glob("*.eml"))
ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


def _names_a_sender(raw: bytes) -> bool:
    """Whether the From header holds an address with a domain (read by the standard library)."""
    header = message_from_bytes(raw, policy=email_policy.compat32).get("From", "")
    return bool(ADDRESS.search(str(header)))


def test_the_corpus_is_there() -> None:
    assert len(MESSAGES) >= 380


@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: path.name)
def test_a_real_message_is_read_or_kept_out_in_words(path: Path) -> None:
    raw = path.read_bytes()

    mail = mail_read(raw)

    if isinstance(mail, Unreadable):
        assert mail.reason == "no sender address (From)"
        assert not _names_a_sender(raw)
        return
    assert isinstance(mail, Mail)
    assert "@" in mail.from_address and mail.from_address == mail.from_address.lower()
    assert mail.message_id and "<" not in mail.message_id
    assert mail.parties[0] == mail.from_address
    assert all(attachment.size >= 0 for attachment in mail.attachments)
    # A message with words after its headers keeps them, however broken its MIME structure.
    body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[-1]
    if body.strip():
        assert (mail.text or mail.html).strip() or mail.attachments or mail.forwarded
