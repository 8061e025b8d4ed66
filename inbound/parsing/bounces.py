"""Bounces: one hit per failed recipient, from DSN fields, SES JSON or the report's text.

Bounces come in two shapes. Standard ones carry an RFC 3464 ``message/delivery-status`` part
with one block of fields per recipient. The rest are plain-text reports whose wording depends on
the MTA that wrote them (Exim, qmail, Gmail, Exchange, Yahoo, ...); for those we find the lines
that name a failed address and read the diagnostic text that follows. Either way each failed
recipient gets an SMTP reply code, an RFC 3463 status code and a reason read from the diagnostic
text, and is ``hard`` only when the address itself is dead.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from inbound.parsing.codes import find_reply_code, find_status
from inbound.parsing.message import (
    ADDRESS,
    Mail,
    clean_address,
    header,
    header_addresses,
    header_all,
    is_original_marker,
    join,
    mail_from,
)
from inbound.parsing.reasons import Hit, Wording, reason_from_text, recipient
from inbound.parsing.replies import FORWARD_SUBJECT_RE, REPLY_SUBJECT_RE
from inbound.parsing.results import FailedRecipient
from inbound.parsing.rules import Rule, rules, search

# Bounce reports are short; this bound keeps a huge or hostile message cheap to classify.
MAX_BLOCK_LINES = 60


def bounce_recipients(mail: Mail) -> tuple[FailedRecipient, ...]:
    """Each recipient a delivery report names, with its verdict; () when it names none."""
    return tuple(recipient(hit) for hit in _bounce_hits(mail))


def _bounce_hits(mail: Mail) -> list[Hit]:
    if mail.ses is not None:
        return _ses_hits(mail.ses)
    list_error = _mailing_list_error(mail)
    if list_error is not None:
        return [list_error]
    evidence = _bounce_evidence(mail)
    if not mail.dsn_text and not evidence:
        return []

    text_hits, preamble = _text_hits(mail)
    if evidence == WEAK:
        # Only the subject or a phrase says "bounce": keep the addresses that come with an error.
        text_hits = [h for h in text_hits if _names_an_error(join(h.diagnostic, h.context))]
    # DSN fields pasted into a text part count too (forwarded bounces, broken MIME).
    dsn_hits = _dsn_hits(mail.dsn_text or _cut_original_dsn(mail.full_text))
    if dsn_hits:
        _merge_text_hits(dsn_hits, text_hits)
        hits = dsn_hits
        # With several recipients the report's text mixes their errors.
        context = mail.report_text if len(dsn_hits) == 1 else ""
    elif text_hits:
        hits, context = text_hits, preamble
    else:
        inner = _attached_bounce(mail)
        if inner is not None:
            return _bounce_hits(inner)
        hits, context = _fallback_hits(mail, evidence), ""
    for hit in hits:
        hit.context = join(hit.context, context)[:3000]
        if not hit.reason:
            hit.reason = _reporter_reason(mail.report_text)
    return hits


# Mail systems whose reports always mean one reason, recognised by what they write.
REPORTERS: tuple[Wording, ...] = (
    # Google Groups refuses a post from a non-member or to a missing group.
    Wording("rejected", re.compile(r"groups\.google\.com")),
)


def _reporter_reason(report_text: str) -> str:
    return next((r.reason for r in REPORTERS if r.pattern.search(report_text)), "")


def _merge_text_hits(dsn_hits: list[Hit], text_hits: list[Hit]) -> None:
    by_address = {hit.address: hit for hit in text_hits}
    for hit in dsn_hits:
        text_hit = by_address.get(hit.address)
        if text_hit is None and len(dsn_hits) == len(text_hits) == 1:
            text_hit = text_hits[0]  # one each: the text names an alias of the DSN's address
        if text_hit is None:
            continue
        # Sendmail puts only the first line of a multi-line reply ("550-5.7.1 ...") in the
        # Diagnostic-Code field; its transcript has the rest.
        if not _meaningful(hit.diagnostic) or re.match(r"\d{3}-", hit.diagnostic):
            hit.diagnostic = join(hit.diagnostic, text_hit.diagnostic)
        hit.context = join(text_hit.context, text_hit.diagnostic)


def _meaningful(text: str) -> bool:
    return bool(re.search(r"[A-Za-z]{3,}.*[A-Za-z]{3,}", text))


# Subjects, senders and phrases that only mail systems use. A message needs one of these (or a
# delivery-status part) before its text is searched for failed recipients.
BOUNCE_SUBJECTS: tuple[Rule, ...] = rules(
    "bounce subject",
    r"""undeliver|delivery\s+(?:status|failure|failed|report|notification|problem)
    |returned\s+mail|returning\s+message|failure\s+notice|mail\s+delivery\s+failed
    |non\s+remis|non\s+recapitabile|unzustellbar|no\s+entregado|niet\s+bezorgd
    |could\s+not\s+be\s+delivered|delivery\s+has\s+failed|warning:\s+message\s+\S+\s+delayed
    |delayed\s+mail|mail\s+system\s+error|failed\s+delivery|failure\s+delivery
    |there\s+was\s+an\s+error\s+sending|mail\s+failed|mail\s+failure|returned\s+to\s+sender
    |could\s+not\s+send\s+message|not\s+delivered""",
    re.IGNORECASE | re.VERBOSE,
)
DAEMON_SENDERS: tuple[Rule, ...] = rules(
    "mail system sender",
    # Spelled with or without a separator ("MAILER-DAEMON", "Mailer Daemon", "post_master").
    r"mail(?:er)?[\s_-]?daemon|post[_-]?master"
    r"|mail\s+deliver(?:y)?\s+(?:system|subsystem|service)",
    prefix=r"\b",
)
BOUNCE_PHRASES: tuple[Rule, ...] = rules(
    "bounce phrase",
    r"""could\s+not\s+be\s+delivered\s+to|was\s+not\s+delivered\s+to|wasn't\s+delivered\s+to
    |unable\s+to\s+deliver\s+(?:your\s+)?message\s+to|delivery\s+to\s+the\s+following
    |following\s+addresses\s+had\s+(?:permanent\s+)?(?:fatal\s+|delivery\s+)?errors
    |this\s+is\s+a\s+permanent\s+error|delivery\s+has\s+failed\s+to\s+these\s+recipients""",
    re.IGNORECASE | re.VERBOSE,
)
_AUTOMATED_SENDER_RE = re.compile(r"(?i)^(?:no-?reply|do-?not-?reply|mailer|daemon|bounce)")


STRONG, WEAK = "strong", "weak"


def _bounce_evidence(mail: Mail) -> str:
    """How surely a message without a delivery-status part is a bounce: STRONG, WEAK or ""."""
    msg = mail.msg
    if msg.get("X-Failed-Recipients") or search(DAEMON_SENDERS, mail.from_header):
        return STRONG
    forwarded = REPLY_SUBJECT_RE.match(mail.subject) or FORWARD_SUBJECT_RE.match(mail.subject)
    if not forwarded and search(BOUNCE_SUBJECTS, mail.subject):
        return WEAK
    # A bounce phrase alone could be a person quoting one; it counts from an automated sender.
    automated = (
        header(msg, "Return-Path").strip() == "<>"
        or bool(_AUTOMATED_SENDER_RE.match(mail.from_address))
        or bool(msg.get("Auto-Submitted"))
    )
    return WEAK if automated and search(BOUNCE_PHRASES, mail.report_text) else ""


def _names_an_error(text: str) -> bool:
    return bool(find_status(text) or find_reply_code(text) or reason_from_text(text))


def _attached_bounce(mail: Mail) -> Mail | None:
    """A bounce forwarded as an attachment (a relay that wraps the report it received)."""
    for part in mail.msg.walk():
        if part is mail.msg or part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = mail_from(payload[0])
            if inner.dsn_text:
                return inner
    return None


# --- RFC 3464 delivery-status fields ---------------------------------------------------------

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")


def _field_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        if not match:
            if last:
                current[last] += " " + line.strip()
            continue
        name = match.group(1).lower()
        # A recipient field seen twice means two recipients with no blank line between.
        if name in current and name in ("final-recipient", "original-recipient"):
            blocks.append(current)
            current = {}
        current.setdefault(name, match.group(2).strip())
        last = name
    if current:
        blocks.append(current)
    return blocks


def _dsn_hits(text: str) -> list[Hit]:
    hits: list[Hit] = []
    for block in _field_blocks(text):
        if not any(name in block for name in _RECIPIENT_FIELDS):
            continue
        address = ""
        for name in _RECIPIENT_FIELDS:
            address = clean_address(_split_type(block.get(name, ""))[1])
            if address:
                break
        diagnostic_type, diagnostic = _split_type(block.get("diagnostic-code", ""))
        hits.append(
            Hit(
                address=address,
                diagnostic=diagnostic,
                status=find_status(block.get("status", "")),
                action=(block.get("action", "").split() or [""])[0].lower(),
                diagnostic_type=diagnostic_type,
                structured=True,
                reason=_powermta_reason(block.get("x-powermta-bouncecategory", "")),
            )
        )
    return hits


# PowerMTA classifies each failure itself (X-PowerMTA-BounceCategory); its categories map onto
# our reasons.
POWERMTA_CATEGORIES: tuple[Wording, ...] = tuple(
    Wording(reason, re.compile(re.escape(category)))
    for category, reason in (
        ("bad-mailbox", "userunknown"),
        ("bad-domain", "hostunknown"),
        ("inactive-mailbox", "suspend"),
        ("quota-issues", "mailboxfull"),
        ("message-expired", "expired"),
        ("no-answer-from-host", "expired"),
        ("bad-connection", "networkerror"),
        ("routing-errors", "systemerror"),
        ("relaying-issues", "norelaying"),
        ("spam-related", "spamdetected"),
        ("virus-related", "virusdetected"),
        ("content-related", "contenterror"),
        ("policy-related", "policyviolation"),
        ("invalid-sender", "rejected"),
    )
)


def _powermta_reason(category: str) -> str:
    return next((c.reason for c in POWERMTA_CATEGORIES if c.pattern.fullmatch(category)), "")


def _split_type(value: str) -> tuple[str, str]:
    """Split "smtp; 550 5.1.1 ..." or "rfc822; user@example.com" into type and value."""
    head, sep, tail = value.partition(";")
    if sep and re.fullmatch(r"\s*[\w.-]+\s*", head):
        return head.strip().lower(), tail.strip()
    return "", value.strip()


# Header fields of a message, never of a delivery-status block: after the recipient fields
# they start the copy of the original message even where no marker line introduces it.
_MESSAGE_FIELD_RE = re.compile(
    r"(?i)^(?:Received|Return-Path|DKIM-Signature|Message-ID|From|Subject|MIME-Version)\s*:"
)


def _cut_original_dsn(text: str) -> str:
    # Only the part before the copy of the original message: its own headers are not ours.
    lines = text.splitlines()
    seen_recipient = False
    for index, line in enumerate(lines):
        if is_original_marker(line) or (seen_recipient and _MESSAGE_FIELD_RE.match(line)):
            return "\n".join(lines[:index])
        seen_recipient = seen_recipient or line.lower().startswith(_RECIPIENT_FIELDS)
    return text


# --- Amazon SES notifications (JSON, possibly wrapped in an SNS envelope) --------------------


def _ses_hits(data: dict[str, Any]) -> list[Hit]:
    kind = data.get("notificationType")
    hits: list[Hit] = []
    if kind == "Bounce":
        for item in (data.get("bounce") or {}).get("bouncedRecipients") or []:
            hits.append(
                Hit(
                    address=clean_address(str(item.get("emailAddress", ""))),
                    diagnostic=_split_type(str(item.get("diagnosticCode", "")))[1],
                    status=find_status(str(item.get("status", ""))),
                    action=str(item.get("action", "")),
                    structured=True,
                )
            )
    elif kind == "Delivery":
        delivery = data.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        for address in delivery.get("recipients") or []:
            hits.append(Hit(address=clean_address(str(address)), diagnostic=response))
    return hits


# --- Mailing-list managers that refuse a post -------------------------------------------------


def _mailing_list_error(mail: Mail) -> Hit | None:
    msg = mail.msg
    if not (msg.get("X-MLServer") or msg.get("X-ML-Server") or msg.get("X-ML-Name")):
        return None
    error = next((e for e in LIST_ERRORS if e.pattern.search(mail.subject)), None)
    if error is None:
        return None
    return Hit(address=mail.from_address, diagnostic=mail.subject, reason=error.reason)


# What a mailing-list manager's subject says when it refuses a post.
LIST_ERRORS: tuple[Wording, ...] = (
    Wording("rejected", re.compile(r"(?i)\bnot\s+(?:a\s+)?member\b")),
    Wording("systemerror", re.compile(r"(?i)\bloop\b")),
)


# --- Plain-text reports ----------------------------------------------------------------------

# A line that names a failed recipient, in the shapes MTAs print it. The optional "diag" group
# is diagnostic text that shares the line with the address.
RECIPIENT_LINES: tuple[Rule, ...] = (
    Rule(
        "sendmail transcript",  # "550 <user@example.com>... User unknown"
        re.compile(rf"^\s*(?P<code>\d{{3}})\s+<(?P<addr>{ADDRESS})>\.\.\.\s*(?P<diag>.*)$"),
    ),
    Rule(
        "smtp transcript",  # "RCPT TO:<user@example.com>"
        re.compile(rf"(?i)^\s*(?:In:|>>>|Sent\s*<<<)?\s*RCPT\s+TO:\s*<(?P<addr>{ADDRESS})>"),
    ),
    Rule(
        "address alone",  # maybe quoted, bracketed, bulleted, with a trailing colon or date
        re.compile(
            rf"""^\s*(?:[*-]\s*|Recipient:\s*)?["'<]?(?P<addr>{ADDRESS})[>"']?
            (?:\s*<mailto:[^>]*>)?\s*:?\s*
            (?:on\s+\S.*|\((?:unrecoverable\s+error|expanded\s+from[^)]*)\)|\[(?P<diag>[^\]]*)\])?\s*$""",
            re.IGNORECASE | re.VERBOSE,
        ),
    ),
    Rule(
        "address: diagnostic",  # "<user@example.com>: 550 5.1.1 ..." (OpenSMTPD, Postfix text)
        re.compile(rf"""^\s*["<]?(?P<addr>{ADDRESS})[">]?:\s+(?P<diag>\S.*)$"""),
    ),
    Rule(
        "address ... diagnostic",  # "user@example.com ... unknown host"
        re.compile(rf"^\s*(?P<addr>{ADDRESS})\s+\.\.\.\s+(?P<diag>.+)$"),
    ),
    *rules(
        "sentence naming the address",  # "Could not be delivered to: <user@example.com>"
        r"""could\s+not\s+be\s+delivered\s+to|unable\s+to\s+deliver\s+(?:message\s+)?to
        |error\s+delivering\s+your\s+mail\s+to|did\s+not\s+reach\s+the\s+following\s+recipient
        |rejected\s+recipient|returned\s+permanent\s+errors|delivery\s+to
        |wasn't\s+delivered\s+to|was\s+not\s+delivered\s+to""",
        re.IGNORECASE | re.VERBOSE,
        suffix=rf"""\s*:?\s*["<]?(?P<addr>{ADDRESS})[>"]?[.,]?(?P<diag>.*)$""",
    ),
    Rule(
        "diagnostic: address",  # "User mailbox exceeds allowed size: user@example.com"
        re.compile(rf"""^\s*(?P<diag>[A-Za-z][^:<>@]{{5,}}):\s*<?(?P<addr>{ADDRESS})>?\s*$"""),
    ),
    Rule(
        "address diagnostic",  # "user@example.com Invalid Address, ERROR_CODE :550, ..." (Zoho)
        re.compile(rf"^(?P<addr>{ADDRESS})\s+(?P<diag>[A-Za-z].*)$"),
    ),
)
# Lines after which a recipient's diagnostic is over: boilerplate, not the error.
BLOCK_ENDS: tuple[Rule, ...] = rules(
    "boilerplate",
    r"""\*{5,}|no\s+action\s+is\s+required|рекомендуем|please\s|if\s+you\s
    |for\s+(?:further|more)\s|the\s+attachment\s+contains|included\s+is\s+a\s+copy
    |this\s+message\s+was\s+created\s+automatically""",
    re.IGNORECASE | re.VERBOSE,
    prefix=r"^\s*",
)


