"""The quick-start loop in a real browser: a rep sends an email, reads it in the local Outbox
(the pixel loads under the page's policy), clicks its link, and sees both on the timeline."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, expect, sync_playwright

from crm.models import EmailMessageRelation
from demo.outbox import BACKEND
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REAL_BROWSER,
    REPORT_CSP_VIOLATIONS,
    log_in,
)
from tests.conftest import skip_or_fail
from tests.demo.test_outbox import _reload_urls
from tracking.ingestion import events_ingest

pytestmark = [pytest.mark.browser]


@pytest.fixture
def person_browser() -> Iterator[Browser]:
    """Chromium with a person's user agent in every process: the context's override does not
    always reach a sandboxed frame's own process, whose pixel request would then say
    HeadlessChrome and count as a bot's open."""
    if not Path(CHROMIUM).exists():
        skip_or_fail("Debian's Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={REAL_BROWSER}"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def outbox_on(tmp_path: Path) -> Iterator[None]:
    with override_settings(DEBUG=True, EMAIL_BACKEND=BACKEND, OUTBOX_DIR=tmp_path / "outbox"):
        _reload_urls()
        yield
    _reload_urls()


def test_send_read_in_the_outbox_click_and_see_it_on_the_timeline(
    outbox_on, live_app, person_browser, rep, make_contact, output_dir, console_errors
) -> None:
    contact = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    destination = f"{live_app}/emails/?from=outbox"
    context = person_browser.new_context(
        user_agent=REAL_BROWSER, viewport={"width": 1280, "height": 900}
    )
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    console_errors.watch(page)

    # The rep writes to Ada from her page, with a link made in the editor.
    log_in(page, live_app, rep.username)
    page.goto(f"{live_app}{contact.get_absolute_url()}")
    page.click("text=New email")
    page.fill("input[name=subject]", "Trying Openrate")
    editor = page.locator(".editor")
    editor.click()
    page.keyboard.type("Hello, here is our pricing.")
    editor.evaluate(
        """el => { const range = document.createRange();
                   const text = el.firstChild;
                   const start = text.textContent.indexOf('our pricing');
                   range.setStart(text, start); range.setEnd(text, start + 'our pricing'.length);
                   const selection = window.getSelection(); selection.removeAllRanges();
                   selection.addRange(range); }"""
    )
    page.once("dialog", lambda dialog: dialog.accept(destination))
    page.click("button[data-command=createLink]")
    page.click("button:has-text('Send')")
    page.wait_for_selector("text=Email queued.")

    # The Outbox lists it; opening it loads the pixel, as Ada's mail program would.
    page.goto(f"{live_app}/outbox/")
    page.screenshot(path=str(output_dir / "outbox-list.png"), full_page=True)
    page.click("text=Trying Openrate")
    page.wait_for_selector("text=This is the recipient's copy, with tracking live.")
    # (Playwright does not report a sandboxed frame's requests: the image itself says it loaded.)
    pixel = page.frame_locator("iframe.email-body").locator("img[src*='/t/o/']")
    expect(pixel).to_have_js_property("naturalWidth", 1)
    page.screenshot(path=str(output_dir / "outbox-message.png"), full_page=True)

    # Past the scanner window, the link in the copy opens a new tab through the fast path.
    relation = EmailMessageRelation.objects.get(address="ada@example.com")
    EmailMessageRelation.objects.filter(pk=relation.pk).update(
        sent_at=timezone.now() - timedelta(minutes=1)
    )
    with context.expect_page() as opened:
        page.frame_locator("iframe.email-body").get_by_text("our pricing").click()
    opened.value.wait_for_url(destination)

    assert events_ingest().stored == 2
    relation.refresh_from_db()
    assert (relation.human_opens, relation.human_clicks) == (1, 1)

    page.goto(f"{live_app}{contact.get_absolute_url()}")
    entry = page.locator(".timeline-entry").first
    assert "Opened once" in entry.inner_text()
    assert "Clicked" in entry.inner_text()
    # The test's own scripts (the violation reporter, Playwright's probes of the image) are
    # refused in the sandboxed frame, as any script in an email would be; nothing else may fail.
    errors = [e for e in console_errors if "Blocked script execution in 'about:srcdoc'" not in e]
    assert errors == [], "\n".join(errors)
