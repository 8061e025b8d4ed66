"""Another tool's merge fields are named to the sender before anything is sent."""

import pytest
from django.core import mail
from django.urls import reverse

from crm.models import EmailMessage
from crm.sending import SendRefused, email_send


def _compose(client, contact, **fields):
    data = {"to": contact.email, "cc": "", "bcc": "", "subject": "Hi", "html_body": "<p>Hi</p>"}
    return client.post(reverse("crm:contact_email", args=[contact.pk]), data | fields)


def test_the_composer_names_mailchimp_fields_and_the_ones_openrate_knows(
    client_for, rep, make_contact
) -> None:
    contact = make_contact()
    body = '<p>Hi *|FNAME|*,</p><p><a href="*|UNSUB|*">Unsubscribe</a></p>'

    response = _compose(client_for(rep), contact, html_body=body)

    assert response.status_code == 200
    (error,) = response.context["form"].non_field_errors()
    assert error.startswith(
        "Merge fields from another tool would be sent as written, unfilled: "
        "*|FNAME|* (use {{first_name}}), *|UNSUB|*. Use one of: {{first_name}}, {{last_name}}"
    )
    assert not EmailMessage.objects.exists() and not mail.outbox
    assert "*|FNAME|*" in response.context["body"]  # what was typed is kept


@pytest.mark.parametrize(
    ("subject", "html_body", "named"),
    [
        ("Hello %%FirstName%%", "<p>Hi</p>", "%%FirstName%% (use {{first_name}})"),
        ("Hello", "<p>Dear {!Contact.FirstName}</p>", "{!Contact.FirstName} (use {{first_name}})"),
        ("Hello", "<p>Dear {$name}</p>", "{$name} (use {{name}})"),
        ("Hello", "<p>Dear [First Name]</p>", "[First Name] (use {{first_name}})"),
    ],
)
def test_a_send_with_foreign_merge_syntax_is_refused_with_what_was_found(
    rep, make_contact, subject, html_body, named
) -> None:
    with pytest.raises(SendRefused, match="another tool") as refused:
        email_send(sender=rep, to=[make_contact()], subject=subject, html_body=html_body)

    assert named in str(refused.value)
    assert not EmailMessage.objects.exists()


def test_brackets_and_braces_in_ordinary_writing_are_sent(
    rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    body = "<p>See [1] and {the appendix}; 20% off [Draft] for {{first_name}}.</p>"

    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[make_contact()], subject="Notes [v2]", html_body=body)

    assert mail.outbox[0].subject == "Notes [v2]"
