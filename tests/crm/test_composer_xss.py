"""The composer never hands the page HTML that could run: template bodies and the body shown
again after a refused send are cleaned on the server (the editor cleans again in the browser)."""

import json
import re

from django.urls import reverse

from crm.models import EmailTemplate, OrgSettings

PAYLOAD = (
    '<p style="color:#333;position:fixed">Hi {{first_name}}</p>'
    '<img src="https://example.com/logo.png" alt="Logo" onerror="alert(document.cookie)">'
    '<a href="javascript:alert(1)" onclick="alert(2)">click</a>'
    '<a href="https://example.com/offer">offer</a>'
    '<script>alert(3)</script><iframe src="https://evil.example"></iframe>'
    '<svg onload="alert(4)"></svg><object data="x.swf"></object>'
)
ACTIVE = re.compile(r"onerror|onclick|onload|javascript:|<script|<iframe|<svg|<object|position")


def _compose_page(client, contact, data=None):
    url = reverse("crm:contact_email", args=[contact.pk])
    return client.post(url, data) if data else client.get(url)


def test_a_template_body_reaches_the_page_without_handlers_or_scripts(
    client_for, rep, make_contact
) -> None:
    template = EmailTemplate.objects.create(name="Intro", subject="Hi", html_body=PAYLOAD)

    page = _compose_page(client_for(rep), make_contact())

    data = re.search(
        r'<script id="email-templates" type="application/json">(.*?)</script>',
        page.content.decode(),
        re.DOTALL,
    )
    body = json.loads(data.group(1))[str(template.pk)]["html_body"]
    assert not ACTIVE.search(body)
    # What an email needs is kept: text, merge fields, links, remote images, plain styles.
    assert '<p style="color:#333">Hi {{first_name}}</p>' in body
    assert '<img src="https://example.com/logo.png" alt="Logo">' in body
    assert '<a href="https://example.com/offer">offer</a>' in body


def test_a_body_shown_again_after_a_refused_send_is_cleaned(client_for, rep, make_contact) -> None:
    org = OrgSettings.load()
    org.deliverability_access = "no_access"
    org.save()
    contact = make_contact()
    data = {"to": contact.email, "cc": "", "bcc": "", "subject": "Hi", "html_body": PAYLOAD}

    page = _compose_page(client_for(rep), contact, data)

    assert "No access" in page.context["form"].non_field_errors()[0]
    textarea = re.search(r"<textarea[^>]*data-editor>(.*?)</textarea>", page.content.decode(), re.S)
    shown = textarea.group(1)
    assert "onerror" not in shown and "javascript" not in shown and "&lt;script" not in shown
    assert "Hi {{first_name}}" in shown


def test_a_body_shown_again_after_a_form_error_is_cleaned(client_for, rep, make_contact) -> None:
    contact = make_contact()
    data = {"to": "not-an-address", "cc": "", "bcc": "", "subject": "Hi", "html_body": PAYLOAD}

    page = _compose_page(client_for(rep), contact, data)

    assert page.context["form"].errors["to"]
    assert "onerror" not in page.context["body"] and "<script" not in page.context["body"]
