"""A rep sends an email from a Contact; the recipient opens it and clicks; the timeline shows it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import EmailMessageRelation
from tests.browser.conftest import REAL_BROWSER, log_in
from tests.tracking.conftest import html_of
from tracking.ingestion import events_ingest

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_send_open_click_and_see_it_on_the_timeline(
    live_app, browser, smtp_server, rep, make_contact, output_dir, console_errors
) -> None:
    contact = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    destination = f"{live_app}/login/?from=pricing"
    rep_context = browser.new_context(
        user_agent=REAL_BROWSER, viewport={"width": 1280, "height": 900}
    )
    page = rep_context.new_page()
    console_errors.watch(page)

    # The rep writes to Ada from her page, with a link made in the editor.
    log_in(page, live_app, rep.username)
    page.goto(f"{live_app}{contact.get_absolute_url()}")
    page.click("text=New email")
    page.fill("input[name=subject]", "Our pricing, {{first_name}}")
    editor = page.locator(".editor")
    editor.click()
    page.keyboard.type("Hello {{first_name}}, here is our pricing.")
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
    assert page.locator(".badge", has_text="Sent").count() == 1

    # The message as the SMTP server got it: Ada's own copy, tracked.
    message = smtp_server.for_address("ada@example.com")
    assert message["Subject"] == "Our pricing, Ada"
    html = html_of(message)
    assert f"{live_app}/t/o/" in html and destination not in html

    # Ada reads it an hour later in her mail client: images load, she clicks the link.
    relation = EmailMessageRelation.objects.get(address="ada@example.com")
    EmailMessageRelation.objects.filter(pk=relation.pk).update(
        sent_at=timezone.now() - timedelta(hours=1)
    )
    mail_client = browser.new_context(user_agent=REAL_BROWSER).new_page()
    console_errors.watch(mail_client)
    with mail_client.expect_response(lambda r: "/t/o/" in r.url) as pixel:
        mail_client.set_content(html)
    assert pixel.value.status == 200
    mail_client.click("text=our pricing")
    mail_client.wait_for_url(destination)

    assert events_ingest().stored == 2

    # The rep's timeline now shows the open and the clicked link.
    page.goto(f"{live_app}{contact.get_absolute_url()}")
    entry = page.locator(".timeline-entry").first
    assert "Opened once" in entry.inner_text()
    assert "Clicked 127.0.0.1/login" in entry.inner_text()
    entry.locator("summary").click()
    entry.locator("text=click on").wait_for()
    page.screenshot(path=str(output_dir / "timeline.png"), full_page=True)
    page.click("text=Our pricing, Ada")
    page.wait_for_selector("text=HTML Email Status")
    assert "Human" in page.inner_text("body")
    page.screenshot(path=str(output_dir / "email-page.png"), full_page=True)

    assert console_errors == []
