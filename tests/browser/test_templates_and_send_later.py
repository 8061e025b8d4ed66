"""In a real browser: a manager writes a shared template in the composer's editor; a rep picks it
in the composer, chooses a time with the browser's date-time box and presses Send later; the
Scheduled page shows it in the rep's time zone. No page logs an error."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import EmailTemplate, ScheduledEmail
from crm.scheduling import user_zone
from tests.browser.conftest import REAL_BROWSER, REPORT_CSP_VIOLATIONS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_a_template_written_in_the_editor_is_used_and_scheduled(
    live_app, browser, manager, rep, make_contact, console_errors
) -> None:
    rep.time_zone = "Asia/Tokyo"
    rep.save(update_fields=["time_zone"])
    contact = make_contact(first_name="Ada")
    context = browser.new_context(user_agent=REAL_BROWSER)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    console_errors.watch(page)

    log_in(page, live_app, manager.username)
    page.goto(f"{live_app}{reverse('crm:template_create')}")
    page.fill("input[name=name]", "Intro")
    page.fill("input[name=folder]", "Prospecting")
    page.fill("input[name=subject]", "Hello {{first_name}}")
    editor = page.locator(".editor")
    editor.click()
    page.keyboard.type("Nice to meet you, {{first_name}}.")
    page.click("#composer button[type=submit]")
    page.wait_for_url(f"{live_app}/templates/*/")
    template = EmailTemplate.objects.get()
    assert "Nice to meet you, {{first_name}}." in template.html_body
    assert not template.is_private
    page.goto(f"{live_app}{template.get_absolute_url()}?person=contact:{contact.pk}")
    frame = page.frame_locator("iframe.email-body")
    assert "Nice to meet you, Ada." in frame.locator("body").inner_text()
    context.clear_cookies()

    log_in(page, live_app, rep.username)
    page.goto(f"{live_app}{reverse('crm:contact_email', args=[contact.pk])}")
    page.select_option("select[name=template]", label="Intro")
    assert page.input_value("input[name=subject]") == "Hello {{first_name}}"
    rep_zone = user_zone(rep)
    tomorrow = timezone.localtime(timezone.now() + timedelta(days=1), rep_zone)
    page.fill("input[name=send_at]", f"{tomorrow:%Y-%m-%d}T09:15")
    page.click("button[value=later]")
    page.wait_for_url(f"{live_app}{reverse('crm:scheduled_list')}")

    scheduled = ScheduledEmail.objects.get()
    expected = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, 15, tzinfo=rep_zone)
    assert scheduled.send_at == expected.astimezone(UTC)
    assert scheduled.template == template
    assert "Nice to meet you" in scheduled.html_body
    assert f"{tomorrow:%b} {tomorrow.day}, {tomorrow:%Y} 09:15" in page.content()
    assert console_errors == []
