"""The local Outbox: in embedded mode with DEBUG on, the mail `make run` delivers is kept in
var/outbox and shown as its recipient gets it, with the pixel and tracked links live."""

import html
import importlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import EmailMessage as DjangoEmail
from django.test import Client, override_settings
from django.urls import clear_url_caches, reverse
from django.urls.exceptions import NoReverseMatch

import config.urls
import demo.outbox
from config.wsgi import django_application
from crm.models import EmailMessageRelation, User
from crm.sending import email_send
from demo.outbox import BACKEND, EmailBackend, outbox_keys
from mailkit.tokens import signing_keys
from tests.demo.conftest import fresh_setting
from tests.test_csp import INLINE_SCRIPT, directives
from tests.tracking.conftest import CHROME, call
from tracking import buffer
from tracking.buffer import EventWriter
from tracking.fastpath import LinkCache, TrackingApp
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent

BODY = '<p>Hi, our <a href="https://example.com/pricing">pricing</a>.</p>'


def _reload_urls() -> None:
    """config.urls decides at import whether to mount the outbox: import it again."""
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "outbox"
    with override_settings(DEBUG=True, EMAIL_BACKEND=BACKEND, OUTBOX_DIR=folder, REDIS_URL=""):
        _reload_urls()
        yield folder
    _reload_urls()


