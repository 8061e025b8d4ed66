"""Every URL of the project, as each role, with hostile query strings and form data: none
answers a server error (5xx).

The routes are read from the URL resolver, so a page is covered as soon as it is added; each
path is filled with real objects of a small world made per test (an account, a contact, a lead,
an opportunity, tasks, an email with its recipient, a campaign with members and a list email).
Every request runs in a savepoint that is rolled back, so a delete or a logout leaves the world
as it was for the next one.

Per page and role, after a plain GET: the list's own parameters (page size, page, sort keys);
each hostile value in every name at once (the names of the page's forms and links, and those
our views read from the query string); each search bomb in one text box at a time (so the rest
of the form stays valid and the search runs); each path parameter hostile in turn; and, where a
form posts back to the page, an empty POST and the hostile values in every name. A page that
sends the role away before reading anything (a redirect, 403 or 404) gets a sample.

Not covered here: the tracking fast path /t/ (WSGI in front of Django; tests/tracking fuzzes
it) and the admin's unnamed catch-all pattern. The admin site is walked one model per test.
"""

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.files.base import ContentFile
from django.db import connection, models, transaction
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from campaigns.forms import MemberStatusFormSet
from campaigns.list_email import list_email_create
from campaigns.members import members_add
from campaigns.models import Campaign
from crm.models import Contact, Task, User
from crm.sending import email_send
from dataprotection.models import DataRequest
from imports.uploads import upload_receive
from webhooks.events import sample_delivery_add
from webhooks.models import Endpoint

ROLES = ("anonymous", "rep", "manager", "admin")
REPO = str(Path(__file__).resolve().parent.parent)

# What our views read from the query string or a POST besides their forms' fields (those are
# found on the page): lists, the timeline's "Load more", links between pages, POST-only views.
COMMON_NAMES = (
    "page",
    "per_page",
    "sort",
    "q",
    "before",
    "month",
    "show",
    "start",
    "end",
    "rep",
    "campaign",
    "account",
    "email",
    "chart",
    "model",
    "kind",
    "scope",
    "query",
    "select",
    "action",
    "status",
    "next",
    "who_contact",
    "who_lead",
    "what_account",
    "what_opportunity",
    "List-Unsubscribe",
)
# The admin's changelist refuses a name it does not know (it redirects), so only its own.
ADMIN_NAMES = ("q", "p", "o", "all", "_to_field", "_popup", "_changelist_filters")
# Parameters a page needs before it reads the others (without them it answers 404).
SEEDS: dict[str, dict[str, str]] = {"campaigns:members_add": {"kind": "contact"}}

HUGE = "99999999999999999999"
LIST_CASES = [
    ("per_page=-1, page not a number", "per_page=-1&page=abc"),
    ("per_page=100000, page huge", f"per_page=100000&page={HUGE}"),
    ("unknown sort keys", "sort=__class__&sort=-nonexistent&sort=password&sort=-&sort="),
]
ADMIN_LIST_CASES = [
    ("p=-1, unknown o", "p=-1&o=__class__.-99.x"),
    ("p huge, all", f"p={HUGE}&all="),
]
# One value per kind, sent in every name at once (a form refuses them as a whole).
VALUES = [
    ("-1", "-1"),
    ("huge", HUGE),
    ("superscript digits", "²³"),  # str.isdigit() says yes, int() says no
    ("NUL", "a\x00b"),
    ("RTL marks and emoji", "\u202eevil\u200f 😀 \ufeff"),
]
# Sent in one text box at a time, so the rest of the form stays valid and the search runs.
SEARCHES = [
    ("1,000 words", " ".join(f"word{n}" for n in range(1000))),
    ("one 100,000-character word", "9" * 100_000),
]
LONE_SURROGATE = "%ED%A0%80"  # percent-encoded, so the bytes reach Django undecoded


def _every(names: list[str], value: str, seed: dict[str, str]) -> str:
    # Django builds up to 2,000 forms for a huge formset count, whatever the formset: slow,
    # not broken (test_formsets_are_bounded checks our formsets' own bounds).
    if value == HUGE:
        names = [name for name in names if not name.endswith("_FORMS")]
    return urlencode([*seed.items(), *((name, value) for name in names)])


def _hostile(
    names: list[str], seed: dict[str, str], values: list[tuple[str, str]] = VALUES
) -> list[tuple[str, str]]:
    """(what, data): each hostile value in every name at once."""
    return [
        *((f"every name {what}", _every(names, value, seed)) for what, value in values),
        (
            "every name a lone surrogate",
            "&".join([urlencode(seed), *(f"{quote(n)}={LONE_SURROGATE}" for n in names)]),
        ),
        (
            "every name repeated",
            urlencode([*seed.items(), *((n, v) for n in names for v in ("1", "x", ""))]),
        ),
    ]


