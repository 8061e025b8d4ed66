import dataclasses
import ipaddress
import re

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from tracking.classify import (
    DATA_CENTRE_PREFIXES,
    EventFacts,
    Label,
    Verdict,
    classify,
    truncate_ip,
)
from tracking.user_agents import (
    Client,
    UserAgentJudge,
    _crawler_searches,
    describe_client,
    user_agent_judge,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
RESIDENTIAL_IP = "198.51.100.23"  # documentation range: in no cloud list


def open_event(**overrides) -> EventFacts:
    facts = EventFacts(
        kind="open",
        user_agent=CHROME,
        ip=RESIDENTIAL_IP,
        method="GET",
        seconds_since_delivery=3600.0,
    )
    return dataclasses.replace(facts, **overrides)


def click_event(**overrides) -> EventFacts:
    return open_event(kind="click", **overrides)


def test_the_labels_are_the_stored_strings():
    assert [label.value for label in Label] == [
        "human",
        "apple_mpp",
        "image_proxy",
        "scanner",
        "bot",
    ]


@pytest.mark.parametrize("user_agent", [CHROME, SAFARI_IPHONE, OUTLOOK, APPLE_MAIL, CUBOT_PHONE])
@pytest.mark.parametrize("make", [open_event, click_event])
def test_a_real_client_from_a_residential_ip_is_human(make, user_agent):
    assert classify(make(user_agent=user_agent)) == Verdict("human", "no machine signal")


def test_a_followed_honeypot_link_is_a_scanner_whatever_else_it_looks_like():
    verdict = classify(click_event(honeypot=True, ip="17.58.1.2", user_agent=SAFARI_IPHONE))

    assert verdict == Verdict("scanner", "honeypot link followed")


@pytest.mark.parametrize("make", [open_event, click_event])
def test_a_head_request_is_a_scanner(make):
    assert classify(make(method="head")) == Verdict("scanner", "HEAD request")


def test_the_head_rule_comes_before_the_crawler_rule():
    assert classify(open_event(method="HEAD", user_agent=GOOGLEBOT)).reason == "HEAD request"


def test_clicking_several_links_within_one_second_is_a_scanner():
    verdict = classify(click_event(links_clicked_same_second=3))

    assert verdict == Verdict("scanner", "clicked 3 links within one second")


def test_a_click_seconds_after_delivery_is_a_scanner():
    verdict = classify(click_event(seconds_since_delivery=2.14))

    assert verdict == Verdict("scanner", "clicked 2.1 s after delivery")


def test_a_click_after_the_scanner_window_is_human():
    assert classify(click_event(seconds_since_delivery=10.0)).label == Label.HUMAN


def test_the_scanner_window_is_adjustable():
    facts = click_event(seconds_since_delivery=20.0)

    assert classify(facts, scanner_window_seconds=30).label == Label.SCANNER
    assert classify(facts, scanner_window_seconds=5).label == Label.HUMAN


def test_a_click_with_an_unknown_delivery_time_is_not_judged_by_timing():
    assert classify(click_event(seconds_since_delivery=None)).label == Label.HUMAN


def test_timing_and_bursts_only_apply_to_clicks():
    facts = open_event(seconds_since_delivery=1.0, links_clicked_same_second=5)

    assert classify(facts).label == Label.HUMAN


@pytest.mark.parametrize(
    ("user_agent", "vendor"),
    [
        ("Barracuda Sentinel (EE)", "Barracuda"),
        ("Mozilla/5.0 (compatible; Mimecast URL Protect)", "Mimecast"),
        ("Proofpoint URL Defense/1.0", "Proofpoint"),
        ("Microsoft Office Existence Discovery", "Microsoft Office link check"),
        ("Cisco-IronPort-WSA/11.8", "Cisco IronPort"),
        ("Mozilla/5.0 TrendMicro Email Security", "Trend Micro"),
    ],
)
def test_a_known_security_gateway_is_a_scanner(user_agent, vendor):
    verdict = classify(open_event(user_agent=user_agent))

    assert verdict == Verdict("scanner", f"known scanner: {vendor}")


def test_a_bare_user_agent_open_from_apples_network_is_mail_privacy_protection():
    verdict = classify(open_event(user_agent="Mozilla/5.0", ip="17.58.63.10"))

    assert verdict == Verdict(
        "apple_mpp", "Apple Mail Privacy Protection user agent from Apple's network"
    )


def test_a_bare_user_agent_open_elsewhere_is_still_mail_privacy_protection():
    verdict = classify(open_event(user_agent="Mozilla/5.0"))

    assert verdict == Verdict("apple_mpp", "Apple Mail Privacy Protection user agent")


def test_a_bare_user_agent_click_is_a_bot():
    verdict = classify(click_event(user_agent="Mozilla/5.0", ip="17.58.63.10"))

    assert verdict == Verdict("bot", "bare Mozilla/5.0 user agent on a click")


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        (GMAIL_PROXY, "Gmail image proxy (GoogleImageProxy)"),
        (YAHOO_PROXY, "Yahoo Mail image proxy (YahooMailProxy)"),
    ],
)
def test_a_mail_providers_image_proxy_is_labelled_as_such(user_agent, reason):
    assert classify(open_event(user_agent=user_agent)) == Verdict("image_proxy", reason)


