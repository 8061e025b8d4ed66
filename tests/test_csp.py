"""The Content-Security-Policy: every page sends it, and nothing in the app needs inline script."""

import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from campaigns.models import Campaign
from crm.models import EmailTemplate
from crm.sending import email_send
from tests.conftest import REPO_ROOT

# A sample value for each URL parameter that is not a record's pk.
SAMPLES = {"kind": "contact", "token": "not-a-token", "key": "sent", "object_id": "1"}
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.DOTALL)
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def routes(patterns: list, prefix: str = "") -> Iterator[str]:
    """Every URL route as written (admin included); regex routes with groups are left out."""
    for pattern in patterns:
        route = str(pattern.pattern)
        if not isinstance(pattern.pattern, RoutePattern):
            if "(" in route:
                continue
            route = route.lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern):
            yield prefix + route


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_the_policy(response) -> None:
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]


@pytest.fixture
def records(admin_user, make_account, make_contact, make_lead, make_opportunity, make_task):
    """One record of each kind, owned by the admin; a pk for each URL prefix."""
    account = make_account(owner=admin_user)
    contact = make_contact(account=account, owner=admin_user)
    email = email_send(sender=admin_user, to=[contact], subject="Hi", html_body="<p>Hi</p>")
    campaign = Campaign.objects.create(name="Spring", owner=admin_user)
    return {
        "accounts": account.pk,
        "contacts": contact.pk,
        "contact": contact.pk,
        "leads": make_lead(owner=admin_user).pk,
        "opportunities": make_opportunity(account=account, owner=admin_user).pk,
        "tasks": make_task(who_contact=contact, owner=admin_user).pk,
        "emails": email.pk,
        "recipients": email.relations.first().pk,
        "campaigns": campaign.pk,
    }


def sample_path(route: str, pks: dict[str, int]) -> str:
    """The route with its parameters filled: a pk is the record's named by the part before."""
    filled: list[str] = []
    for part in route.split("/"):
        match = PARAMETER.fullmatch(part)
        if match and match.group(2) in SAMPLES:
            part = SAMPLES[match.group(2)]
        elif match:
            part = str(pks.get(filled[-1], 1) if filled else 1)
        filled.append(part)
    return "/" + "/".join(filled)


def test_every_page_sends_the_policy_without_inline_script(client_for, admin_user, records) -> None:
    admin_user.is_superuser = True  # every admin page too
    admin_user.save(update_fields=["is_superuser"])
    client = client_for(admin_user)
    answered = []

    for route in routes(get_resolver().url_patterns):
        if route.startswith("anymail/"):
            continue  # ESP webhooks: machine endpoints, POST only, no page
        path = sample_path(route, records)
        response = client.get(path)
        assert_the_policy(response)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            html = response.content.decode()
            assert not INLINE_SCRIPT.search(html), path
            assert not HANDLER.search(html), path
            answered.append(path)

    # The walk reached real pages: the record pages, Reports, the admin's lists and forms.
    assert len(answered) > 60
    assert {"/contacts/", "/reports/dashboard/", "/admin/", "/security/"} <= set(answered)
    assert "/admin/crm/contact/add/" in answered


def test_pages_without_a_login_send_it_too(client, rep) -> None:
    assert_the_policy(client.get(reverse("login")))
    assert_the_policy(client.get("/no-such-page/"))
    for _ in range(5):
        locked = client.post(reverse("login"), {"username": "rita", "password": "nope"})
    assert locked.status_code == 429
    assert_the_policy(locked)


def test_email_content_may_show_data_and_https_images_and_inline_styles(client_for, rep) -> None:
    policy = directives(client_for(rep).get(reverse("home"))["Content-Security-Policy"])

    assert policy["img-src"] == ["'self'", "data:", "https:"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]


def test_no_template_holds_inline_script_or_event_handlers() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER, re.compile(r"javascript:", re.IGNORECASE)):
            offenders += [
                f"{path.relative_to(REPO_ROOT)}: {m.group(0)}" for m in pattern.finditer(text)
            ]

    assert offenders == []


def test_the_template_check_would_catch_inline_script() -> None:
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert HANDLER.search('<img src="x" onerror="alert(1)">')
    assert not INLINE_SCRIPT.search('<script src="/static/js/a.js"></script>')
    assert not INLINE_SCRIPT.search('<script id="d" type="application/json">{}</script>')
    assert not HANDLER.search("<p>Turn on two-factor = safer</p>")


def test_the_email_templates_page_in_the_admin_has_no_inline_script(client_for, admin_user) -> None:
    template = EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi</p>")
    client = client_for(admin_user)

    response = client.get(reverse("admin:crm_emailtemplate_change", args=[template.pk]))

    assert response.status_code == 200
    assert not INLINE_SCRIPT.search(response.content.decode())
    assert_the_policy(response)