# Routes


@dataclass(frozen=True)
class Route:
    template: str  # as the resolver spells it: "campaigns/<int:pk>/"
    name: str  # namespaced: "campaigns:campaign_detail"
    converters: tuple[tuple[str, str], ...]  # (parameter, converter class name)
    admin_model: type[models.Model] | None  # for the admin's object_id

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin:")


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            converters = getattr(pattern.pattern, "converters", {})
            model_admin = getattr(pattern.callback, "model_admin", None)
            yield Route(
                template=prefix + str(pattern.pattern),
                name=namespace + pattern.name,
                converters=tuple(
                    (name, type(converters[name]).__name__ if name in converters else "regex")
                    for name in pattern.pattern.regex.groupindex
                ),
                admin_model=model_admin.model if model_admin else None,
            )


ROUTES = list({route.template: route for route in _walk(get_resolver().url_patterns)}.values())


def _groups() -> dict[str, list[Route]]:
    """A test's routes: one page each, but the admin one model at a time."""
    groups: dict[str, list[Route]] = {}
    for route in ROUTES:
        if route.is_admin:
            model = route.admin_model
            key = f"admin {model._meta.label_lower}" if model else "admin site"
        else:
            key = f"/{route.template}"
        groups.setdefault(key, []).append(route)
    return groups


@dataclass(frozen=True)
class Known:
    """A server error found in code this test's author does not own, for its owner to fix:
    the walk leaves these cases out, and test_known_server_errors_are_still_there (strict
    xfail) visits `example` until the fix makes it pass, when the entry is to be removed."""

    routes: str  # a glob over route templates
    roles: tuple[str, ...]
    whats: tuple[str, ...]  # the cases, as the walk names them
    example: str  # the route template the xfail test visits
    reason: str
    vendors: tuple[str, ...] = ("sqlite", "postgresql")  # the databases it fails on

    def covers(self, route: Route, role: str, what: str) -> bool:
        return (
            connection.vendor in self.vendors
            and fnmatch(route.template, self.routes)
            and role in self.roles
            and what in self.whats
        )


KNOWN: list[Known] = []


# The world


@dataclass
class World:
    users: dict[str, User | None]
    objects: dict[str, models.Model]
    token: str

    def path_values(self, route: Route) -> dict[str, Any]:
        return {name: self._value(route, name, kind) for name, kind in route.converters}

    def _value(self, route: Route, name: str, converter: str) -> Any:
        app, _, view = route.name.rpartition(":")
        if route.admin_model is not None and name == "object_id":
            first = route.admin_model._default_manager.order_by("pk").first()
            return first.pk if first else 1
        by_name: dict[str, Any] = {
            "token": self.token,
            "kind": "contact",
            "key": "sent",
            "app_label": "crm",
            "email_pk": self.objects["list_email"].pk,
            "content_type_id": ContentType.objects.get_for_model(Contact).pk,
            "object_id": self.objects["contact"].pk,  # the admin's "view on site"
            "id": self.objects["rep"].pk,
        }
        if name in by_name:
            return by_name[name]
        if name == "pk":
            if app == "campaigns":
                return self.objects["campaign"].pk
            if app == "webhooks":
                return self.objects["delivery" if view == "delivery_detail" else "endpoint"].pk
            if app == "imports":
                return self.objects["import"].pk
            if app == "dataprotection" and view.startswith("request"):
                return self.objects["request"].pk
            if view in {"email_detail", "relation_activity"}:
                return self.objects[{"email_detail": "email"}.get(view, "relation")].pk
            record = view.split("_")[0]
            # A record's own pages; the timeline's (kind=contact) and any other: the contact.
            return self.objects.get(record, self.objects["contact"]).pk
        return 1 if converter == "IntConverter" else "x"


