"""Merge fields: `{{first_name}}` in a subject or body becomes the recipient's first name."""

import html
import re
from collections.abc import Mapping

FIELDS = {
    "first_name": "The recipient's first name",
    "last_name": "The recipient's last name",
    "name": "The recipient's full name",
    "company": "The recipient's account or company",
    "title": "The recipient's title",
    "email": "The recipient's email address",
    "sender_name": "Your name",
    "sender_email": "Your email address",
}
_FIELD = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


def unknown_fields(text: str) -> list[str]:
    """The merge fields in `text` that Openrate does not know, in order, once each."""
    found = [name for name in _FIELD.findall(text) if name not in FIELDS]
    return list(dict.fromkeys(found))


def merge(text: str, values: Mapping[str, str], *, as_html: bool) -> str:
    """Fill known merge fields with `values` (escaped for HTML); unknown ones stay as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in FIELDS:
            return match.group(0)
        value = values.get(name, "")
        return html.escape(value) if as_html else value

    return _FIELD.sub(fill, text)
