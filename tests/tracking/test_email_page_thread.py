"""The email page shows the conversation the email belongs to, each recipient's bounce, and
"Replied" with a link to the reply."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation
from tracking.views import THREAD_PAGE_SIZE

Relation = EmailMessageRelation
THREAD = "root-9@openrate.example"


@pytest.fixture
def ada(make_contact):
    return make_contact(email="ada@example.com")


@pytest.fixture
def start():
    return timezone.now() - timedelta(days=30)


def _email(person, *, when, subject="Pricing", incoming=False, thread=THREAD, **fields):
    """An email between the person's owner and the person, in `thread`."""
    owner = person.owner
    fields = {
        "subject": subject,
        "from_address": person.email if incoming else owner.email,
        "from_name": person.name if incoming else owner.get_full_name(),
        "status": "received" if incoming else "sent",
        "delivery_status": "" if incoming else "sent",
        "incoming": incoming,
        "sender": None if incoming else owner,
        "thread_identifier": thread,
        "message_date": when,
    } | fields
    email = EmailMessage.objects.create(**fields)
    Relation.objects.create(
        email=email,
        relation_type="from" if incoming else "to",
        address=person.email,
        contact=person,
        delivery_status="sent",
    )
    return email


def test_the_conversation_lists_the_thread_oldest_first_with_this_email_marked(
    client_for, rep, other_rep, ada, make_contact, start
) -> None:
    first = _email(ada, when=start, message_identifier=THREAD)
    answer = _email(ada, when=start + timedelta(hours=1), incoming=True, reply_to_message=first)
    follow_up = _email(ada, when=start + timedelta(hours=2), reply_to_message=answer)
    # Another rep's email in the same thread, to their own contact: not this rep's to see.
    _email(make_contact(email="bo@example.org", owner=other_rep), when=start + timedelta(hours=3))
    _email(ada, when=start, thread="another@openrate.example")

    page = client_for(rep).get(answer.get_absolute_url())

    assert list(page.context["thread"]) == [first, answer, follow_up]
    html = page.content.decode()
    assert "Conversation" in html and "3 emails, oldest first" in html
    assert html.count('aria-current="true"') == 1
    assert first.get_absolute_url() in html and follow_up.get_absolute_url() in html


def test_an_email_alone_in_its_thread_shows_no_conversation(client_for, rep, ada, start) -> None:
    alone = _email(ada, when=start)

    page = client_for(rep).get(alone.get_absolute_url())

    assert page.context["thread"] is None
    assert "Conversation" not in page.content.decode()


def test_a_long_conversation_opens_on_the_page_holding_this_email(
    client_for, rep, ada, start
) -> None:
    emails = [_email(ada, when=start + timedelta(minutes=i)) for i in range(THREAD_PAGE_SIZE + 5)]
    client = client_for(rep)
    current = emails[THREAD_PAGE_SIZE + 2]

    page = client.get(current.get_absolute_url())

    thread = page.context["thread"]
    assert thread.number == 2 and current in thread
    assert "?thread_page=1#conversation" in page.content.decode()
    first_page = client.get(f"{current.get_absolute_url()}?thread_page=1").context["thread"]
    assert list(first_page) == emails[:THREAD_PAGE_SIZE]
    for asked, number in (("x", 1), ("99999999999999999999", 2), ("-1", 2), ("²", 1)):
        response = client.get(f"{current.get_absolute_url()}?thread_page={asked}")
        assert response.context["thread"].number == number


def test_the_conversation_costs_the_same_queries_however_long(client_for, rep, ada, start) -> None:
    client = client_for(rep)
    short = [_email(ada, when=start + timedelta(minutes=i)) for i in range(3)]
    client.get(short[1].get_absolute_url())
    with CaptureQueriesContext(connection) as few:
        client.get(short[1].get_absolute_url())
    for i in range(3, THREAD_PAGE_SIZE - 1):
        _email(ada, when=start + timedelta(minutes=i))
    with CaptureQueriesContext(connection) as many:
        client.get(short[1].get_absolute_url())

    assert len(many) == len(few)


def test_each_recipient_shows_its_bounce_class_code_and_diagnostic(
    client_for, rep, ada, start
) -> None:
    email = _email(ada, when=start)
    email.relations.update(
        delivery_status="bounced",
        bounce_category="hard",
        bounce_status="5.1.1",
        bounce_diagnostic="550 5.1.1 <ada@example.com>: Recipient address rejected",
        bounced_at=start + timedelta(minutes=5),
    )
    Relation.objects.create(
        email=email,
        relation_type="cc",
        address="full@example.org",
        delivery_status="bounced",
        bounce_category="soft",
        bounce_status="4.2.2",
        bounce_diagnostic="452 4.2.2 Mailbox full",
    )

    html = client_for(rep).get(email.get_absolute_url()).content.decode()

    assert 'Hard bounce</span> <span class="font-monospace">5.1.1</span>' in html
    assert "550 5.1.1 &lt;ada@example.com&gt;: Recipient address rejected" in html
    assert 'Soft bounce</span> <span class="font-monospace">4.2.2</span>' in html
    assert "452 4.2.2 Mailbox full" in html


def test_a_replied_email_links_to_the_reply(client_for, rep, ada, start) -> None:
    first = _email(ada, when=start, status="replied")
    answer = _email(ada, when=start + timedelta(hours=1), incoming=True, reply_to_message=first)

    html = client_for(rep).get(first.get_absolute_url()).content.decode()

    assert "Replied</span>" in html
    assert f'<a class="small" href="{answer.get_absolute_url()}">reply from Ada Lovelace' in html