@pytest.fixture
def world(
    rep,
    manager,
    admin_user,
    make_account,
    make_contact,
    make_lead,
    make_opportunity,
    make_task,
    django_capture_on_commit_callbacks,
) -> World:
    account = make_account()
    contact = make_contact(account=account)
    lead = make_lead()
    campaign = Campaign.objects.create(name="Spring launch", owner=rep)
    opportunity = make_opportunity(account=account, campaign=campaign)
    task = make_task(who_contact=contact, what_opportunity=opportunity)
    make_task(subject="Gone quiet", kind=Task.Kind.FOLLOW_UP, who_contact=contact)
    members_add(campaign=campaign, contact_ids=[contact.pk], lead_ids=[lead.pk])
    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(
            sender=rep,
            to=[contact],
            subject="Pricing",
            html_body='<p>See <a href="https://example.com/pricing">pricing</a></p>',
        )
        list_email = list_email_create(
            campaign=campaign,
            sender=rep,
            subject="News",
            html_body="<p>Hello</p>",
            members=campaign.members.all(),
        )
    header = next(m.extra_headers["List-Unsubscribe"] for m in mail.outbox if m.subject == "News")
    token = header.split(",")[0].strip("<> ").rstrip("/").rpartition("/")[2]
    endpoint = Endpoint.objects.create(
        name="Sync", url="https://hooks.example.com/in", events=["email.sent"], owner=admin_user
    )
    return World(
        users={"anonymous": None, "rep": rep, "manager": manager, "admin": admin_user},
        objects={
            "rep": rep,
            "account": account,
            "contact": contact,
            "lead": lead,
            "opportunity": opportunity,
            "task": task,
            "campaign": campaign,
            "email": email,
            "relation": email.relations.get(contact=contact),
            "list_email": list_email,
            "endpoint": endpoint,
            "delivery": sample_delivery_add(endpoint),
            "import": upload_receive(
                file=ContentFile(b"First Name,Last Name,Email\nAda,Byron,a@example.com\n", "a.csv"),
                kind="contact",
                user=manager,
            ),
            "request": DataRequest.objects.create(
                kind=DataRequest.Kind.EXPORT,
                contact=contact,
                subject=f"Contact #{contact.pk}",
                requested_by=admin_user,
            ),
        },
        token=token,
    )


# Requests