@pytest.fixture
def send(rep: User, make_contact: Callable, django_capture_on_commit_callbacks: Callable):
    def send_one(subject: str = "Pricing") -> EmailMessageRelation:
        contact = make_contact(first_name="Ada", email="ada@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            email = email_send(sender=rep, to=[contact], subject=subject, html_body=BODY)
        return email.relations.get(contact=contact)

    return send_one


def _message_page(client: Client) -> str:
    (key,) = outbox_keys()
    page = client.get(reverse("demo:outbox_message", args=[key]))
    assert page.status_code == 200
    return page.content.decode()


def _frame(page: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', page)
    assert match
    return html.unescape(match.group(1))


def test_a_delivered_email_is_listed_in_the_outbox(outbox, send, rep, client_for) -> None:
    send("Team pricing")

    page = client_for(rep).get(reverse("demo:outbox"))

    assert page.status_code == 200
    (key,) = outbox_keys()
    row = re.search(r"<tr>.*?</tr>", page.content.decode().split("<tbody>")[1], re.DOTALL)
    assert row and "ada@example.com" in row.group(0)
    assert f'<a href="{reverse("demo:outbox_message", args=[key])}">Team pricing</a>' in row.group(
        0
    )
    assert len(list(outbox.glob("*.eml"))) == 1


def test_a_message_shows_the_recipients_copy_with_pixel_and_links_live(
    outbox, send, rep, client_for
) -> None:
    relation = send()

    response = client_for(rep).get(reverse("demo:outbox_message", args=outbox_keys()))
    page = response.content.decode()
    frame = _frame(page)

    base = settings.TRACKING_BASE_URL
    assert re.search(rf'<img src="{re.escape(base)}/t/o/[^"]+\.gif"', frame)
    assert re.search(rf'<a href="{re.escape(base)}/t/c/[^"]+"[^>]*>pricing</a>', frame)
    # The honeypot stays hidden: a person clicking it would be taken for a scanner.
    assert "display:none" in frame.replace(" ", "")
    # The page's policy (which the frame inherits) lets the pixel load, and runs no inline script.
    policy = directives(response["Content-Security-Policy"])
    assert "https://t.openrate.test" in policy["img-src"]
    assert policy["script-src"] == ["'self'"]
    assert not INLINE_SCRIPT.search(page)
    # It says what opening it and clicking do, and how long to wait.
    assert "Opening this page loaded its tracking pixel" in page
    assert "wait 10 seconds after delivery before you click" in page
    assert reverse("tracking:email_detail", args=[relation.email_id]) in page


def test_a_click_from_the_outbox_counts_as_a_person_s_once_the_scanner_window_passed(
    outbox, send, rep, client_for
) -> None:
    relation = send()
    frame = _frame(_message_page(client_for(rep)))
    base = re.escape(settings.TRACKING_BASE_URL)
    (pixel,) = re.findall(rf'<img src="{base}(/t/o/[^"]+)"', frame)
    (click,) = re.findall(rf'<a href="{base}(/t/c/[^"]+)"[^>]*>pricing</a>', frame)
    app = TrackingApp(
        django_application,
        keys=signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS),
        writer=EventWriter(buffer.redis_client()),
        links=LinkCache(),
    )

    # Within the window, as the page warns: a scanner's click.
    assert call(app, click, headers={"User-Agent": CHROME}).status == 302
    events_ingest()
    assert TrackingEvent.objects.get(kind="click").label == TrackingEvent.Label.SCANNER
    # After it: the pixel and the click are a person's.
    EmailMessageRelation.objects.filter(pk=relation.pk).update(
        sent_at=relation.sent_at - timedelta(minutes=1)
    )
    assert call(app, pixel, headers={"User-Agent": CHROME}).status == 200
    assert call(app, click, headers={"User-Agent": CHROME}).status == 302
    events_ingest()

    relation.refresh_from_db()
    assert (relation.human_opens, relation.human_clicks) == (1, 1)


def test_the_outbox_lists_a_page_at_a_time_newest_first(outbox, rep, client_for) -> None:
    EmailBackend().send_messages(
        [
            DjangoEmail(f"Message {n:02}", "Hi", "a@example.com", ["b@example.com"])
            for n in range(30)
        ]
    )
    client = client_for(rep)

    first = client.get(reverse("demo:outbox")).content.decode().split("<tbody>")[1]
    last = client.get(reverse("demo:outbox") + "?page=999").content.decode().split("<tbody>")[1]

    assert "Message 29" in first and "Message 05" in first and "Message 04" not in first
    assert "Page 1 of 2" in first
    assert "Message 04" in last and "Message 00" in last and "Message 29" not in last


def test_the_outbox_keeps_only_the_newest_messages(outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.outbox, "OUTBOX_KEEP", 3)

    EmailBackend().send_messages(
        [DjangoEmail(f"Message {n}", "Hi", "a@example.com", ["b@example.com"]) for n in range(5)]
    )

    kept = [demo.outbox.outbox_read(key) for key in outbox_keys()]
    assert [m.subject for m in kept if m] == ["Message 4", "Message 3", "Message 2"]


def test_an_empty_outbox_says_how_to_fill_it(outbox, rep, client_for) -> None:
    page = client_for(rep).get(reverse("demo:outbox")).content.decode()

    assert "No email delivered yet" in page and "New email" in page


def test_a_message_not_in_the_outbox_is_a_404(outbox, rep, client_for) -> None:
    client = client_for(rep)

    for key in ["20260101T000000000000-" + "0" * 32, "..", "not-a-key", "%2e%2e%2fdb"]:
        assert client.get(f"/outbox/{key}/").status_code == 404


def test_the_outbox_asks_a_visitor_to_sign_in(outbox) -> None:
    response = Client().get(reverse("demo:outbox"))

    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("changes", [{"DEBUG": False}, {"EMAIL_BACKEND": "x.y.Backend"}])
def test_the_outbox_is_not_mounted_with_debug_off_or_another_backend(
    changes, rep, client_for, tmp_path
) -> None:
    options = {"DEBUG": True, "EMAIL_BACKEND": BACKEND, "OUTBOX_DIR": tmp_path} | changes
    try:
        with override_settings(**options):
            _reload_urls()
            with pytest.raises(NoReverseMatch):
                reverse("demo:outbox")
            assert client_for(rep).get("/outbox/").status_code == 404
    finally:
        _reload_urls()


def test_a_running_outbox_answers_404_once_debug_is_off(outbox, rep, client_for) -> None:
    with override_settings(DEBUG=False):
        assert client_for(rep).get(reverse("demo:outbox")).status_code == 404


def test_the_settings_choose_the_outbox_only_in_embedded_debug_mode() -> None:
    assert fresh_setting("EMAIL_BACKEND", DEBUG="true") == BACKEND
    assert fresh_setting("EMAIL_BACKEND") != BACKEND
    assert (
        fresh_setting("EMAIL_BACKEND", DEBUG="true", REDIS_URL="redis://127.0.0.1:6379/0")
        != BACKEND
    )
    assert (
        fresh_setting("EMAIL_BACKEND", DEBUG="true", EMAIL_URL="smtp://mail.example.com:587")
        != BACKEND
    )