def _text_hits(mail: Mail) -> tuple[list[Hit], str]:
    """Hits from the lines that name failed addresses, and the text that precedes them."""
    diagnostics: dict[str, list[str]] = {}
    naming_lines: dict[str, list[str]] = {}
    preamble: list[str] = []
    current: list[str] | None = None
    open_block = False
    for line in mail.report_text.splitlines():
        match = _match_recipient_line(line)
        if match is not None:
            address, diagnostic, complete = match
            current = diagnostics.setdefault(address, [])
            current.append(diagnostic)
            # The naming line itself may tell the command: "RCPT TO:<user@example.org>".
            naming_lines.setdefault(address, []).append(line)
            open_block = not complete
        elif current is None:
            preamble.append(line)
        elif search(BLOCK_ENDS, line):
            open_block = False
        elif open_block and len(current) < MAX_BLOCK_LINES:
            current.append(line)
    hits = [
        Hit(address=address, diagnostic=join(*lines), context=join(*naming_lines[address]))
        for address, lines in diagnostics.items()
    ]
    # The bounce's own recipient and the original sender are named too ("a message sent by
    # <you>"), but they are not the ones that failed, unless nobody else is named.
    senders = {*mail.to_addresses, *_original_senders(mail.original)}
    found = [hit for hit in hits if hit.address not in senders]
    return found or hits, join(*preamble[-MAX_BLOCK_LINES:])


