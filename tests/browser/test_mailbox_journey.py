"""A rep connects their mailbox; a customer's reply lands in it; the contact's timeline shows
it in its thread, marked "from mailbox", and the follow-up for the quiet contact closes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.activity import activity_metrics_recompute, follow_ups_create
from crm.models import Contact, Task
from tests.browser.conftest import REAL_BROWSER, log_in
from tests.capture.conftest import (  # noqa: F401 -- fixtures the journey uses
    _capture_settings,
    imap_box,
    imap_server,
    mail,
    tls_dovecot,
)
from tests.inbound.imap_server import HOST, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_connect_the_mailbox_and_see_a_reply_on_the_timeline(
    live_app,
    browser,
    rep,
    make_contact,
    imap_box,  # noqa: F811 -- the fixture imported above
    output_dir,
    console_errors,
) -> None:
    ada = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    Contact.objects.filter(pk=ada.pk).update(created_at=timezone.now() - timedelta(days=40))
    activity_metrics_recompute()
    follow_ups_create()
    follow_up = Task.objects.get(who_contact=ada, kind=Task.Kind.FOLLOW_UP)
    page = browser.new_context(
        user_agent=REAL_BROWSER, viewport={"width": 1280, "height": 900}
    ).new_page()
    console_errors.watch(page)

    # The rep connects their mailbox from the user menu's Mailbox page, testing it first.
    log_in(page, live_app, rep.username)
    page.click("button.dropdown-toggle:has-text('Rita')")
    page.click("a.dropdown-item:has-text('Mailbox')")
    page.fill("#id_host", HOST)
    page.select_option("#id_security", "tls")
    page.fill("#id_port", str(imap_box.port))
    page.fill("#id_username", imap_box.user)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Test connection')")
    page.wait_for_selector("text=Connected and signed in")
    page.fill("#id_password", PASSWORD)  # never shown back, so typed again
    page.click("button[value=connect]")
    page.wait_for_selector("text=Mailbox connected")
    assert PASSWORD not in page.content()

    # The rep wrote to Ada from their own mail program; Ada's reply lands in the inbox.
    question, root = mail(
        sender="Rita Rep <rita@openrate.example>",
        to=["Ada Lovelace <ada@example.com>"],
        subject="Renewal next month",
        when=timezone.now() - timedelta(hours=3),
    )
    reply, _ = mail(
        sender="Ada Lovelace <ada@example.com>",
        to=["Rita Rep <rita@openrate.example>"],
        subject="Re: Renewal next month",
        replying_to=[root],
        body="Yes, let's renew for two years.",
    )
    imap_box.append(question, folder="Sent", seen=True)
    imap_box.append(reply)
    page.click("button:has-text('Sync now')")
    page.wait_for_selector("text=A sync has been started")
    page.reload()
    assert page.locator("#messages-captured").inner_text() == "2"

    # Ada's timeline: both, from the mailbox, untracked; the follow-up is done.
    page.goto(f"{live_app}{ada.get_absolute_url()}")
    entry = page.locator(".timeline-entry", has_text="Re: Renewal next month")
    assert entry.locator(".badge", has_text="From mailbox").count() == 1
    assert entry.locator(".badge", has_text="Untracked").count() == 1
    assert page.locator(".timeline-entry", has_text="Renewal next month").count() == 2
    follow_up.refresh_from_db()
    assert follow_up.status == Task.Status.COMPLETED
    page.screenshot(path=str(output_dir / "mailbox-timeline.png"), full_page=True)

    # The reply's page shows the conversation it belongs to.
    entry.locator("a", has_text="Re: Renewal next month").first.click()
    page.wait_for_selector("h1")
    assert "Renewal next month" in page.content() and "Yes, let" in page.content()
    assert console_errors == []
