"""Why a delivery failed, and whether the address is dead: one FailedRecipient per hit."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inbound.parsing.codes import find_reply_code, find_status, prefer_status, smtp_command
from inbound.parsing.message import join
from inbound.parsing.results import FailedRecipient
from inbound.parsing.rules import Rule, alternatives, rules, search
from inbound.parsing.taxonomy import REPLY_REASONS, default_status, is_hard, reason_from_status

MAX_DIAGNOSTIC = 500


@dataclass
class Hit:
    """What a report says about one failed recipient; recipient() decides what it means."""

    address: str
    diagnostic: str = ""
    status: str = ""  # an explicit Status: field, when the report has one
    action: str = ""
    diagnostic_type: str = ""  # "smtp", "x-unix", ... from "Diagnostic-Code: TYPE; text"
    reason: str = ""  # set by a format that knows the reason better than its text does
    context: str = ""  # surrounding report text, read only when the diagnostic says nothing
    structured: bool = False  # from RFC 3464 fields or JSON rather than prose
    named: bool = True  # the report names this recipient (rather than us guessing it)


# Wordings that name a reason in a diagnostic text, tried in order; the first match wins. The
# order puts what the receiving side says about the mailbox (full, moved, disabled) before what
# it says about the address, and the address before the sender or the connection. Each "|"
# alternative is its own entry of WORDINGS, so that one wording can be told apart (and switched
# off) from the others of its reason. A parenthesised alternative is one wording said in more
# than one order or form ("host unknown", "unknown host"); a list of unrelated phrases is not.
_WORDING_SOURCE: tuple[tuple[str, str], ...] = (
    (
        "mailboxfull",
        r"(?:mailbox|mail\s*folder|inbox)\b[^.;:]{0,30}\b(?:full|exceed)|over\s*quota"
        r"|(?<!relay\s)(?<!daily\s)(?<!sending\s)\bquota\b|exceeds?\s+allowed\s+size"
        r"|mailbox\s+size\s+limit|user\s+is\s+over"
        # The same in the languages mail systems most often answer in besides English.
        r"|bo[îi]te\s+(?:aux\s+lettres\s+)?(?:pleine|satur[ée]e)|(?:buz[óo]n|casilla)\s+(?:\w+\s+)?llen[oa]"
        r"|(?:postfach|mailbox)\s+(?:ist\s+)?voll|casella\s+(?:\w+\s+)?piena"
        r"|(?:почтов\w+\s+)?ящик\w*\s+(?:\w+\s+)?переполнен|メールボックス[^。\n]{0,30}?(?:いっぱい|容量)",
    ),
    (
        "mesgtoobig",
        # Not "message size exceeds ...": said of a per-message (X.3.4) and of a per-user limit
        # (X.2.3) alike, it leaves the choice to the status code.
        r"message\s+(?:is\s+)?too\s+(?:big|large)|size\s+limit\s+exceeded"
        r"|exceeds?\s+(?:the\s+)?(?:maximum|max)\s+(?:message\s+)?size",
    ),
    ("exceedlimit", r"message\s+length\s+exceeds\s+administrative\s+limit"),
    (
        "suspend",
        r"(?:account|mailbox|address|user)(?:\s+\w+)?\s+(?:is\s+|has\s+been\s+)?"
        r"(?:disabled|suspended|locked|inactive|deactivated|frozen)"
        r"|disabled\s+recipient|account\s+disabled",
    ),
    ("hasmoved", r"has\s+moved|no\s+forwarding\s+address"),
    (
        "norelaying",
        # One rule: relaying and a refusal, in either order ("relay access denied", "no relaying").
        r"(?:relay(?:ing)?\s+(?:access\s+)?(?:denied|not\s+(?:permitted|allowed)|prohibited|refused)"
        r"|(?:\bno|not\s+(?:permitted|allowed)\s+to|unable\s+to|cannot|can't)\s+relay)",
    ),
    (
        "authfailure",
        r"\bdmarc\b|\bspf\b|\bdkim\b|sender\s+policy\s+framework|authentication\s+checks\s+failed",
    ),
    ("filtered", r"recipient\s+preferences|message\s+filtered|content\s+filter|user\s+reject"),
    (
        "userunknown",
        r"user\s*unknown|unknown\s+(?:user|recipient|local\s+part|mailbox)"
        r"|no\s+such\s+(?:user|mailbox|recipient|account|person)"
        r"|(?:user|recipient|mailbox|address)\s+(?:not\s+found|does\s*n[o']t\s+exist|unknown|not\s+exist)"
        r"|recipientnotfound|recipnotfound|recipient\s+name\s+is\s+not\s+recognized"
        r"|not\s+listed\s+in\s+(?:the\s+)?(?:domino\s+directory|public\s+name)"
        r"|doesn't\s+have\s+an?\s+\S+\s+account|illegal\s+user"
        r"|invalid\s+(?:\w+\s+){0,2}user(?:id)?\b(?!\s+(?:or|and)\s+password)"
        r"|bad\s+destination\s+mailbox|recipient\s+address\s+rejected:\s+access\s+denied"
        r"|no\s+mailbox\s+here|account\s+that\s+you\s+tried\s+to\s+reach\s+does\s+not\s+exist"
        r"|invalid\s+(?:recipient|mailbox)|address\s+(?:wasn.t|was\s+not|couldn.t\s+be)\s+found"
        r"|mailbox\s+unavailable|no\s+valid\s+recipients|check\s+if\s+(?:the\s+)?address\s+is\s+correct"
        # The recipient (or its address) refused with no reason after it: refused as unknown.
        r"|(?:recipient(?:\s+address)?|@[\w.-]+>?)\s+rejected\.?\s*(?:\(in\s+reply|$)"
        # The same in the languages mail systems most often answer in besides English.
        r"|(?:utilisateur|destinataire)\s+(?:inconnu|invalide|inexistant)"
        r"|(?:usuario|destinatario|buz[óo]n)\s+(?:desconocido|inexistente|no\s+existe)"
        r"|(?:usu[áa]rio|destinat[áa]rio)\s+(?:desconhecido|inexistente|n[ãa]o\s+existe)"
        r"|(?:utente|destinatario|casella)\s+(?:sconosciut[oa]|inesistente|non\s+esiste)"
        r"|unbekannte[rn]?\s+(?:empf[äa]nger|benutzer)|(?:empf[äa]nger|benutzer)\s+unbekannt"
        r"|onbekende\s+(?:gebruiker|ontvanger)|(?:gebruiker|ontvanger)\s+onbekend"
        r"|(?:пользовател|адресат|получател|почтов\w+\s+ящик)\w*\s+(?:\w+\s+)?(?:не\s+существует|не\s+найден)"
        r"|(?:ユーザ|宛先|アドレス)[^。\n]{0,60}?(?:存在しません|見つかりません)",
    ),
    (
        "requireptr",
        r"reverse\s+dns|\bptr\b|\brdns\b|unverif(?:y|i)able\s+sending|mismatches\s+client\s+ip"
        # A lookup of the client's name from its IP address: "reverse lookup", "IP name lookup".
        r"|(?:reverse|ip\s+name)\s+(?:dns\s+)?lookup",
    ),
    (
        "notcompliantrfc",
        r"rfc\s*5322|rfc\s*2822|not\s+(?:rfc\s+)?compliant|multiple\s+\S+\s+headers"
        r"|multiple\s+addresses\s+in\s+from",
    ),
    ("badreputation", r"reputation|unexpected\s+volume\s+or\s+user\s+complaints"),
    ("contenterror", r"media\s+error|content\s+error|invalid\s+header|8-bit\s+data"),
    (
        "rejected",
        r"sender\s+(?:address\s+)?(?:was\s+)?rejected|unroutable\s+sender|sender\s+verify\s+failed"
        r"|invalid\s+sender|bad\s+sender|domain\s+is\s+invalid|sender\s+domain"
        r"|address\s+that\s+has\s+been\s+blacklisted|not\s+a\s+member",
    ),
    (
        "hostunknown",
        # One rule: the host or domain and "unknown", in either order.
        r"(?:(?:host|domain)\s+unknown|unknown\s+(?:host|domain)\b)"
        r"|domain\s+(?:name\s+)?(?:is\s+)?(?:does\s+not\s+exist|not\s+found|not\s+reachable|unreachable)"
        r"|host\s+(?:or\s+domain\s+name\s+|\S+\s+)?not\s+found|couldn't\s+find\s+a\s+mail\s+exchanger"
        r"|bad\s+destination\s+system|name\s+or\s+service\s+not\s+known|unrouteable\s+address"
        r"|no\s+(?:mx|a)\s+record"
        r"|nxdomain|no\s+such\s+domain",
    ),
    ("virusdetected", r"\bvirus|malware|infected"),
    (
        "spamdetected",
        r"\bspam\b|unsolicited|bulk\s+e-?mail|junk\s+mail|\bUBE\b|content\s+rejected",
    ),
    # A limit on connections, before the limits on messages that say "rate limit" too.
    (
        "toomanyconn",
        # One rule: too many connections, sessions or recipients, or a limit on them.
        r"(?:too\s+many\s+(?:connections|concurrent|sessions|recipients)"
        r"|(?:connection|concurrency|session|recipient)s?\s+(?:rate\s+)?limit)",
    ),
    (
        "speeding",
        r"rate\s+limit|too\s+many\s+messages|sending\s+too\s+fast|throttl|at\s+a\s+rate",
    ),
    (
        "blocked",
        r"\bblocked\b|black\s*list|block\s*list|banned|access\s+denied|client\s+host\s+rejected"
        r"|\bdnsbl\b|\brbl\b|not\s+allowed\s+to\s+send"
        r"|refused\s+to\s+talk|invalid\s+domain\s+name",
    ),
    (
        "policyviolation",
        r"\bpolicy\b|\bviolation\b|potential\s+security\s+issue",
    ),
    (
        "systemerror",
        r"system\s+error|internal\s+(?:server\s+)?error|server\s+error"
        r"|queue\s+file\s+write\s+error|service\s+(?:currently\s+)?unavailable"
        r"|does\s+not\s+support\s+tls",
    ),
    (
        "securityerror",
        r"\btls\b|starttls|certificate|authentication\s+required|unauthenticated"
        r"|smtp\s+authentication",
    ),
    ("systemfull", r"system\s+(?:is\s+)?full|insufficient\s+(?:system\s+storage|disk\s+space)"),
    (
        "notaccept",
        r"(?:not|n't)\s+(?:accept|receive)(?:s|ing)?\s+(?:any\s+)?(?:e-?mail|mail|messages|network\s+messages)"
        r"|null\s+mx|no\s+smtp\s+service",
    ),
    (
        "expired",
        r"\bexpired\b|retry\s+timeout\s+exceeded|could\s+not\s+deliver\s+for\s+the\s+last"
        r"|(?:queue|failing|tried|trying)\s+(?:\w+\s+){0,3}?(?:too\s+long|for\s+a\s+long\s+time)"
        r"|giving\s+up|\b(?:\d+|multiple|several|many)\s+(?:delivery\s+)?(?:retries|attempts)\b"
        r"|cannot\s+send\s+message\s+for|aborted\s+after"
        r"|has\s+been\s+delayed|will\s+be\s+retried|not\s+yet\s+been\s+delivered"
        r"|unable\s+to\s+deliver\s+this\s+message\s+after|connection\s+timed\s+out|socket\s+error",
    ),
    (
        "networkerror",
        r"connection\s+(?:refused|reset)|no\s+route\s+to\s+host|network\s+unreachable"
        r"|lost\s+connection|name\s+server|host\s+name\s+lookup\s+failure|dns\s+(?:error|query)"
        r"|too\s+many\s+hops|hop\s+count|routing\s+loop|mail\s+loop|loop\s+detected",
    ),
    (
        "mailererror",
        r"mailer\s+error|(?:^|[\s\"'(])\|\s*/|procmail|exit\s+code|mail\.local",
    ),
    ("syntaxerror", r"syntax\s+error|malformed\s+(?:recipient\s+)?address"),
)


@dataclass(frozen=True)
class Wording:
    """One wording of a reason, as MTAs phrase it."""

    reason: str
    pattern: re.Pattern[str]


WORDINGS: tuple[Wording, ...] = tuple(
    Wording(reason, re.compile(alternative, re.IGNORECASE))
    for reason, pattern in _WORDING_SOURCE
    for alternative in alternatives(pattern)
)


def reason_from_text(diagnostic: str) -> str:
    """The failure class that the diagnostic text names, or "" if it names none."""
    for wording in WORDINGS:
        if wording.pattern.search(diagnostic):
            return wording.reason
    return ""


@dataclass(frozen=True)
class _Evidence:
    status: str  # explicit, from the report ("" when there is none)
    reply_code: str
    command: str
    action: str
    diagnostic_type: str
    structured: bool


def _reason_in(text: str, evidence: _Evidence) -> str:
    reason = reason_from_text(text)
    if reason in ("userunknown", "hostunknown") and evidence.command == "MAIL":
        return "rejected"  # the server refused our sender address, not the recipient
    if reason == "userunknown" and not _confirms_unknown_user(text, evidence):
        # A content filter refuses a message with a "user unknown" too; said after DATA it
        # is no proof that the mailbox does not exist.
        return "filtered"
    if reason == "hostunknown" and (evidence.status or evidence.reply_code).startswith("4"):
        return "networkerror"  # a DNS failure the sender will retry: not a dead domain
    return reason


# Wordings that only a recipient lookup produces, whatever the stage of the session.
DEFINITE_UNKNOWN_USER: tuple[Rule, ...] = rules(
    "recipient lookup",
    r"doesn't\s+have\s+an?\s+\S+\s+account|destinataire\s+invalide|resolver\.adr\.recip"
    r"|account\s+that\s+you\s+tried\s+to\s+reach\s+does\s+not\s+exist",
)
# "550 : User unknown": a reply that names no mailbox comes from a filter, not a lookup.
FILTER_UNKNOWN_USER: tuple[Rule, ...] = rules(
    "reply naming no mailbox", r"\b[45]\d\d\s*:?\s*:\s*user\s+unknown"
)


def _confirms_unknown_user(text: str, evidence: _Evidence) -> bool:
    by_status = reason_from_status(evidence.status)
    if by_status == "userunknown" or evidence.command == "RCPT":
        return True
    if search(DEFINITE_UNKNOWN_USER, text):
        return True
    if evidence.command == "DATA" or by_status == "filtered":
        return False
    if evidence.reply_code and not evidence.structured:
        return False  # an SMTP reply quoted in prose, at an unknown stage of the session
    return not search(FILTER_UNKNOWN_USER, text)


def _decide_reason(diagnostic: str, context: str, evidence: _Evidence, named: bool) -> str:
    """The wording of the recipient's diagnostic, else its status code, else the report's
    wording, else the stage of the session, the status's subject, the action or the reply."""
    if evidence.status.startswith("2."):
        return "delivered"
    if evidence.diagnostic_type == "x-unix":
        # A local delivery program (procmail, a pipe) failed, maybe for want of space.
        reason = reason_from_text(diagnostic)
        return reason if reason in ("mailboxfull", "systemfull") else "mailererror"
    reason = _reason_in(diagnostic, evidence) or reason_from_status(evidence.status)
    reason = reason or _reason_in(context, evidence)
    if reason:
        return reason
    if evidence.command in ("HELO", "CONN"):
        return "blocked"  # refused before any address was given: the client was refused
    if evidence.command == "MAIL":
        # Refused at MAIL FROM: by a security policy ("X.7.Y") the sending host is refused,
        # else our sender address.
        return "blocked" if evidence.status[1:3] == ".7" else "rejected"
    if evidence.status[1:3] == ".7":
        return "securityerror"
    if evidence.action in ("delayed", "expired"):
        return "expired"
    if evidence.reply_code in REPLY_REASONS and not evidence.status[2:].strip(".0"):
        return REPLY_REASONS[evidence.reply_code]
    # A recipient the report names, for reasons it does not give, is on hold; one we had to
    # guess from the original message, with no diagnostic at all, is undefined.
    return "onhold" if diagnostic or (named and context) else "undefined"


