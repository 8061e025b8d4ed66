"""Reading a report's text for SMTP reply codes, RFC 3463 status codes and SMTP commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from inbound.parsing.rules import Rule, rules

_STATUS_RE = re.compile(r"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?!\w|\.\d)")
_REPLY_RE = re.compile(r"(?<![\w.\-/=#])([2-5]\d\d)(?=[\s\-:,;)\]]|$)")
# Reply codes that SMTP servers really send; other 3-digit numbers are sizes, ids, counts.
_REPLY_CODES = frozenset(
    str(code)
    for code in (
        *(211, 214, 220, 221, 235, 250, 251, 252, 253, 354),
        *(421, 422, 430, 432, 450, 451, 452, 453, 454, 455, 458, 459),
        *(500, 501, 502, 503, 504, 521, 523, 524, 525, 530, 534, 535, 538),
        *(550, 551, 552, 553, 554, 555, 556, 557),
    )
)


def find_status(text: str) -> str:
    """The most telling RFC 3463 code in the text: failures first, generic "X.0.0" last."""
    codes = [".".join(m.groups()) for m in _STATUS_RE.finditer(text)]
    codes = [c for c in codes if c[0] in "45"] or codes
    specific = [c for c in codes if not c.endswith(".0.0") and c != "4.4.7"]
    found = ""
    for code in specific or codes[:1]:
        found = prefer_status(found, code, "") if found else code
    return found


def find_reply_code(text: str, status: str = "") -> str:
    codes = [m.group(1) for m in _REPLY_RE.finditer(text) if m.group(1) in _REPLY_CODES]
    if status:
        # A reply code of another class than the status belongs to another exchange.
        return next((c for c in codes if c[0] == status[0]), "")
    failures = [c for c in codes if c[0] in "45"]
    return (failures or codes or [""])[0]


def prefer_status(field_status: str, in_text: str, reply_code: str) -> str:
    """Choose between the Status: field and the code in the diagnostic text."""
    if not field_status or field_status == in_text:
        return in_text or field_status
    if not in_text:
        return field_status
    if reply_code and field_status[0] != in_text[0]:
        return in_text if reply_code[0] == in_text[0] else field_status
    if field_status.endswith(".0.0"):
        return field_status if in_text.endswith(".0.0") else in_text
    if ".0" in field_status and ".0" not in in_text:
        return in_text  # "X.0.0", "X.Y.0" or "X.0.Z" says less than the text
    if in_text.endswith(".0.0"):
        return field_status
    for preference in STATUS_PREFERENCES:
        if preference.applies(field_status, in_text):
            return in_text
    return field_status


@dataclass(frozen=True)
class StatusPreference:
    """A Status: field that the code in the diagnostic text overrides, where it applies."""

    name: str
    applies: Callable[[str, str], bool]  # (field status, status in the text)


# Status fields that MTAs fill in for whatever went wrong; the text usually knows better.
STATUS_PREFERENCES: tuple[StatusPreference, ...] = (
    StatusPreference("catch-all field", lambda field, _: field in ("4.4.7", "4.7.0")),
    StatusPreference("system-status field", lambda field, _: field[:3] == "5.3"),
    StatusPreference(
        "protocol field", lambda field, _: field[1:4] in (".5.1", ".5.2", ".5.4", ".5.5")
    ),
    StatusPreference(
        "unknown-user field",
        lambda field, text: field == "5.1.1" and ".0" not in text and not text.startswith("5.5."),
    ),
)


# The SMTP command a server was answering, as reports name it: the command itself, as every
# transcript and most reports spell it (upper case), or a phrase around it ("after end of data").
COMMANDS: tuple[Rule, ...] = (
    Rule("RCPT", re.compile(r"(?<![A-Za-z])RCPT(?![a-z])")),
    Rule("MAIL", re.compile(r"(?<![A-Za-z])MAIL[\s_]+FROM(?![a-z])")),
    Rule("DATA", re.compile(r"(?<![A-Za-z])DATA(?![A-Za-z])")),
    Rule("HELO", re.compile(r"(?<![A-Za-z])(?:EHLO|HELO)(?![A-Za-z])")),
    *rules(
        "RCPT",
        r"(?:after|in\s+reply\s+to|following|our)\s+RCPT"
        r"|(?:does|did)\s+not\s+like\s+(?:our\s+)?(?:recipient|RCPT)",  # qmail, DragonFly
    ),
    *rules("MAIL", r"(?:after|in\s+reply\s+to|our)\s+MAIL\s+FROM"),
    *rules("DATA", r"(?:after|in\s+reply\s+to|our)\s+(?:end\s+of\s+|final\s+)?DATA"),
    *rules("CONN", r"after\s+initial\s+connection|connection\s+greeting|greeting\s+from"),
)


def smtp_command(text: str) -> str:
    """The command that the server's failure answered ("RCPT", "MAIL", "DATA", "HELO",
    "CONN"), or "": the last one named before the first failure reply, as a transcript has it
    ("MAIL FROM ... RCPT TO ... 550"), else the first one named ("550 ... in reply to RCPT")."""
    mentions = sorted(
        (match.start(), rule.name) for rule in COMMANDS for match in rule.pattern.finditer(text)
    )
    if not mentions:
        return ""
    failure = next((m.start() for m in _REPLY_RE.finditer(text) if _is_failure(m.group(1))), -1)
    before = [name for start, name in mentions if start < failure]
    return before[-1] if before else mentions[0][1]


def _is_failure(code: str) -> bool:
    return code in _REPLY_CODES and code[0] in "45"
