"""Telling human opens and clicks from machine ones.

Every rule is a small function from the event's facts to a reason string (or None), and
`RULES` runs them in order; the first that fires labels the event. The order, and why:

1. honeypot link followed -> scanner. Proof, not a guess: no person can see that link.
2. HEAD request -> scanner. Browsers and mail clients fetch with GET; link checkers HEAD.
3. several links clicked within one second -> scanner. Scanners follow every link at once.
4. a click within `scanner_window_seconds` of delivery -> scanner. Gateways check links as
   the message passes through them, before a person could have read it.
5. a known security-gateway user agent -> scanner.
6. Apple Mail Privacy Protection -> apple_mpp (opens only).
7. a mail provider's image proxy -> image_proxy. Before the crawler rule, because ua-parser
   files some proxies (YahooMailProxy) under the "Spider" device family.
8. a user agent that is not a person's client -> bot. A person's client is recognised, not
   presumed: a browser engine (Gecko, WebKit / Blink, Trident / EdgeHTML, Presto, KHTML), an
   in-app web view or a known mail client (Outlook, Thunderbird, Apple Mail, Airmail, eM
   Client, Mailbird, Spark, Samsung Email, the Outlook and Yahoo Mail apps). Even then it is
   a bot if it carries an injection probe, a headless or automated browser's name, a
   crawler's name (ua-parser's "Spider" family, a robot word, the crawler-user-agents
   package's patterns) or a contact address. Anything else is a bot too, named as an HTTP
   library when a product token belongs to one, otherwise as "no known client": every
   machine nobody listed used to pass as a person, and the list of clients people read mail
   with is short and stable.
9. a data-centre address -> scanner. Last of the machine rules: it only knows where a request
   came from, so a more specific rule above gets to name the machine first.
10. otherwise human: a person's client with no machine signal.

Machine events are stored with their label, never dropped (see DESIGN.md), so a heuristic
that misfires hides an event from "opened", it does not lose it.
"""

import bisect
import enum
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from tracking.user_agents import user_agent_judge

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Label(enum.StrEnum):
    HUMAN = "human"
    APPLE_MPP = "apple_mpp"
    IMAGE_PROXY = "image_proxy"
    SCANNER = "scanner"
    BOT = "bot"


@dataclass(frozen=True, slots=True)
class EventFacts:
    kind: str  # "open" | "click"
    user_agent: str
    ip: str
    method: str
    seconds_since_delivery: float | None
    honeypot: bool = False
    links_clicked_same_second: int = 1


@dataclass(frozen=True, slots=True)
class Verdict:
    label: str
    reason: str


# The user-agent tables are (name shown in the reason, regex fragments), matched without
# regard to case.
Signatures = tuple[tuple[str, tuple[str, ...]], ...]

# Link scanners and secure email gateways that name themselves in the user agent. Many pose
# as an ordinary browser instead; the timing, burst, honeypot and data-centre rules exist
# for those.
SCANNER_SIGNATURES: Signatures = (
    ("Barracuda", ("barracuda",)),
    ("Mimecast", ("mimecast",)),
    ("Proofpoint", ("proofpoint",)),
    ("Microsoft Defender Safe Links", ("safelinks",)),
    # Outlook's link previews, fetched on Microsoft's side.
    ("Microsoft BingPreview", ("bingpreview",)),
    # Office applications probe a link with these before handing it to the browser, so the
    # person's real click follows as a separate request; counting both would double it.
    ("Microsoft Office link check", ("microsoft office (?:existence|protocol) discovery",)),
    ("Cisco IronPort", ("ironport",)),
    ("Symantec MessageLabs", ("messagelabs", "symantec")),
    ("Trend Micro", ("trend ?micro",)),
    ("Sophos", ("sophos",)),
    ("FireEye / Trellix", ("fireeye", "trellix")),
    ("Forcepoint", ("forcepoint",)),
    ("Fortinet", ("fortimail", "fortiguard")),
    ("SonicWall", ("sonicwall",)),
    ("McAfee", ("mcafee",)),
    ("Kaspersky", ("kaspersky",)),
    ("Check Point", ("check ?point",)),
)

# Mail providers that fetch images on the reader's behalf: the request says the message was
# rendered (or pre-fetched) somewhere behind the proxy, not who or what looked at it.
IMAGE_PROXY_SIGNATURES: Signatures = (
    ("Gmail image proxy (GoogleImageProxy)", ("googleimageproxy", r"ggpht\.com")),
    ("Yahoo Mail image proxy (YahooMailProxy)", ("yahoomailproxy",)),
)

