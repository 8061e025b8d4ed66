"""A reply keeps the conversation together in each recipient's mail program: the copy each one
gets over SMTP names, in In-Reply-To and References, the Message-IDs that recipient holds."""

from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation
from crm.sending import email_send
from tests.tracking.conftest import smtp_server  # noqa: F401 -- the loopback SMTP server

Relation = EmailMessageRelation


def _send(django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return email_send(html_body="<p>Hi</p>", **fields)


def _copy_id(email, address: str) -> str:
    return email.relations.get(address=address).message_id


def test_each_recipient_of_a_reply_all_gets_the_id_of_their_own_copy(
    smtp_server,  # noqa: F811
    rep,
    make_contact,
    django_capture_on_commit_callbacks,
) -> None:
    ada = make_contact(email="ada@example.com")
    first = _send(
        django_capture_on_commit_callbacks,
        sender=rep,
        to=[ada, "carl@example.org"],
        subject="Pricing",
    )
    smtp_server.messages.clear()

    reply = _send(
        django_capture_on_commit_callbacks,
        sender=rep,
        to=[ada, "carl@example.org"],
        subject="Re: Pricing",
        reply_to=first,
    )

    for address in ("ada@example.com", "carl@example.org"):
        message = smtp_server.for_address(address)
        own = _copy_id(first, address)
        assert message["In-Reply-To"] == f"<{own}>"
        assert message["References"] == f"<{own}>"
        assert message["Message-ID"] == f"<{_copy_id(reply, address)}>"
    assert _copy_id(first, "ada@example.com") != _copy_id(first, "carl@example.org")


def test_answering_a_received_reply_names_it_and_the_copy_it_answered(
    smtp_server,  # noqa: F811
    rep,
    make_contact,
    django_capture_on_commit_callbacks,
) -> None:
    ada = make_contact(email="ada@example.com")
    first = _send(django_capture_on_commit_callbacks, sender=rep, to=[ada], subject="Pricing")
    answer = EmailMessage.objects.create(
        subject="Re: Pricing",
        from_address="ada@example.com",
        status=EmailMessage.Status.RECEIVED,
        incoming=True,
        message_identifier="answer-7@example.com",
        thread_identifier=first.thread_identifier,
        reply_to_message=first,
        message_date=timezone.now(),
    )
    Relation.objects.create(email=answer, relation_type="from", address="ada@example.com")
    smtp_server.messages.clear()

    _send(
        django_capture_on_commit_callbacks,
        sender=rep,
        to=[ada, "boss@example.org"],
        subject="Re: Pricing",
        reply_to=answer,
    )

    to_ada = smtp_server.for_address("ada@example.com")
    assert to_ada["In-Reply-To"] == "<answer-7@example.com>"
    assert to_ada["References"] == f"<{_copy_id(first, 'ada@example.com')}> <answer-7@example.com>"
    # Boss never had a copy of the first email: the thread is named by the email's own id.
    to_boss = smtp_server.for_address("boss@example.org")
    assert to_boss["References"] == f"<{first.message_identifier}> <answer-7@example.com>"


def test_a_new_email_and_a_forward_carry_no_threading_headers(
    smtp_server,  # noqa: F811
    rep,
    make_contact,
    django_capture_on_commit_callbacks,
) -> None:
    ada = make_contact(email="ada@example.com")
    first = _send(django_capture_on_commit_callbacks, sender=rep, to=[ada], subject="Pricing")
    _send(
        django_capture_on_commit_callbacks,
        sender=rep,
        to=["carol@example.org"],
        subject="Fwd: Pricing",
        reply_to=first,
        forward=True,
    )

    for message in (
        smtp_server.for_address("ada@example.com"),
        smtp_server.for_address("carol@example.org"),
    ):
        assert message["In-Reply-To"] is None and message["References"] is None
