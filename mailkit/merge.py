"""Merge fields: `{{first_name}}` in a subject or body becomes the recipient's first name.

Other tools' merge syntax (Mailchimp's `*|FNAME|*`, Marketing Cloud's `%%FirstName%%`,
Salesforce's `{!Contact.FirstName}`, ...) means nothing here and would reach the recipient as
written, so `field_problems` names it before the email is sent. static/js/composer.js repeats
these patterns for the composer's hint as the user types; this module is the authority.
"""

import html
import re
from collections.abc import Mapping
from email.headerregistry import Address

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

# Other tools' names for our fields, squeezed (lower case, no space, "_", "-" or "."), after
# any object prefix ("Contact.", "lead.") is dropped: what a foreign field should become.
_ALIASES = {
    "fname": "first_name",
    "firstname": "first_name",
    "lname": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "name": "name",
    "fullname": "name",
    "company": "company",
    "companyname": "company",
    "account": "company",
    "accountname": "company",
    "title": "title",
    "jobtitle": "title",
    "email": "email",
    "emailaddress": "email",
}
# Each pattern is another system's whole merge syntax, so plain text never matches it. Square
# and single curly brackets are everyday punctuation ("[1]", "{sic}"): they count only around
# a name that is one of our fields' (see _ALIASES), like "[First Name]" or "{FIRSTNAME}".
_FOREIGN = (
    ("Mailchimp", re.compile(r"\*\|[A-Za-z0-9_:-]{1,40}\|\*")),
    ("Marketing Cloud", re.compile(r"%%=?[A-Za-z_@][A-Za-z0-9_.@() -]{0,40}=?%%")),
    ("Salesforce", re.compile(r"\{![A-Za-z_$][A-Za-z0-9_.$ ]{0,60}\}")),
    ("template", re.compile(r"[$#]\{[A-Za-z_][A-Za-z0-9_.]{0,40}\}")),
    ("template", re.compile(r"\{\$[A-Za-z_][A-Za-z0-9_.]{0,40}\}")),
    # Double braces that are not a plain field name: HubSpot's {{ contact.firstname }},
    # Marketo's {{lead.First Name}}, Liquid filters ({{ name | upcase }}).
    ("template", re.compile(r"\{\{(?!\s*[A-Za-z_]+\s*\}\})[^{}\n]{1,60}\}\}")),
    # Not after a word: "user[email]" is a query parameter's name, not a field.
    ("bracketed", re.compile(r"(?<![\w\]])\[\[?([A-Za-z][A-Za-z _.-]{0,30})\]\]?")),
    ("bracketed", re.compile(r"(?<![{$#])\{([A-Za-z][A-Za-z _.-]{0,30})\}(?!\})")),
)
_SQUEEZE = re.compile(r"[\s_.-]+")


def unknown_fields(text: str) -> list[str]:
    """The merge fields in `text` that Openrate does not know, in order, once each."""
    found = [name for name in _FIELD.findall(text) if name not in FIELDS]
    return list(dict.fromkeys(found))


def foreign_fields(text: str) -> list[str]:
    """Other tools' merge fields in `text` (`*|FNAME|*`, `%%FirstName%%`, ...), as written,
    in order, once each. Openrate would send them as they are."""
    found: list[tuple[int, str]] = []
    for system, pattern in _FOREIGN:
        for match in pattern.finditer(text):
            if system == "bracketed" and _alias(match.group(1)) is None:
                continue
            found.append((match.start(), match.group(0)))
    found.sort()
    return list(dict.fromkeys(snippet for _, snippet in found))


def field_problems(text: str) -> str:
    """What would arrive unfilled, in words for the sender, or "" when every field is known.

    Names each unknown `{{field}}` and each foreign field found (with the field of ours it
    probably means) and lists the fields Openrate fills.
    """
    parts: list[str] = []
    unknown = unknown_fields(text)
    if unknown:
        parts.append("Unknown merge field " + ", ".join(f"{{{{{name}}}}}" for name in unknown))
    foreign = foreign_fields(text)
    if foreign:
        parts.append(
            "Merge fields from another tool would be sent as written, unfilled: "
            + ", ".join(_with_suggestion(snippet) for snippet in foreign)
        )
    if not parts:
        return ""
    known = ", ".join(f"{{{{{name}}}}}" for name in FIELDS)
    return ". ".join(parts) + f". Use one of: {known}."


_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]\s*")


def one_line(text: str) -> str:
    """`text` for a header (a subject, a person's name): each line break, with the space
    around it, becomes one space. A header cannot hold a line break, and a name imported from
    a spreadsheet's multi-line cell, or merged into a subject, may."""
    return _LINE_BREAKS.sub(" ", text).strip() if _LINE_BREAKS.search(text) else text


# A name and an address that need no quoting or encoding: the header is written as is, without
# the email package's parser (a tenth of a millisecond each, for a list email's thousands).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def header_address(name: str, address: str) -> str:
    """`Name <address>` for a From, To or Cc header: the name on one line (`one_line`), quoted
    or encoded as the email package does when it needs to be; the bare address with no name.
    The one place a header's person is written (sending's To and Cc, delivery's From)."""
    name = one_line(name)
    if not name:
        return address
    if _PLAIN_NAME.fullmatch(name) and _PLAIN_ADDRESS.fullmatch(address):
        return f"{name} <{address}>"
    return str(Address(display_name=name, addr_spec=address))


def merge(text: str, values: Mapping[str, str], *, as_html: bool) -> str:
    """Fill known merge fields with `values` (escaped for HTML); unknown ones stay as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in FIELDS:
            return match.group(0)
        value = values.get(name, "")
        return html.escape(value) if as_html else value

    return _FIELD.sub(fill, text)


def field_spans(text: str) -> list[tuple[int, int, str]]:
    """Where `merge` fills `text`: (start, end, field name) of each known merge field."""
    return [
        (match.start(), match.end(), match.group(1))
        for match in _FIELD.finditer(text)
        if match.group(1) in FIELDS
    ]


def has_fields(text: str) -> bool:
    """Whether `text` holds a merge field Openrate fills (so it differs between recipients)."""
    return any(name in FIELDS for name in _FIELD.findall(text))


def _alias(written: str) -> str | None:
    name = written.rsplit(".", 1)[-1] if "." in written else written
    return _ALIASES.get(_SQUEEZE.sub("", name).lower())


def _with_suggestion(snippet: str) -> str:
    inner = snippet.strip("*|%={}[]!$# ")
    field = _alias(inner)
    return f"{snippet} (use {{{{{field}}}}})" if field else snippet


_QUOTE = re.compile(r"<blockquote\b[^>]*>(?:(?!<blockquote\b).)*?</blockquote\s*>", re.I | re.S)


def written_part(html_body: str) -> str:
    """The body without its quoted messages (<blockquote>, innermost first): what the sender
    wrote. A reply quotes whatever the other side sent, merge syntax and all, and that is
    not the sender's to fix."""
    previous = None
    while previous != html_body:
        previous, html_body = html_body, _QUOTE.sub("", html_body)
    return html_body
