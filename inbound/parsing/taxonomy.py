"""The one taxonomy of delivery failures, and what status and reply codes say about them.

Every failed recipient gets one reason class of TAXONOMY (Sisimai's names, which the test corpus
uses). Whether the address is dead (hard) and the status a report without one gets follow from
the class, here and nowhere else. STATUS_REASONS and REPLY_REASONS name the class that an RFC
3463 status code or an SMTP reply code implies by itself, for the reader in ``reasons`` to use
where the diagnostic text names none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ReasonClass:
    """One failure class of the taxonomy (Sisimai's names, which the test corpus uses)."""

    hard: Literal["always", "if permanent", "never"]  # is the address dead? ("if": 5.x.x)
    code: str  # "X.0.<code>": the status a report that carries none gets (Sisimai's convention)
    meaning: str


# The one taxonomy: every failed recipient gets one of these. Only a dead address is hard:
# mailing it again can only bounce again. Everything else (a full mailbox, a block, a policy, a
# filter) is about this message, this sender or this moment, and is soft.
TAXONOMY: dict[str, ReasonClass] = {
    "userunknown": ReasonClass("always", "911", "the mailbox does not exist"),
    "hostunknown": ReasonClass("always", "912", "the domain does not exist or has no mail host"),
    "hasmoved": ReasonClass("always", "916", "the address has moved, no forwarding"),
    "notaccept": ReasonClass("if permanent", "932", "the domain accepts no mail (null MX)"),
    "mailboxfull": ReasonClass("never", "922", "the mailbox is full or over quota"),
    "exceedlimit": ReasonClass("never", "923", "a per-message or per-user limit was exceeded"),
    "mesgtoobig": ReasonClass("never", "934", "the message is too big"),
    "suspend": ReasonClass("never", "921", "the mailbox is disabled or suspended"),
    "expired": ReasonClass("never", "947", "delivery kept failing until it expired"),
    "onhold": ReasonClass("never", "901", "a recipient named with no reason given"),
    "blocked": ReasonClass("never", "971", "the sending host or IP is blocked"),
    "requireptr": ReasonClass("never", "973", "the sending IP has no or a bad reverse DNS"),
    "badreputation": ReasonClass("never", "975", "the sender's reputation is too low"),
    "policyviolation": ReasonClass("never", "972", "a local policy refused the message"),
    "spamdetected": ReasonClass("never", "980", "the message was taken for spam"),
    "virusdetected": ReasonClass("never", "981", "the message carries a virus"),
    "filtered": ReasonClass("never", "910", "a recipient-side filter refused the message"),
    "rejected": ReasonClass("never", "918", "the sender (envelope or domain) was refused"),
    "authfailure": ReasonClass("never", "926", "SPF, DKIM or DMARC failed"),
    "securityerror": ReasonClass("never", "970", "TLS or authentication was required"),
    "norelaying": ReasonClass("never", "909", "the server refused to relay"),
    "contenterror": ReasonClass("never", "960", "the content (headers, encoding) is invalid"),
    "notcompliantrfc": ReasonClass("never", "974", "the message breaks RFC 5322"),
    "syntaxerror": ReasonClass("never", "902", "an SMTP command or address was malformed"),
    "speeding": ReasonClass("never", "946", "too many messages too fast (rate limit)"),
    "toomanyconn": ReasonClass("never", "945", "too many connections or recipients"),
    "networkerror": ReasonClass("never", "944", "DNS, routing or connection failure, a loop"),
    "systemerror": ReasonClass("never", "930", "the receiving system failed"),
    "systemfull": ReasonClass("never", "931", "the receiving system is out of storage"),
    "mailererror": ReasonClass("never", "939", "a local delivery program failed"),
    "undefined": ReasonClass("never", "900", "no recipient and no reason could be read"),
    "delivered": ReasonClass("never", "", "delivered: a success report"),
    "feedback": ReasonClass("never", "", "an ARF complaint report"),
    "vacation": ReasonClass("never", "", "an RFC 3834 auto-reply"),
}


def is_hard(reason: str, status: str) -> bool:
    """Whether a failure with this reason and status means the address is dead."""
    verdict = TAXONOMY[reason].hard if reason in TAXONOMY else "never"
    return verdict == "always" or (verdict == "if permanent" and status.startswith("5"))


def default_status(reason: str, temporary: bool) -> str:
    """The status of a failure whose report carries none: "X.0.9nn" from the taxonomy."""
    entry = TAXONOMY.get(reason)
    klass = "4" if temporary and (entry is None or entry.hard != "always") else "5"
    return f"{klass}.0.{entry.code if entry and entry.code else '0'}"


# RFC 3463 / 5248 status codes that name a reason by themselves, by subject and detail
# ("X.1.1": either class); an exact code where the two classes mean different things.
STATUS_REASONS = {
    "X.1.0": "userunknown",
    "X.1.1": "userunknown",
    "X.1.2": "hostunknown",
    "X.1.3": "userunknown",
    "X.1.4": "filtered",
    "X.1.6": "hasmoved",
    "X.1.7": "rejected",
    "X.1.8": "rejected",
    "X.1.10": "notaccept",
    "X.2.0": "filtered",
    "4.2.1": "blocked",  # "421 4.2.1": the server refuses this sender for now
    "5.2.1": "filtered",
    "X.2.2": "mailboxfull",
    "X.2.3": "exceedlimit",
    "X.2.4": "filtered",
    "X.3.0": "systemerror",
    "X.3.1": "systemfull",
    "X.3.2": "notaccept",
    "X.3.4": "mesgtoobig",
    "X.3.5": "systemerror",
    "5.4.0": "networkerror",
    "4.4.1": "expired",  # no answer from the host, retried until now
    "X.4.2": "networkerror",
    "X.4.3": "systemerror",
    "4.4.4": "networkerror",
    "5.4.4": "hostunknown",  # unable to route: the domain has no mail host
    "X.4.5": "systemfull",
    "X.4.6": "networkerror",
    "X.4.7": "expired",
    "X.5.3": "toomanyconn",
    "4.7.1": "blocked",
    "X.7.13": "suspend",
    "X.7.17": "hasmoved",
    "X.7.18": "hasmoved",
    "X.7.20": "authfailure",
    "X.7.21": "authfailure",
    "X.7.22": "authfailure",
    "X.7.23": "authfailure",
    "X.7.24": "authfailure",
    "X.7.25": "requireptr",
    "X.7.26": "authfailure",
    "X.7.27": "notaccept",
}

# SMTP reply codes whose RFC 5321 / 7504 meaning names a reason, read only when neither the
# text nor a specific status code does.
REPLY_REASONS = {
    "421": "blocked",  # service not available, closing the channel: the client is refused
    "451": "systemerror",  # local error in processing
    "452": "systemfull",  # insufficient system storage
    "521": "notaccept",  # the host does not accept mail (RFC 7504)
    "530": "securityerror",  # authentication required
    "535": "securityerror",  # authentication credentials invalid
    "538": "securityerror",  # encryption required
    "552": "mailboxfull",  # exceeded storage allocation
    "556": "notaccept",  # the domain does not accept mail (RFC 7504)
}


def reason_from_status(status: str) -> str:
    """The failure class that an RFC 3463 status code names by itself, or ""."""
    if status.startswith("2."):
        return "delivered"
    by_code = STATUS_REASONS.get(status) or STATUS_REASONS.get(f"X{status[1:]}", "")
    # Every "X.6.Y" is about the message's content or media, whatever its detail.
    return by_code or ("contenterror" if status[1:3] == ".6" else "")