# A handful of the largest published prefixes of the big clouds (from each provider's
# ip-ranges file), not the full lists: enough to catch most scanners that run there without
# a monthly refresh. People do browse from clouds (virtual desktops, some VPNs), which is
# why this rule runs last among the machine rules.
DATA_CENTRE_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Amazon AWS",
        ("3.0.0.0/8", "34.192.0.0/10", "52.0.0.0/11", "54.144.0.0/12", "2600:1f00::/24"),
    ),
    (
        "Microsoft Azure",
        ("13.64.0.0/11", "23.96.0.0/13", "40.64.0.0/10", "52.224.0.0/11", "104.40.0.0/13"),
    ),
    (
        "Google Cloud",
        ("34.64.0.0/10", "35.184.0.0/13", "35.192.0.0/14", "35.208.0.0/12", "2600:1900::/28"),
    ),
    (
        "DigitalOcean",
        (
            "104.131.0.0/16",
            "138.197.0.0/16",
            "159.203.0.0/16",
            "165.227.0.0/16",
            "167.99.0.0/16",
            "2604:a880::/32",
        ),
    ),
)

# Apple Mail Privacy Protection fetches every remote image of a message through Apple's
# proxies soon after delivery, whether or not anyone reads it, with the bare user agent
# "Mozilla/5.0". Most of those proxies sit in Apple's 17.0.0.0/8. Limits: the bare user
# agent alone is a strong signal but not proof (a few minimal clients send it too), some MPP
# fetches leave from partner networks outside 17/8, and an Apple employee's own Mail app
# on Apple's network sends a full user agent, so it is not caught here.
MPP_USER_AGENT = "Mozilla/5.0"
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")

Rule = Callable[[EventFacts, float], str | None]


def _signature_finder(table: Signatures) -> Callable[[str], str | None]:
    """One compiled alternation over a table, cached per user agent, giving the entry's name."""
    pattern = re.compile(
        "|".join(f"(?P<s{index}>{'|'.join(needles)})" for index, (_, needles) in enumerate(table)),
        re.IGNORECASE | re.ASCII,
    )

    # Distinct user agents number in the thousands, not millions, so a cache of the
    # answers turns the search into a dictionary lookup for the common ones.
    @lru_cache(maxsize=8192)
    def find(user_agent: str) -> str | None:
        match = pattern.search(user_agent)
        if match is None or match.lastgroup is None:
            return None
        return table[int(match.lastgroup[1:])][0]

    return find


_scanner_vendor = _signature_finder(SCANNER_SIGNATURES)
_image_proxy_name = _signature_finder(IMAGE_PROXY_SIGNATURES)


def _address_ranges(
    prefixes: tuple[tuple[str, tuple[str, ...]], ...],
) -> dict[int, tuple[list[int], list[tuple[int, str]]]]:
    """Per IP version, the sorted first addresses and (last address, name) of each prefix."""
    ranges: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
    for name, cidrs in prefixes:
        for network in map(ipaddress.ip_network, cidrs):
            first, last = int(network.network_address), int(network.broadcast_address)
            ranges[network.version].append((first, last, name))
    return {
        version: ([first for first, _, _ in rows], [(last, name) for _, last, name in rows])
        for version, rows in ((version, sorted(rows)) for version, rows in ranges.items())
    }


# Bisecting sorted ranges keeps the lookup one step however many prefixes there are; it
# needs the prefixes not to overlap, which a test checks.
_DATA_CENTRE_RANGES = _address_ranges(DATA_CENTRE_PREFIXES)


def classify(facts: EventFacts, *, scanner_window_seconds: float = 10.0) -> Verdict:
    """Label an open or click as human or as one kind of machine, with the evidence."""
    return classify_event(
        facts.kind,
        facts.user_agent,
        facts.ip,
        facts.method,
        facts.seconds_since_delivery,
        facts.honeypot,
        facts.links_clicked_same_second,
        scanner_window_seconds,
    )


