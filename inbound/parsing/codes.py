"""Reading a report's text for SMTP reply codes, RFC 3463 status codes and SMTP commands."""

from __future__ import annotations

import re

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
    # Codes that MTAs use for whatever went wrong; the text usually knows better.
    if field_status in ("4.4.7", "4.7.0") or field_status[:3] == "5.3":
        return in_text
    if field_status[1:4] in (".5.1", ".5.2", ".5.4", ".5.5"):
        return in_text
    if field_status == "5.1.1":
        return field_status if ".0" in in_text or in_text.startswith("5.5.") else in_text
    if field_status == "5.1.3" and in_text.startswith("5.7."):
        return in_text
    return field_status


# The SMTP command a server was answering, as MTAs word it in their reports.
_COMMAND_RES = (
    (
        "RCPT",
        r"(?:after|in\s+reply\s+to|following|our)\s+RCPT|does\s+not\s+like\s+recipient"
        r"|RCPT\s+TO\s+response|\[RCPT_TO\]|SMTP:RCPT|>>>\s*RCPT|Sent\s*<<<\s*RCPT|RCPT\s+command",
    ),
    ("MAIL", r"(?:after|in\s+reply\s+to|our)\s+MAIL\s+FROM|sender\s+was\s+rejected|\[MAIL_FROM\]"),
    (
        "DATA",
        r"(?:after|in\s+reply\s+to|our)\s+(?:end\s+of\s+|final\s+)?DATA|\(DATA\)"
        r"|failed\s+after\s+I\s+sent\s+the\s+message|SMTP\s+command\W+DATA\b|>>>\s*DATA",
    ),
    ("HELO", r"my\s+name\s+was\s+rejected|(?:after|in\s+reply\s+to)\s+(?:HELO|EHLO)|>>>\s*[EH]LO"),
    ("CONN", r"after\s+initial\s+connection|connection\s+greeting|greeting\s+from"),
)
_COMMAND_RE = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern in _COMMAND_RES), re.IGNORECASE
)


def smtp_command(text: str) -> str:
    match = _COMMAND_RE.search(text)
    return (match.lastgroup or "") if match else ""