def _unfold_reply(diagnostic: str, reply_code: str, status: str) -> str:
    """Turn a multi-line reply ("550-5.7.1 Our system ... 550-5.7.1 this message ...") into
    one sentence, so that wording split across its lines can still be matched."""
    if not reply_code or f"{reply_code}-" not in diagnostic:
        return diagnostic
    head = diagnostic.find(reply_code)
    prefix = rf"\b{reply_code}[- ](?:{re.escape(status)}\s)?" if status else rf"\b{reply_code}[- ]"
    unfolded = re.sub(prefix, "", diagnostic[head:])
    return join(diagnostic[:head], reply_code, status if status in diagnostic else "", unfolded)


# Wordings of a failure that was temporary, or of one that kept failing temporarily until the
# MTA gave up on the address.
TEMPORARY: tuple[Rule, ...] = rules(
    "temporary", r"\btemporar|\bpersistent|retry\s+timeout\s+exceeded|been\s+failing"
)


def _is_temporary(reply_code: str, text: str) -> bool:
    if reply_code:
        return reply_code.startswith("4")
    return search(TEMPORARY, text) is not None


def recipient(hit: Hit) -> FailedRecipient:
    """The recipient's codes, reason and hard/soft verdict, from what the report says."""
    diagnostic = join(hit.diagnostic)
    context = join(hit.context)
    # Codes come from the recipient's own text, or from the report when that says nothing.
    coded = diagnostic if find_status(diagnostic) or find_reply_code(diagnostic) else context
    in_text = find_status(coded)
    status = prefer_status(hit.status, in_text, find_reply_code(coded))
    reply_code = find_reply_code(coded, status)
    diagnostic = _unfold_reply(diagnostic, reply_code, status)
    evidence = _Evidence(
        status=status,
        reply_code=reply_code,
        command=smtp_command(diagnostic) or smtp_command(context),
        action=hit.action.lower(),
        diagnostic_type=hit.diagnostic_type,
        structured=hit.structured,
    )
    reason = hit.reason or _decide_reason(diagnostic, context, evidence, hit.named)
    if not status:
        status = default_status(reason, _is_temporary(reply_code, join(diagnostic, context)))
    hard = is_hard(reason, status)
    return FailedRecipient(
        address=hit.address,
        status=status,
        reply_code=reply_code,
        diagnostic=(diagnostic or context)[:MAX_DIAGNOSTIC],
        hard=hard,
        reason=reason,
    )