def classify_event(
    kind: str,
    user_agent: str,
    ip: str,
    method: str,
    seconds_since_delivery: float | None,
    honeypot: bool,
    links_clicked_same_second: int,
    scanner_window_seconds: float,
) -> Verdict:
    """`classify` on the facts themselves: ingestion labels thousands of events a batch, and
    most repeat (one person's client, one scanner), so the verdict of facts seen before is
    remembered without building them."""
    seconds = seconds_since_delivery
    if kind == "click" and seconds is not None and seconds < scanner_window_seconds:
        facts = EventFacts(
            kind, user_agent, ip, method, seconds, honeypot, links_clicked_same_second
        )
        return _apply_rules(facts, scanner_window_seconds)
    # The delay matters only to a click within the window (rule 4): without it, the facts
    # repeat and the verdict can be remembered.
    return _remembered(
        kind, user_agent, ip, method, honeypot, links_clicked_same_second, scanner_window_seconds
    )


def _apply_rules(facts: EventFacts, window: float) -> Verdict:
    for label, rule in RULES:
        reason = rule(facts, window)
        if reason is not None:
            return Verdict(label, reason)
    return Verdict(Label.HUMAN, "no machine signal")


@lru_cache(maxsize=65_536)
def _remembered(
    kind: str,
    user_agent: str,
    ip: str,
    method: str,
    honeypot: bool,
    links_clicked_same_second: int,
    window: float,
) -> Verdict:
    facts = EventFacts(kind, user_agent, ip, method, None, honeypot, links_clicked_same_second)
    return _apply_rules(facts, window)


@lru_cache(maxsize=65_536)  # a day of opens comes from far fewer addresses
def truncate_ip(ip: str) -> str:
    """Zero the last octet of IPv4 or the last 80 bits of IPv6; "" for anything else."""
    address = _parse_ip(ip)
    if address is None:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _honeypot(facts: EventFacts, window: float) -> str | None:
    return "honeypot link followed" if facts.honeypot else None


def _head_request(facts: EventFacts, window: float) -> str | None:
    return "HEAD request" if facts.method.strip().upper() == "HEAD" else None


def _click_burst(facts: EventFacts, window: float) -> str | None:
    count = facts.links_clicked_same_second
    if facts.kind == "click" and count >= 2:
        return f"clicked {count} links within one second"
    return None


def _click_too_soon(facts: EventFacts, window: float) -> str | None:
    seconds = facts.seconds_since_delivery
    # A negative delay is clock skew around a very fast click, so it counts as "too soon".
    if facts.kind == "click" and seconds is not None and seconds < window:
        return f"clicked {seconds:.1f} s after delivery"
    return None


def _scanner_user_agent(facts: EventFacts, window: float) -> str | None:
    vendor = _scanner_vendor(facts.user_agent)
    return None if vendor is None else f"known scanner: {vendor}"


def _apple_mpp(facts: EventFacts, window: float) -> str | None:
    if facts.kind != "open" or facts.user_agent.strip() != MPP_USER_AGENT:
        return None
    address = _parse_ip(facts.ip)
    if address is not None and address in APPLE_NETWORK:
        return "Apple Mail Privacy Protection user agent from Apple's network"
    return "Apple Mail Privacy Protection user agent"


def _image_proxy(facts: EventFacts, window: float) -> str | None:
    return _image_proxy_name(facts.user_agent)


def _crawler(facts: EventFacts, window: float) -> str | None:
    user_agent = facts.user_agent.strip()
    # No browser sends a bare "Mozilla/5.0"; on an open it is Apple's proxy (rule 6), on a
    # click it is a script.
    if user_agent == MPP_USER_AGENT:
        return f"bare {MPP_USER_AGENT} user agent on a {facts.kind}"
    return user_agent_judge().machine_reason(user_agent)


def _data_centre(facts: EventFacts, window: float) -> str | None:
    address = _parse_ip(facts.ip)
    if address is None:
        return None
    firsts, rows = _DATA_CENTRE_RANGES[address.version]
    number = int(address)
    index = bisect.bisect_right(firsts, number) - 1
    if index >= 0 and number <= rows[index][0]:
        return f"data-centre address ({rows[index][1]})"
    return None


RULES: tuple[tuple[Label, Rule], ...] = (
    (Label.SCANNER, _honeypot),
    (Label.SCANNER, _head_request),
    (Label.SCANNER, _click_burst),
    (Label.SCANNER, _click_too_soon),
    (Label.SCANNER, _scanner_user_agent),
    (Label.APPLE_MPP, _apple_mpp),
    (Label.IMAGE_PROXY, _image_proxy),
    (Label.BOT, _crawler),
    (Label.SCANNER, _data_centre),
)


@lru_cache(maxsize=4096)
def _parse_ip(ip: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
