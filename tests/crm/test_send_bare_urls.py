"""A web address typed bare into an email is a link in every copy, and tracked like one."""

from django.conf import settings
from django.core import mail

from crm.models import TrackedLink
from crm.sending import email_send


def test_a_bare_url_in_the_body_is_linked_and_tracked(
    rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    ada = make_contact()

    with django_capture_on_commit_callbacks(execute=True):
        email = email_send(
            sender=rep, to=[ada], subject="Pricing", html_body="<p>Visit https://example.com/p</p>"
        )

    assert TrackedLink.objects.filter(email=email, url="https://example.com/p").exists()
    html = mail.outbox[-1].alternatives[0][0]
    assert f'<a href="{settings.TRACKING_BASE_URL}/t/c/' in html
    assert ">https://example.com/p</a>" in html  # the text the person reads stays the address
