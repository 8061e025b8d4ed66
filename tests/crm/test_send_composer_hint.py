"""The composer says, as the rep types, that another tool's merge field would arrive unfilled."""

import pytest

from tests.browser import conftest as browser_setup
from tests.browser.conftest import REAL_BROWSER, log_in

# The browser tests' fixtures (a live server, Chromium, the console watcher), used here too.
live_app = browser_setup.live_app
browser = browser_setup.browser
console_errors = browser_setup.console_errors

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_the_composer_hints_at_foreign_merge_fields_before_sending(
    live_app,
    browser,
    rep,
    make_contact,
    console_errors,
) -> None:
    contact = make_contact()
    context = browser.new_context(user_agent=REAL_BROWSER)
    page = context.new_page()
    console_errors.watch(page)
    log_in(page, live_app, rep.username)
    page.goto(f"{live_app}/contacts/{contact.pk}/email/")
    hint = page.locator("[data-merge-hint]")
    assert hint.is_hidden()

    page.locator(".editor").click()
    page.keyboard.type("Hi *|FNAME|*, and {{first_name}} is fine.")

    assert hint.is_visible()
    assert hint.text_content() == (
        "Merge fields from another tool would be sent as written, unfilled: *|FNAME|* "
        "(use {{first_name}}). Use one of: {{first_name}}, {{last_name}}, {{name}}, "
        "{{company}}, {{title}}, {{email}}, {{sender_name}}, {{sender_email}}."
    )
    page.fill("input[name=subject]", "About %%Company%%")
    page.locator("input[name=subject]").dispatch_event("input")
    assert "%%Company%% (use {{company}})" in hint.text_content()

    page.locator(".editor").fill("Hi {{first_name}}")
    page.fill("input[name=subject]", "About us")
    assert hint.is_hidden()
    assert console_errors == []
    context.close()
