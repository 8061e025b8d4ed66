"""A live server running the deployed WSGI app (tracking fast path + Django), and Chromium."""

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

from mailkit.tokens import signing_keys
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.tracking.conftest import smtp_server  # noqa: F401 -- a fixture the journey uses
from tracking import buffer
from tracking.buffer import EventWriter
from tracking.fastpath import LinkCache, TrackingApp

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A person's browser: headless Chromium's own user agent says HeadlessChrome, which is a bot.
REAL_BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OUTPUT = REPO_ROOT / "test-output" / "browser"
# An init script that makes every Content-Security-Policy violation a console error, so the
# tests' watcher (ConsoleErrors) fails on it with the directive and what was blocked.
REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));"""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def live_app(transactional_db, settings) -> Iterator[str]:
    """The whole app on a loopback port, as `config.wsgi` builds it; yields its origin."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs a loop here
    settings.REDIS_URL = ""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    origin = f"http://127.0.0.1:{server.server_port}"
    settings.TRACKING_BASE_URL = origin
    server.set_app(
        TrackingApp(
            get_wsgi_application(),
            keys=signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS),
            writer=EventWriter(buffer.redis_client()),
            links=LinkCache(),
        )
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        skip_or_fail("Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


class ConsoleErrors(list):
    """Console errors and uncaught exceptions of every page it watches."""

    def watch(self, page) -> None:
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.append(f"{page.url}: {e}"))

    def _console(self, page, message) -> None:
        # Chromium asks for /favicon.ico on pages that name no icon (the Django admin's).
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.append(f"{page.url}: {message.text}")


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


def log_in(page, origin: str, username: str, password: str = "pw") -> None:
    page.goto(f"{origin}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/")
