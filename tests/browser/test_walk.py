"""A walk over every page a GET renders, as each role, on a laptop and on a phone.

The pages come from the URL conf, so a page added later is walked too; a named URL that is not
a page (POST only, a fragment, a CSV, a machine endpoint) is in SKIP with the reason. Each page
fails the walk on a console error, on content wider than the window (the page scrolls
sideways, or the main container overflows), or on template text a user should never read.
Screenshots land in test-output/browser/walk/ (gitignored) for a person to look over.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from automation.models import Enrolment, Rule, Sequence, Step
from campaigns.list_email import list_email_create
from campaigns.models import Campaign, ListEmail, ListEmailRecipient
from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    EmailTemplate,
    Lead,
    Opportunity,
    Task,
    User,
)
from crm.scheduling import scheduled_email_create
from crm.tokens import token_for
from dataprotection.models import DataRequest
from imports.uploads import upload_receive
from mailkit.tokens import Purpose
from tests.browser.conftest import REAL_BROWSER, REPORT_CSP_VIOLATIONS, ConsoleErrors, log_in
from webhooks.events import sample_delivery_add
from webhooks.models import Endpoint

pytestmark = [pytest.mark.browser, pytest.mark.services]

VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# The demo's users (seed_demo), one per role.
ROLES = {
    "rep": ("ada", "openrate-rep"),
    "manager": ("manager", "openrate-manager"),
    "admin": ("admin", "openrate-admin"),
}
# Named URLs the walk leaves out, each with why. A name here that no longer exists fails
# test_the_walk_covers_every_page, so the list cannot go stale.
SKIP = {
    "logout": "POST only: it ends the session the walk runs in",
    "login": "a signed-in user is sent on from it; walked signed out instead",
    "login_code": "needs a password step first (a pending two-factor login); else it redirects",
    "unsubscribe": "no login; walked signed out instead",
    "crm:security_enrol": "POST only: turns two-factor on",
    "crm:security_disable": "POST only: turns two-factor off",
    "crm:security_time_zone": "POST only: sets the user's time zone",
    "crm:task_complete": "POST only: marks a task done",
    "crm:log_call": "POST only: logs a call",
    "crm:person_privacy": "POST only: changes a person's privacy flags",
    "crm:timeline": "a fragment (the next page of a timeline) the record page appends",
    "tracking:relation_activity": "a fragment the timeline opens inside a record page",
    "campaigns:members_bulk": "POST only: changes members",
    "campaigns:list_email_progress": "JSON the list email page polls",
    "reports:chart_csv": "a CSV download",
    "reports:email_log_csv": "a CSV download",
    "dataprotection:audit_csv": "a CSV download",
    "dataprotection:request_progress": "JSON the data request page polls",
    "dataprotection:request_download": "a ZIP download",
    "webhooks:endpoint_disable": "POST only: disables an endpoint",
    "webhooks:endpoint_enable": "POST only: enables an endpoint",
    "webhooks:endpoint_test": "POST only: sends a test event",
    "imports:start": "POST only: starts an import",
    "imports:progress": "JSON the import page polls",
    "imports:errors_csv": "a CSV download",
    "api:schema": "the OpenAPI description, YAML for programs",
    "api:token_revoke": "a confirmation for the user's own token (tests/api/test_tokens.py)",
    "capture:folders": "POST only: saves the mailbox's folders",
    "capture:sync": "POST only: queues a sync of the user's mailbox",
    "capture:resume": "POST only: resumes a paused mailbox",
    "automation:sequence_archive": "POST only: archives or activates a sequence",
    "crm:template_clone": "POST only: copies a template",
    "crm:template_archive": "POST only: archives or restores a template",
    "automation:enrolment_pause": "POST only: pauses an enrolment",
    "automation:enrolment_resume": "POST only: resumes an enrolment",
}
# Whole namespaces left out.
SKIP_NAMESPACES = {
    "admin": "Django's admin: its own templates and styles, walked for scripts by test_console",
    "anymail": "ESP webhooks: machine endpoints, POST only",
}
# A card header that counts what its card lists ("25 contacts") names no card.
COUNTED = re.compile(r"^\d")
SIGNED_OUT = ("login", "unsubscribe")
# The query string a page needs to show what it is for.
QUERIES = {
    "campaigns:members_add": "kind=contact&scope=all",
    "automation:enrol": "kind=contact&scope=all",
}


@dataclass(frozen=True)
class Known:
    """A finding in a file this test's author does not own, for its owner to fix: the walk
    leaves it out while it is there, and fails once it is gone (remove the entry then)."""

    pages: tuple[str, ...]  # URL names
    finding: str  # a regular expression over the finding's text
    roles: tuple[str, ...]
    file: str  # where the fix goes
    steady: bool = True  # False: shown with some data only, so its absence proves no fix

    def covers(self, role: str, page: str, finding: str) -> bool:
        return role in self.roles and page in self.pages and bool(re.search(self.finding, finding))


_RECORDS = tuple(f"crm:{kind}_detail" for kind in ("account", "contact", "lead", "opportunity"))
KNOWN = []

# Template syntax that reached the page ("{{ name }}", "{% if %}", a "{# comment #}" written
# over two lines, which Django does not read as one; merge fields, which the composer explains,
# are written without spaces), Python's None printed as a value (not the English word, which a
# lowercase word follows: "None yet"), and a form's untitled empty choice.
PLACEHOLDERS = re.compile(r"\{\{\s|\s\}\}|\{%|%\}|\{#|#\}|\bNone\b(?!\s+[a-z])|-{5,}")

INSPECT = """() => {
  const root = document.scrollingElement;
  const main = document.querySelector("main");
  const wide = [];
  if (main) {
    const right = main.getBoundingClientRect().right;
    for (const element of main.querySelectorAll("*")) {
      const box = element.getBoundingClientRect();
      if (box.width && box.right > right + 1 && !element.closest(".table-responsive, .overflow-auto")) {
        wide.push(`${element.tagName.toLowerCase()}.${[...element.classList].join(".")}`);
      }
    }
  }
  // A card's name: the first line of its header (buttons and filters follow it).
  const cards = [...document.querySelectorAll("main .card-header")].map(
    (header) => header.innerText.split("\\n")[0].trim()).filter((name) => name);
  // A table wider than its box scrolls inside it: fine on a phone, clipped columns on a laptop.
  const clipped = [...document.querySelectorAll("main .table-responsive")].filter(
    (box) => box.scrollWidth > box.clientWidth + 1).map((box) => box.scrollWidth - box.clientWidth);
  return {
    cards,
    clipped,
    page: [root.scrollWidth, root.clientWidth],
    main: main ? [main.scrollWidth, main.clientWidth] : [0, 0],
    wide: wide.slice(0, 3),
    // A select's options are part of its innerText: a user reads them when it opens.
    text: document.body.innerText,
  };
}"""


@dataclass(frozen=True)
class Page:
    name: str  # namespaced, as reverse() takes it
    parameters: tuple[str, ...]


def _named(patterns: list[Any], namespace: str = "") -> Iterator[Page]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _named(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            parameters = tuple(pattern.pattern.regex.groupindex)
            yield Page(name=namespace + pattern.name, parameters=parameters)


def _skipped(page: Page) -> str | None:
    namespace = page.name.partition(":")[0] if ":" in page.name else ""
    if namespace == "api" and "-" in page.name:
        return "a REST API endpoint (JSON): tests/api walk them with Schemathesis"
    return SKIP.get(page.name) or SKIP_NAMESPACES.get(namespace)


PAGES = list({page.name: page for page in _named(get_resolver().url_patterns)}.values())


def _world(rep: User) -> dict[str, Any]:
    """One record of each kind the rep owns (so every role may open it) and a list email."""
    email = EmailMessage.objects.filter(sender=rep).order_by("-message_date").first()
    assert email is not None
    campaign = Campaign.objects.filter(type=Campaign.Type.EMAIL).order_by("pk").first()
    assert campaign is not None
    list_email = list_email_create(
        campaign=campaign,
        sender=rep,
        subject="Spring news",
        html_body='<p>Hello {{first_name}}, <a href="https://example.com/spring">read more</a></p>',
        members=campaign.members.filter(
            pk__in=campaign.members.filter(contact__owner=rep).order_by("pk").values("pk")[:3]
        ),
    )
    sent = ListEmailRecipient.objects.filter(list_email=list_email, email__isnull=False).first()
    relation = EmailMessageRelation.objects.filter(email=sent.email).first() if sent else None
    admin = User.objects.get(username=ROLES["admin"][0])
    contact = Contact.objects.filter(owner=rep, email__gt="").order_by("pk").first()
    endpoint = Endpoint.objects.create(
        name="Sync", url="https://hooks.example.com/in", events=["email.sent"], owner=admin
    )
    # A manager's upload (a manager sees their own imports, an admin everyone's): mapping ready.
    import_job = upload_receive(
        file=ContentFile(b"First Name,Last Name,Email\nAda,Byron,ada@example.com\n", "people.csv"),
        kind="contact",
        user=User.objects.get(username=ROLES["manager"][0]),
    )
    sequence = Sequence.objects.create(name="Outreach", owner=admin)
    step = Step.objects.create(sequence=sequence, position=1, kind="task", task_kind="call")
    rule = Rule.objects.create(
        name="Welcome", trigger="lead_created", action="enrol", sequence=sequence
    )
    enrolment = Enrolment.objects.create(
        sequence=sequence, contact=contact, owner=rep, current_step=step
    )
    scheduled = scheduled_email_create(
        sender=rep,
        to=[contact.email],
        subject="Tomorrow's agenda",
        html_body="<p>Hello {{first_name}}, the agenda for tomorrow.</p>",
        send_at=timezone.now() + timedelta(days=1),
        person=contact,
    )
    return {
        "template": EmailTemplate.objects.filter(is_private=False).order_by("pk").first(),
        "scheduled": scheduled,
        "sequence": sequence,
        "step": step,
        "rule": rule,
        "enrolment": enrolment,
        "account": Account.objects.filter(owner=rep).order_by("pk").first(),
        "contact": contact,
        "forget": contact,
        "export": contact,
        "request": DataRequest.objects.create(
            kind=DataRequest.Kind.EXPORT, contact=contact, subject="Contact #1", requested_by=admin
        ),
        "endpoint": endpoint,
        "delivery": sample_delivery_add(endpoint),
        "import": import_job,
        "lead": Lead.objects.filter(owner=rep, converted_at__isnull=True).order_by("pk").first(),
        "opportunity": Opportunity.objects.filter(owner=rep).order_by("pk").first(),
        "task": Task.objects.filter(owner=rep).order_by("pk").first(),
        "email": email,
        "campaign": campaign,
        "list_email": ListEmail.objects.get(pk=list_email.pk),
        "token": token_for(relation.pk, Purpose.UNSUBSCRIBE) if relation else "not-a-token",
    }


def _path(page: Page, world: dict[str, Any]) -> str:
    app, _, view = page.name.rpartition(":")
    kwargs: dict[str, Any] = {}
    for name in page.parameters:
        if name == "token":
            kwargs[name] = world["token"]
        elif name == "kind":
            kwargs[name] = "contact"
        elif name == "email_pk":
            kwargs[name] = world["list_email"].pk
        elif app == "campaigns":
            kwargs[name] = world["campaign"].pk
        elif app == "imports":
            kwargs[name] = world["import"].pk
        elif app == "automation" and name == "step_pk":
            kwargs[name] = world["step"].pk
        elif app == "automation" and view.startswith("step"):
            kwargs[name] = world["sequence"].pk
        elif view == "email_detail":
            kwargs[name] = world["email"].pk
        else:
            kwargs[name] = world[view.split("_")[0]].pk
    query = QUERIES.get(page.name)
    return reverse(page.name, kwargs=kwargs) + (f"?{query}" if query else "")


def _findings(page: Any, label: str, *, laptop: bool) -> list[str]:
    seen = page.evaluate(INSPECT)
    found = []
    if laptop and seen["clipped"]:
        found.append(f"{label}: a table's columns are clipped ({seen['clipped']} px hidden)")
    if seen["page"][0] > seen["page"][1]:
        found.append(f"{label}: the page scrolls sideways ({seen['page'][0]} > {seen['page'][1]})")
    if seen["main"][0] > seen["main"][1]:
        wide = ", ".join(seen["wide"])
        found.append(f"{label}: main overflows ({seen['main'][0]} > {seen['main'][1]}: {wide})")
    names = [name for name in seen["cards"] if not COUNTED.match(name)]
    for name in sorted({name for name in names if names.count(name) > 1}):
        found.append(f"{label}: two cards are called “{name}”")
    for match in PLACEHOLDERS.finditer(seen["text"]):
        around = seen["text"][max(0, match.start() - 30) : match.end() + 30].replace("\n", " | ")
        found.append(f"{label}: placeholder {match.group(0)!r} in “{around}”")
    return found


def _walk(browser: Any, origin: str, paths: dict[str, str], *, role: str,
          login: tuple[str, str] | None, output_dir: Path) -> list[str]:  # fmt: skip
    """Every page at each viewport, as one user: what fails the walk, one line each."""
    shots = output_dir / "walk"
    shots.mkdir(exist_ok=True)
    found: list[str] = []
    seen_known: set[Known] = set()
    for viewport, size in VIEWPORTS.items():
        context = browser.new_context(user_agent=REAL_BROWSER, viewport=size)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        page = context.new_page()
        errors = ConsoleErrors()
        errors.watch(page)
        if login:
            log_in(page, origin, *login)
        for name, path in paths.items():
            label = f"{role} {viewport} {name} ({path})"
            response = page.goto(f"{origin}{path}")
            assert response is not None, label
            if response.status == 403:
                # Not this role's page (the navigation does not offer it): the browser logs
                # the status as a failed load, which is no fault of the page.
                errors[:] = [error for error in errors if not error.startswith(page.url)]
                continue
            if response.status != 200:
                found.append(f"{label}: answered {response.status}")
                continue
            for finding in _findings(page, label, laptop=viewport == "laptop"):
                known = [k for k in KNOWN if k.covers(role, name, finding)]
                seen_known.update(known)
                found += [] if known else [finding]
            page.screenshot(
                path=str(shots / f"{role}-{viewport}-{name.replace(':', '-')}.png"), full_page=True
            )
        context.close()
        found += [f"{role} {viewport}: {error}" for error in errors]
    fixed = [
        k
        for k in KNOWN
        if role in k.roles and k.steady and k not in seen_known and set(k.pages) & set(paths)
    ]
    found += [f"{role}: fixed, remove it from KNOWN: {k.file}" for k in fixed]
    return found


@pytest.fixture
def demo(live_app: str, roles: None) -> dict[str, Any]:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo_activity", stdout=StringIO())
    return _world(User.objects.get(username=ROLES["rep"][0]))


@pytest.mark.parametrize("role", ROLES)
def test_every_page_reads_well_for_each_role_on_a_laptop_and_a_phone(
    live_app, browser, demo, output_dir, role
) -> None:
    paths = {page.name: _path(page, demo) for page in PAGES if not _skipped(page)}

    found = _walk(browser, live_app, paths, role=role, login=ROLES[role], output_dir=output_dir)

    if found:  # every finding, not pytest's truncated diff of a list
        pytest.fail("\n".join(found), pytrace=False)


def test_the_signed_out_pages_read_well_on_a_laptop_and_a_phone(
    live_app, browser, demo, output_dir
) -> None:
    pages = {page.name: page for page in PAGES}
    paths = {name: _path(pages[name], demo) for name in SIGNED_OUT}

    found = _walk(browser, live_app, paths, role="signed-out", login=None, output_dir=output_dir)

    if found:
        pytest.fail("\n".join(found), pytrace=False)


def test_the_walk_covers_every_page() -> None:
    names = {page.name for page in PAGES}

    assert set(SKIP) <= names, "SKIP names a URL that no longer exists"
    assert set(SIGNED_OUT) <= set(SKIP)
    walked = {page.name for page in PAGES if not _skipped(page)}
    # The pages the issue names are among them: lists, a record of each kind, Setup, the
    # dashboards, the email page and log, campaigns, the account pages.
    assert {
        "home",
        "crm:contact_list",
        "crm:account_detail",
        "crm:contact_detail",
        "crm:lead_detail",
        "crm:opportunity_detail",
        "crm:task_detail",
        "crm:setup",
        "crm:security",
        "password_change",
        "reports:dashboard",
        "reports:email_log",
        "tracking:email_detail",
        "campaigns:list",
        "campaigns:campaign_detail",
        "campaigns:campaign_report",
    } <= walked


def test_the_placeholder_check_catches_what_a_user_should_not_read() -> None:
    assert PLACEHOLDERS.search("Owner: None")
    assert PLACEHOLDERS.search("Hello {{ name }}")
    assert PLACEHOLDERS.search("{% if x %}")
    assert PLACEHOLDERS.search("{# A record's activity metrics;")
    assert PLACEHOLDERS.search("Status\n---------\nOpen")
    assert not PLACEHOLDERS.search("Last activity: None yet")
    assert not PLACEHOLDERS.search("Any status · Sep 3, 2026 14:05 — 1 open")
    assert not PLACEHOLDERS.search("Merge fields: {{first_name}}, {{company}}")