def test_the_image_proxy_rule_comes_before_the_data_centre_rule():
    verdict = classify(open_event(user_agent=GMAIL_PROXY, ip="34.100.1.1"))

    assert verdict.label == Label.IMAGE_PROXY


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        (GOOGLEBOT, "crawler user agent: Googlebot"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "crawler user agent: Googlebot"),
        (
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "crawler user agent: AhrefsBot",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 (compatible; ExampleFetcher/1.0; +https://fetch.example)",
            "crawler user agent: fetch.example",
        ),
        ("", "empty user agent"),
        ("   ", "empty user agent"),
    ],
)
def test_a_crawler_is_a_bot_named_by_its_user_agent(user_agent, reason):
    assert classify(click_event(user_agent=user_agent)) == Verdict("bot", reason)


@pytest.mark.parametrize(
    ("user_agent", "library"),
    [
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32.3", "python-requests"),
        ("Go-http-client/1.1", "Go-http-client"),
        ("okhttp/4.12.0", "okhttp"),
        ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "Apache-HttpClient"),
        ("Java/17.0.2", "Java"),
        ("axios/1.6.8", "axios"),
        ("node", "node"),
        ("Faraday v2.9.0", "Faraday"),
        ("Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230901.001)", "Dalvik"),
    ],
)
def test_an_http_library_is_a_bot(user_agent, library):
    assert classify(open_event(user_agent=user_agent)) == Verdict("bot", f"HTTP library: {library}")


@pytest.mark.parametrize(
    "user_agent", ["test", "Foo/1.0", "Mozilla/5.0 (compatible; Acme/2.0)", "Mozilla/4.0"]
)
def test_a_user_agent_of_no_known_client_is_a_bot(user_agent):
    assert classify(open_event(user_agent=user_agent)) == Verdict("bot", "no known client")


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/124.0.0.0 Safari/537.36",
            "headless browser: HeadlessChrome",
        ),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
            "PhantomJS/2.1.1 Safari/538.1",
            "headless browser: PhantomJS",
        ),
    ],
)
def test_a_browser_driven_by_a_program_is_a_bot(user_agent, reason):
    assert classify(click_event(user_agent=user_agent)) == Verdict("bot", reason)


@pytest.mark.parametrize(
    "probe",
    [
        "${jndi:ldap://203.0.113.9/a}",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "1 or 1=1",
        "%24%7Bjndi:ldap://x%7D",
        "() { :; }; /bin/bash -c id",
        "../../../../etc/passwd",
    ],
)
def test_an_injection_probe_is_a_bot_even_inside_a_browsers_user_agent(probe):
    for user_agent in (probe, f"{CHROME} {probe}", f"Mozilla/5.0 ({probe}) Gecko/20100101"):
        verdict = classify(open_event(user_agent=user_agent))

        assert verdict == Verdict("bot", "injection probe in user agent"), user_agent


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0",
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
        "Outlook-iOS/709.2189123.prod.iphone (4.2408.0)",
        "Outlook-Android/2.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        "eM Client/9.2.2054.0",
        "Airmail/5.7.2 (Macintosh; macOS 14.4)",
        "Mailbird/3.0.6.0",
        "Spark/3.14.1 (iPhone; iOS 17.4)",
        "YahooMobileMail/1.0 (Android Mail; 7.40.1)",
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
        "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
    ],
)
def test_a_mail_client_browser_engine_or_web_view_is_human(user_agent):
    assert classify(open_event(user_agent=user_agent)) == Verdict("human", "no machine signal")


