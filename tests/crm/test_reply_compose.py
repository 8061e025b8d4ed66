"""Reply, Reply all and Forward: the composer opened on an email, and what sending records."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation
from crm.sending import email_send
from crm.views.compose import reply_subject

Relation = EmailMessageRelation


@pytest.fixture
def received(rep, make_contact):
    """Ada's email to Rita, copying Bob: as inbound records a reply (crm only, by hand)."""
    ada = make_contact(email="ada@example.com")
    email = EmailMessage.objects.create(
        subject="Re: RE: Pricing",
        html_body="<p>Send the <b>quote</b>, {{nickname}}.</p><script>alert(1)</script>",
        text_body="Send the quote.",
        from_address="ada@example.com",
        from_name="Ada Lovelace",
        to_addresses="rita@openrate.example",
        cc_addresses="bob@example.org",
        status=EmailMessage.Status.RECEIVED,
        incoming=True,
        message_identifier="answer-1@example.com",
        thread_identifier="root-1@openrate.example",
        message_date=timezone.now() - timedelta(hours=2),
    )
    Relation.objects.bulk_create(
        [
            Relation(email=email, relation_type="from", address="ada@example.com", contact=ada),
            Relation(email=email, relation_type="to", address="rita@openrate.example", user=rep),
            Relation(email=email, relation_type="cc", address="bob@example.org"),
        ]
    )
    return email