class _Page(HTMLParser):
    """The names a page's forms and links send back to it, and whether a form posts to it."""

    TEXT_TYPES = frozenset({"text", "search", "email", "url"})

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.get_names: set[str] = set()
        self.post_names: set[str] = set()
        self.text_names: set[str] = set()  # text boxes of the forms that GET this page
        self.posts_here = False
        self._form: tuple[str, bool] | None = None  # (method, sent to this page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        name = found.get("name", "")
        if tag == "form":
            method = found.get("method", "get").lower()
            here = found.get("action", "").split("?")[0] in {"", self.path}
            self._form = (method, here)
            self.posts_here |= method == "post" and here
        elif tag == "a" and found.get("href", "").startswith(("?", f"{self.path}?")):
            self.get_names.update(parse_qs(found["href"].partition("?")[2]))
        elif tag in {"input", "select", "textarea", "button"} and name:
            method, here = self._form or ("get", True)
            if not here:
                return
            if method == "post":
                self.post_names.add(name)
                return
            self.get_names.add(name)
            if tag == "textarea" or found.get("type", "text").lower() in self.TEXT_TYPES:
                self.text_names.add(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _summary(error: BaseException) -> str:
    """The exception and the deepest frame of the project's code it went through."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if "/.venv/" not in frame.filename and "/tests/" not in frame.filename
    ]
    where = ""
    if frames:
        where = f" at {frames[-1].filename.removeprefix(REPO + '/')}:{frames[-1].lineno}"
    return f"{type(error).__name__}: {str(error)[:160]!r}{where}"


@dataclass
class Visitor:
    """One role's client; each request is rolled back."""

    client: Client
    session: str | None

    @classmethod
    def login(cls, user: User | None) -> "Visitor":
        client = Client()
        if user is None:
            return cls(client, None)
        client.force_login(user)
        return cls(client, client.cookies[settings.SESSION_COOKIE_NAME].value)

    def request(self, method: str, path: str, data: str) -> tuple[Any, str | None]:
        """The response and, if it was a server error, what went wrong."""
        if self.session is not None:  # a logout would have taken the cookie away
            self.client.cookies[settings.SESSION_COOKIE_NAME] = self.session
        try:
            with transaction.atomic():
                if method == "GET":
                    response = self.client.get(f"{path}?{data}" if data else path)
                else:
                    response = self.client.generic(
                        "POST", path, data, content_type="application/x-www-form-urlencoded"
                    )
                if response.streaming:  # a download fails, if it does, as it is read
                    b"".join(response.streaming_content)
                transaction.set_rollback(True)
        except Exception as error:
            return None, _summary(error)
        if response.status_code >= 500:
            return response, f"answered {response.status_code}"
        return response, None


def _cases(route: Route, path: str, response: Any) -> list[tuple[str, str, str]]:
    """(method, what, data): the hostile requests for a page, given its plain GET."""
    page = _Page(path)
    is_html = response["Content-Type"].startswith("text/html")
    if is_html:
        page.feed(response.content.decode(errors="replace"))
    seed = SEEDS.get(route.name, {})
    common = ADMIN_NAMES if route.is_admin else COMMON_NAMES
    gets = sorted((page.get_names | set(common)) - set(seed))
    posts = sorted((page.post_names | set(common)) - set(seed) - {"csrfmiddlewaretoken"})
    # The admin is Django's: a sample of the values is enough to find what our admins add.
    values = VALUES[1:4] if route.is_admin else VALUES
    if response.status_code in {301, 302, 403, 404}:
        # Sent away before the view reads anything: a sample will do.
        return [("GET", *_hostile(gets, seed, VALUES[1:2])[0]), ("POST", "empty POST", "")]
    cases = [("GET", what, query) for what, query in _hostile(gets, seed, values)]
    is_list = response.context is not None and "table" in response.context
    if is_list or route.is_admin:
        cases += [("GET", *case) for case in (ADMIN_LIST_CASES if route.is_admin else LIST_CASES)]
    # A list's search box, or a download's (the email log's CSV reads the page's filters).
    for name in sorted(page.text_names | ({"q"} if is_list or not is_html else set())):
        for what, text in SEARCHES:
            cases.append(("GET", f"{name}={what}", urlencode({**seed, name: text})))
    if page.posts_here or response.status_code == 405:
        cases.append(("POST", "empty POST", urlencode(seed)))
        cases += [("POST", f"POST {what}", body) for what, body in _hostile(posts, seed, values)]
        if not route.is_admin:
            what, words = SEARCHES[0]
            cases.append(("POST", f"POST every name {what}", _every(posts, words, seed)))
    return cases


def _hostile_paths(route: Route, world: World) -> Iterator[tuple[str, str]]:
    """(what, path): each of the route's own parameters hostile in turn."""
    values = world.path_values(route)
    hostile = {"IntConverter": [HUGE], "StringConverter": ["a\x00b", "\u202e😀", "x" * 2000]}
    for name, converter in route.converters:
        for value in hostile.get(converter, ["-" * 300]):
            try:
                yield (
                    f"path {name}={value[:12]!r}",
                    reverse(route.name, kwargs={**values, name: value}),
                )
            except NoReverseMatch:
                continue


def _visit(route: Route, role: str, world: World, only: str | None = None) -> list[str]:
    """Every case of `route` as `role` but the known ones (or only the one named `only`): what
    answered a server error."""
    path = reverse(route.name, kwargs=world.path_values(route))
    visitor = Visitor.login(world.users[role])
    failures = []

    def wanted(what: str) -> bool:
        if only:
            return what == only
        return not any(known.covers(route, role, what) for known in KNOWN)

    def run(method: str, what: str, url: str, data: str) -> Any:
        response, error = visitor.request(method, url, data)
        if error is not None and wanted(what):
            failures.append(f"{method} /{route.template} as {role}, {what}: {error}")
        return response

    seed = urlencode(SEEDS.get(route.name, {}))
    response = run("GET", "plain GET", path, seed)
    for method, what, data in _cases(route, path, response) if response is not None else []:
        if wanted(what):
            run(method, what, path, data)
    for what, hostile_path in _hostile_paths(route, world):
        if wanted(what):
            run("GET", what, hostile_path, seed)
    return failures


@pytest.mark.parametrize("routes", list(_groups().values()), ids=list(_groups()))
def test_no_page_answers_a_server_error_to_hostile_parameters(
    routes: list[Route], world: World
) -> None:
    # A model's admin pages send every other role to the admin's login before reading anything
    # (the "admin site" group, /admin/ itself included, is visited by every role).
    roles = ("admin",) if routes[0].admin_model else ROLES
    failures = []
    for route in routes:
        for role in roles:
            failures += _visit(route, role, world)

    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


def _known() -> Iterator[Any]:
    by_template = {route.template: route for route in ROUTES}
    for known in KNOWN:
        if connection.vendor not in known.vendors:
            continue
        for role in known.roles:
            for what in known.whats:
                yield pytest.param(
                    by_template[known.example],
                    role,
                    what,
                    id=f"/{known.example} as {role}, {what}",
                    marks=pytest.mark.xfail(strict=True, reason=known.reason),
                )


@pytest.mark.parametrize(("route", "role", "what"), _known())
def test_known_server_errors_are_still_there(
    route: Route, role: str, what: str, world: World
) -> None:
    failures = _visit(route, role, world, only=what)

    assert not failures, "\n".join(failures)


def test_the_walk_finds_the_projects_pages() -> None:
    names = {route.name for route in ROUTES}

    assert {"crm:contact_list", "reports:email_log", "campaigns:campaign_detail"} <= names
    assert any(route.admin_model is Contact for route in ROUTES)


def test_formsets_are_bounded() -> None:
    """A formset builds at most a page of forms, whatever its management form says."""
    assert MemberStatusFormSet.absolute_max <= 100