def test_a_crawler_pattern_that_also_matches_people_is_left_out():
    android_15 = (
        "Mozilla/5.0 (Linux; Android 15; CPH2581 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.135 Mobile Safari/537.36"
    )
    judge = UserAgentJudge([r"AP3A\.240617\.008", "Slurp"])

    assert judge.machine_reason(android_15) is None
    assert judge.machine_reason(f"{android_15} Slurp") == "crawler user agent: Slurp"


def test_the_crawler_search_finds_what_the_packages_patterns_find():
    patterns = [entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA]
    one_alternation = re.compile("|".join(f"(?:{pattern})" for pattern in patterns))
    searches = _crawler_searches(patterns)
    samples = [i for entry in CRAWLER_USER_AGENTS_DATA for i in entry.get("instances", [])]

    for user_agent in [*samples, CHROME, SAFARI_IPHONE, OUTLOOK, APPLE_MAIL, "curl/8.5.0"]:
        found = any(search(user_agent) for search in searches)
        assert found == bool(one_alternation.search(user_agent)), user_agent


def test_the_package_patterns_name_a_crawler_the_generic_rules_miss():
    dareboost = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/62.0.3202.75 Safari/537.36 DareBoost"
    )

    assert UserAgentJudge([]).machine_reason(dareboost) is None
    assert user_agent_judge().machine_reason(dareboost) == "crawler user agent: DareBoost"


@pytest.mark.parametrize(
    ("ip", "provider"),
    [
        ("3.91.10.20", "Amazon AWS"),
        ("::ffff:3.91.10.20", "Amazon AWS"),
        ("2600:1f18:aaaa::1", "Amazon AWS"),
        ("40.94.1.1", "Microsoft Azure"),
        ("35.186.1.1", "Google Cloud"),
        ("159.203.10.10", "DigitalOcean"),
    ],
)
def test_a_data_centre_address_is_a_scanner(ip, provider):
    verdict = classify(click_event(ip=ip))

    assert verdict == Verdict("scanner", f"data-centre address ({provider})")


def test_a_named_scanner_in_a_data_centre_is_reported_by_name():
    verdict = classify(click_event(user_agent="Barracuda", ip="3.91.10.20"))

    assert verdict.reason == "known scanner: Barracuda"


def test_a_missing_or_garbled_ip_is_no_evidence():
    for ip in ["", "unknown", "999.1.1.1"]:
        assert classify(click_event(ip=ip)).label == Label.HUMAN


def test_describe_client_names_device_os_and_browser():
    assert describe_client(SAFARI_IPHONE) == Client(
        device="iPhone", os="iOS", browser="Mobile Safari"
    )


def test_describe_client_says_other_for_what_it_does_not_know():
    assert describe_client("") == Client(device="Other", os="Other", browser="Other")


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:1234:5678:9abc:def0:1234:5678", "2001:db8:1234::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
        (" 203.0.113.77 ", "203.0.113.0"),
        ("", ""),
        ("not an ip", ""),
        ("203.0.113", ""),
        ("203.0.113.0/24", ""),
    ],
)
def test_truncate_ip_keeps_only_the_network_part(ip, truncated):
    assert truncate_ip(ip) == truncated


def test_the_data_centre_prefixes_do_not_overlap():
    networks = [
        ipaddress.ip_network(prefix) for _, prefixes in DATA_CENTRE_PREFIXES for prefix in prefixes
    ]

    for index, network in enumerate(networks):
        for other in networks[index + 1 :]:
            assert not network.overlaps(other), (network, other)
