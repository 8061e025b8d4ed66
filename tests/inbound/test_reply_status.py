"""When a reply arrives, the email it answers becomes Replied (Salesforce's Status) and links to
it; an automatic answer changes nothing; a reply to our reply stays in the one conversation."""

from datetime import timedelta
from email.utils import format_datetime

from django.utils import timezone

from crm.models import EmailMessage
from inbound.processing import inbound_mail_process


def _answer(message_id: str, *, body: str, extra: str = "", minutes: int = 1) -> bytes:
    date = format_datetime(timezone.now() + timedelta(minutes=minutes))
    return (
        "From: Ada Lovelace <ada@example.com>\r\nTo: rita@openrate.example\r\n"
        f"Subject: Re: Pricing\r\nMessage-ID: <answer-{abs(hash(body))}@example.com>\r\n"
        f"In-Reply-To: <{message_id}>\r\nDate: {date}\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def test_a_reply_marks_the_original_replied_and_its_page_links_to_it(sent, client_for, rep) -> None:
    relation, _ = sent
    original = relation.email

    reply = inbound_mail_process(
        raw=_answer(relation.message_id, body="Yes please."), source="imap"
    ).created_email

    original.refresh_from_db()
    assert original.status == EmailMessage.Status.REPLIED
    assert reply.reply_to_message == original
    html = client_for(rep).get(original.get_absolute_url()).content.decode()
    assert "Replied</span>" in html
    assert f'href="{reply.get_absolute_url()}">reply from Ada Lovelace' in html


def test_an_auto_reply_leaves_the_original_sent(sent) -> None:
    relation, _ = sent

    inbound_mail_process(
        raw=_answer(
            relation.message_id, body="Out until Monday.", extra="Auto-Submitted: auto-replied\r\n"
        ),
        source="imap",
    )

    relation.email.refresh_from_db()
    assert relation.email.status == EmailMessage.Status.SENT


def test_an_answer_to_our_reply_joins_the_same_conversation(
    sent, client_for, rep, django_capture_on_commit_callbacks
) -> None:
    relation, _ = sent
    EmailMessage.objects.filter(pk=relation.email_id).update(
        message_date=timezone.now() - timedelta(hours=1)
    )
    first = inbound_mail_process(
        raw=_answer(relation.message_id, body="What about volume?", minutes=-10), source="imap"
    ).created_email
    client = client_for(rep)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"{first.get_absolute_url()}?compose=reply",
            {"to": "ada@example.com", "subject": "Re: Pricing", "html_body": "<p>10% off.</p>"},
        )
    ours = EmailMessage.objects.get(reply_to_message=first)
    copy = ours.relations.get(address="ada@example.com")

    second = inbound_mail_process(
        raw=_answer(copy.message_id, body="Deal."), source="imap"
    ).created_email

    assert second.reply_to_message == ours
    ours.refresh_from_db()
    first.refresh_from_db()
    assert (ours.status, first.status) == (EmailMessage.Status.REPLIED, EmailMessage.Status.REPLIED)
    thread = client.get(second.get_absolute_url()).context["thread"]
    assert list(thread) == [relation.email, first, ours, second]
