"""No page logs a JavaScript error, a Content-Security-Policy violation or a failed load."""

import pytest
from django.urls import reverse

from crm.models import EmailTemplate, OpportunityContactRole
from crm.sending import email_send
from tests.browser.conftest import REAL_BROWSER, REPORT_CSP_VIOLATIONS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_no_page_logs_a_javascript_error(
    live_app,
    browser,
    admin_user,
    make_account,
    make_contact,
    make_lead,
    make_opportunity,
    make_task,
    console_errors,
) -> None:
    account = make_account(owner=admin_user)
    contact = make_contact(account=account, owner=admin_user)
    lead = make_lead(owner=admin_user)
    opportunity = make_opportunity(account=account, owner=admin_user)
    OpportunityContactRole.objects.create(opportunity=opportunity, contact=contact, is_primary=True)
    task = make_task(who_contact=contact, owner=admin_user)
    EmailTemplate.objects.create(name="Intro", subject="Hi", html_body="<p>Hi {{first_name}}</p>")
    email = email_send(
        sender=admin_user,
        to=[contact],
        subject="Hello",
        html_body="<p>Hi <a href='https://example.com'>x</a></p>",
    )
    context = browser.new_context(user_agent=REAL_BROWSER)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    console_errors.watch(page)
    log_in(page, live_app, admin_user.username)

    paths = [
        reverse("home"),
        *(
            reverse(f"crm:{m}_list")
            for m in ("account", "contact", "lead", "opportunity", "task", "email")
        ),
        account.get_absolute_url(),
        contact.get_absolute_url(),
        lead.get_absolute_url(),
        opportunity.get_absolute_url(),
        task.get_absolute_url(),
        email.get_absolute_url(),
        reverse("crm:contact_email", args=[contact.pk]),
        reverse("crm:lead_convert", args=[lead.pk]),
        reverse("crm:contact_create"),
        reverse("crm:setup"),
        reverse("password_change"),
        reverse("crm:security"),
        reverse("reports:dashboard"),
        reverse("admin:index"),
        reverse("admin:crm_contact_change", args=[contact.pk]),
    ]
    for path in paths:
        response = page.goto(f"{live_app}{path}")
        assert response.status == 200, path
    # Interactions that run the pages' scripts: the template picker and a timeline entry.
    page.goto(f"{live_app}{reverse('crm:contact_email', args=[contact.pk])}")
    page.select_option("select[name=template]", label="Intro")
    assert page.input_value("input[name=subject]") == "Hi"

    assert console_errors == []