def _original_senders(original: Message | None) -> list[str]:
    if original is None:
        return []
    return header_addresses([*header_all(original, "From"), *header_all(original, "Return-Path")])


def _match_recipient_line(line: str) -> tuple[str, str, bool] | None:
    """(address, diagnostic on the line, whether the line is the whole diagnostic)."""
    if len(line) > 1000 or "@" not in line:
        return None
    for rule in RECIPIENT_LINES:
        match = rule.pattern.search(line)
        if match:
            groups = match.groupdict()
            address = match.group("addr").lower().strip(".")
            diagnostic = (groups.get("diag") or "").strip(" .:,")
            if groups.get("code"):
                # Sendmail's "550 <user@host>... User unknown": one line per recipient, and the
                # lines before it belong to the next one.
                if not find_reply_code(diagnostic):
                    diagnostic = join(groups["code"], diagnostic)
                return address, diagnostic, True
            return address, diagnostic, False
    return None


def _fallback_hits(mail: Mail, evidence: str) -> list[Hit]:
    """A bounce that names no recipient in its text: use X-Failed-Recipients or the original."""
    report = join(*mail.report_text.splitlines())[:3000]
    names_an_error = _names_an_error(report)
    if not names_an_error and evidence != STRONG:
        return []  # nothing but a subject says this is a bounce: it is not one
    addresses = header_addresses(header_all(mail.msg, "X-Failed-Recipients"))
    if not addresses and mail.original is not None:
        addresses = header_addresses(header_all(mail.original, "To"))[:1]
    if not addresses:
        if evidence != STRONG or not names_an_error:
            return []
        addresses = [""]  # a mail system reports an error for someone it does not name
    # Nothing here is the recipient's own diagnostic: the report is context only.
    return [Hit(address=a, context=report, named=False) for a in addresses]
