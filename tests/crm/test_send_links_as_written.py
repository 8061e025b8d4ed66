"""A sent link goes where the sender's link went: cleaned as browsers clean it, and filled
with each recipient's own merge values when it holds a merge field."""

import re

import pytest
from django.conf import settings
from django.core import mail

from crm.delivery import copy_content
from crm.models import EmailMessageRelation, TrackedLink
from crm.sending import email_send
from mailkit.tokens import signing_keys
from tests.tracking.conftest import call
from tracking.buffer import EventWriter
from tracking.fastpath import LinkCache, TrackingApp


@pytest.fixture
def send(rep, django_capture_on_commit_callbacks):
    def run(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            return email_send(sender=rep, **{"subject": "Hello {{first_name}}", **fields})

    return run


@pytest.fixture
def app(settings):
    """The fast path as deployed, in embedded mode (the database table is its buffer)."""
    settings.REDIS_URL = ""
    return TrackingApp(
        lambda environ, start_response: [],
        keys=signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS),
        writer=EventWriter(None),
        links=LinkCache(),
    )


def _copy(address: str) -> tuple[str, str]:
    (message,) = [m for m in mail.outbox if m.to == [address]]
    return message.alternatives[0][0], message.body


def _click_paths(html: str) -> list[str]:
    base = re.escape(settings.TRACKING_BASE_URL)
    return re.findall(rf'<a href="{base}(/t/c/[^"]+)">', html)


def test_a_link_with_a_newline_or_tab_in_its_href_is_stored_and_redirected_cleaned(
    send, make_contact, app
) -> None:
    html = '<p><a href="https://x.test/spring\n/sale?a=1&#9;&b=2">Sale</a></p>'

    send(to=[make_contact()], html_body=html)

    assert list(TrackedLink.objects.filter(is_honeypot=False).values_list("url", flat=True)) == [
        "https://x.test/spring/sale?a=1&b=2"
    ]
    copy_html, copy_text = _copy("ada@example.com")
    (click,) = _click_paths(copy_html)
    assert call(app, click).headers["Location"] == "https://x.test/spring/sale?a=1&b=2"
    # The text part carries the same tracked link, not the raw one.
    assert settings.TRACKING_BASE_URL + click in copy_text
    assert "x.test" not in copy_text


def test_a_merge_field_in_a_link_is_tracked_in_every_copy_with_each_recipients_value(
    send, make_contact, app
) -> None:
    make_contact(first_name="Ada", email="ada@example.com")
    make_contact(first_name="Alan", last_name="Turing", email="alan@example.com")
    html = (
        '<p>Hi {{first_name}}: <a href="https://x.test/prefs?email={{email}}&n={{first_name}}">'
        'your preferences</a> or <a href="https://x.test/pricing">pricing</a></p>'
    )

    email = send(to=["ada@example.com", "alan@example.com"], html_body=html)

    links = dict(
        TrackedLink.objects.filter(email=email, is_honeypot=False).values_list("url", "pk")
    )
    assert set(links) == {
        "https://x.test/prefs?email=ada@example.com&n=Ada",
        "https://x.test/prefs?email=alan@example.com&n=Alan",
        "https://x.test/pricing",
    }
    for address, name in (("ada@example.com", "Ada"), ("alan@example.com", "Alan")):
        copy_html, copy_text = _copy(address)
        assert "x.test" not in copy_html and "x.test" not in copy_text
        prefs, pricing = _click_paths(copy_html)
        assert call(app, prefs).headers["Location"] == (
            f"https://x.test/prefs?email={address}&n={name}"
        )
        assert call(app, pricing).headers["Location"] == "https://x.test/pricing"
        assert settings.TRACKING_BASE_URL + prefs in copy_text


def test_each_copy_of_an_email_to_several_people_can_be_shown_as_they_read_it(
    send, make_contact
) -> None:
    make_contact(first_name="Ada", email="ada@example.com")
    make_contact(first_name="Alan", last_name="Turing", email="alan@example.com")

    email = send(
        to=["ada@example.com"],
        cc=["alan@example.com"],
        html_body='<p>Hi {{first_name}}, <a href="https://x.test/?e={{email}}">go</a></p>',
    )

    assert "{{first_name}}" in email.html_body  # stored once, with its merge fields
    for address in ("ada@example.com", "alan@example.com"):
        relation = EmailMessageRelation.objects.get(email=email, address=address)
        subject, html, text = copy_content(email, relation)
        (message,) = [m for m in mail.outbox if m.to == [address]]
        assert subject == message.subject
        name = "Ada" if address == "ada@example.com" else "Alan"
        assert html == f'<p>Hi {name}, <a href="https://x.test/?e={address}">go</a></p>'
        assert text.startswith(f"Hi {name}, go (https://x.test/?e={address})")


def test_a_copy_reads_as_sent_after_the_persons_record_changes(send, make_contact) -> None:
    ada = make_contact(first_name="Ada", email="ada@example.com")
    make_contact(first_name="Alan", last_name="Turing", email="alan@example.com")
    email = send(
        to=["ada@example.com"], cc=["alan@example.com"], html_body="<p>Hi {{first_name}}</p>"
    )
    ada.first_name = "Augusta"
    ada.save()

    relation = EmailMessageRelation.objects.get(email=email, address="ada@example.com")
    _, html, _ = copy_content(email, relation)

    assert html == "<p>Hi Ada</p>"  # the values kept at send time, not the record's now
    assert relation.merge_values["first_name"] == "Ada"


def test_an_untracked_recipient_adds_no_link_row_of_their_own(
    send, make_contact, make_individual
) -> None:
    make_contact(first_name="Ada", email="ada@example.com")
    make_contact(
        first_name="Bob",
        email="bob@example.com",
        individual=make_individual(has_opted_out_tracking=True),
    )

    email = send(
        to=["ada@example.com", "bob@example.com"],
        html_body='<a href="https://x.test/?e={{email}}">go</a>',
    )

    assert list(
        TrackedLink.objects.filter(email=email, is_honeypot=False).values_list("url", flat=True)
    ) == ["https://x.test/?e=ada@example.com"]
    bob_html, _ = _copy("bob@example.com")
    assert 'href="https://x.test/?e=bob@example.com"' in bob_html
