"""Reading mail whose MIME structure is broken, as real mail systems write it: a pure module."""

from __future__ import annotations

import contextlib
import re
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, Message


def text_of_broken_mime(msg: Message) -> str:
    """The text of a message whose MIME structure is broken, so that no body part is found: a
    multipart whose body has no boundary lines (read as its text, as written), or one whose
    header lost its boundary (found again from the first "--" line, and the parts read)."""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload()
        if not isinstance(payload, str) or not payload.strip():
            continue
        if part.get_content_maintype() == "text":
            if isinstance(part, EmailMessage):  # as the default policy parses every part
                with contextlib.suppress(LookupError, ValueError, AssertionError):
                    return str(part.get_content())
            return payload
        if part.get_content_maintype() == "multipart":
            return _parts_found_again(payload)
    return ""


def _parts_found_again(payload: str) -> str:
    lines = payload.splitlines()
    boundary = next((line[2:].strip() for line in lines if re.match(r"--\S", line)), "")
    if boundary and '"' not in boundary:
        inner = message_from_bytes(
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n{payload}'.encode(
                "utf-8", "surrogateescape"
            ),
            policy=email_policy.default,
        )
        body = inner.get_body(preferencelist=("plain", "html"))
        if body is not None:
            with contextlib.suppress(LookupError, ValueError, AssertionError):
                return str(body.get_content())
    return payload