@pytest.fixture
def sent_to_two(rep, make_contact, django_capture_on_commit_callbacks):
    """Rita's email to Ada and Carl, copying Dan."""
    ada = make_contact(email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        return email_send(
            sender=rep,
            to=[ada, "carl@example.org"],
            cc=["dan@example.org"],
            subject="Pricing",
            html_body="<p>Our prices</p>",
        )


def _open(client, email, mode):
    return client.get(f"{email.get_absolute_url()}?compose={mode}")


def _send(client, email, mode, django_capture_on_commit_callbacks, **changes):
    """Post the composer as it opened, with `changes`."""
    form = _open(client, email, mode).context["form"]
    data = {name: form[name].value() or "" for name in ("to", "cc", "bcc", "subject", "html_body")}
    data["html_body"] = "<p>Here it is.</p>" + data["html_body"]
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(f"{email.get_absolute_url()}?compose={mode}", data | changes)


def test_reply_answers_the_sender_with_one_re_and_the_message_quoted(
    client_for, rep, received
) -> None:
    page = _open(client_for(rep), received, "reply")

    form = page.context["form"]
    assert (form["to"].value(), form["cc"].value()) == ("ada@example.com", "")
    assert form["subject"].value() == "Re: Pricing"
    body = form["html_body"].value()
    assert "Ada Lovelace &lt;ada@example.com&gt; wrote:</p><blockquote>" in body
    assert "Send the <b>quote</b>" in body
    assert "<script>" not in body and "alert(1)" not in body
    assert (
        "Cancel" in page.content.decode() and received.get_absolute_url() in page.content.decode()
    )


def test_reply_all_answers_every_other_party_but_the_user(client_for, rep, received) -> None:
    form = _open(client_for(rep), received, "reply_all").context["form"]

    assert (form["to"].value(), form["cc"].value()) == ("ada@example.com", "bob@example.org")


def test_reply_all_to_a_sent_email_goes_to_its_recipients_and_keeps_cc(
    client_for, rep, manager, sent_to_two
) -> None:
    mine = _open(client_for(rep), sent_to_two, "reply_all").context["form"]
    # A manager answering a rep's email includes the rep: they are another party.
    theirs = _open(client_for(manager), sent_to_two, "reply_all").context["form"]
    single = _open(client_for(rep), sent_to_two, "reply").context["form"]

    assert (mine["to"].value(), mine["cc"].value()) == (
        "ada@example.com, carl@example.org",
        "dan@example.org",
    )
    assert theirs["to"].value() == "ada@example.com, carl@example.org, rita@openrate.example"
    assert (single["to"].value(), single["cc"].value()) == ("ada@example.com, carl@example.org", "")


def test_forward_starts_with_no_recipient_and_the_forwarded_headers(
    client_for, rep, received
) -> None:
    form = _open(client_for(rep), received, "forward").context["form"]

    assert (form["to"].value(), form["cc"].value()) == ("", "")
    assert form["subject"].value() == "Fwd: Re: RE: Pricing"
    body = form["html_body"].value()
    assert "Forwarded message" in body and "Subject: Re: RE: Pricing" in body
    assert "<blockquote>" in body


@pytest.mark.parametrize(
    ("subject", "forward", "expected"),
    [
        ("Pricing", False, "Re: Pricing"),
        ("Re: Pricing", False, "Re: Pricing"),
        ("RE: re:Re[2]: Pricing", False, "Re: Pricing"),
        ("AW: Pricing", False, "Re: Pricing"),
        ("Fwd: Pricing", False, "Re: Fwd: Pricing"),
        ("Fwd: FW: Pricing", True, "Fwd: Pricing"),
        ("Re: Pricing", True, "Fwd: Re: Pricing"),
        ("", False, "Re: "),
    ],
)
def test_the_subject_gets_one_prefix(subject, forward, expected) -> None:
    assert reply_subject(subject, forward=forward) == expected


def test_sending_a_reply_threads_it_links_the_original_and_marks_it_replied(
    client_for, rep, received, django_capture_on_commit_callbacks
) -> None:
    response = _send(client_for(rep), received, "reply", django_capture_on_commit_callbacks)

    reply = EmailMessage.objects.exclude(pk=received.pk).get()
    assert response["Location"] == reply.get_absolute_url()
    assert reply.reply_to_message == received
    assert reply.thread_identifier == "root-1@openrate.example"
    assert reply.subject == "Re: Pricing"
    assert reply.relations.get(relation_type="to").address == "ada@example.com"
    received.refresh_from_db()
    assert received.status == EmailMessage.Status.REPLIED


def test_someone_elses_words_in_the_quote_are_neither_merged_nor_refused(
    client_for, rep, received, django_capture_on_commit_callbacks
) -> None:
    response = _send(client_for(rep), received, "reply", django_capture_on_commit_callbacks)

    assert response.status_code == 302
    reply = EmailMessage.objects.get(reply_to_message=received)
    assert "nickname}}" in reply.html_body


def test_forwarding_keeps_the_conversation_and_marks_a_received_email_forwarded(
    client_for, rep, received, django_capture_on_commit_callbacks
) -> None:
    _send(
        client_for(rep),
        received,
        "forward",
        django_capture_on_commit_callbacks,
        to="carol@example.org",
    )

    forward = EmailMessage.objects.exclude(pk=received.pk).get()
    assert forward.reply_to_message is None
    assert forward.thread_identifier == received.thread_identifier
    received.refresh_from_db()
    assert received.status == EmailMessage.Status.FORWARDED


def test_replying_to_a_sent_email_leaves_its_status(
    client_for, rep, sent_to_two, django_capture_on_commit_callbacks
) -> None:
    _send(client_for(rep), sent_to_two, "reply", django_capture_on_commit_callbacks)

    sent_to_two.refresh_from_db()
    assert sent_to_two.status == EmailMessage.Status.SENT
    follow_up = EmailMessage.objects.get(reply_to_message=sent_to_two)
    assert follow_up.thread_identifier == sent_to_two.message_identifier


def test_a_user_may_not_answer_an_email_they_may_not_see(
    client_for, other_rep, outsider, received
) -> None:
    client = client_for(other_rep)
    url = f"{received.get_absolute_url()}?compose=reply"

    assert client.get(url).status_code == 404
    posted = client.post(url, {"to": "x@example.org", "subject": "Hi", "html_body": "<p>x</p>"})
    assert posted.status_code == 404
    assert client_for(outsider).get(url).status_code == 403
    assert EmailMessage.objects.count() == 1


def test_a_bad_address_is_explained_and_the_draft_kept(client_for, rep, received) -> None:
    response = client_for(rep).post(
        f"{received.get_absolute_url()}?compose=reply",
        {"to": "not-an-address", "subject": "Re: Pricing", "html_body": "<p>Draft</p>"},
    )

    assert response.context["form"].errors["to"] == ["Not an email address: not-an-address."]
    assert b"Draft" in response.content
    assert EmailMessage.objects.count() == 1


def test_an_unknown_mode_shows_the_email_page(client_for, rep, received) -> None:
    page = client_for(rep).get(f"{received.get_absolute_url()}?compose=delete")

    assert page.status_code == 200 and "form" not in page.context


def test_the_email_page_and_a_timeline_entry_offer_the_answers(client_for, rep, received) -> None:
    client = client_for(rep)
    contact = received.relations.get(relation_type="from").contact

    for page in (client.get(received.get_absolute_url()), client.get(contact.get_absolute_url())):
        html = page.content.decode()
        for mode in ("reply", "reply_all", "forward"):
            assert f"?compose={mode}" in html
    timeline = client.get(reverse("crm:timeline", args=["contact", contact.pk])).content.decode()
    assert f"{received.get_absolute_url()}?compose=reply_all" in timeline
