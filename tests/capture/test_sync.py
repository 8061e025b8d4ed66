"""Syncing real mailboxes on Dovecot: what is captured, what is kept out, and nothing twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail as django_mail
from django.utils import timezone

from capture.models import CapturedAttachment, CapturedMessage, FolderState
from capture.sync import mailbox_sync
from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, Task
from crm.sending import email_send
from tests.capture.conftest import connect, mail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

RITA = "Rita Rep <rita@openrate.example>"
ADA = "Ada Lovelace <ada@example.com>"


@pytest.fixture
def people(rep, other_rep, make_contact, make_lead, make_individual):
    org = OrgSettings.load()
    org.internal_addresses = "openrate.example"
    org.capture_excluded_addresses = "bank.example"
    org.enforce_email_privacy = True
    org.save()
    dan_flags = make_individual(last_name="Dan", has_opted_out_processing=True)
    return {
        "ada": make_contact(first_name="Ada", email="Ada@Example.com"),
        "grace": make_lead(first_name="Grace", email="grace@example.com"),
        "dan": make_contact(first_name="Dan", email="dan@example.com", individual=dan_flags),
        "bob": make_contact(first_name="Bob", email="bob@customer.example", owner=other_rep),
    }


def _captured(user):
    return EmailMessage.objects.filter(captured_for=user, source=EmailMessage.Source.CAPTURED)


def test_it_captures_a_conversation_from_the_inbox_and_the_sent_folder(rep, people, imap_box):
    question, root = mail(sender=ADA, to=[RITA], subject="Pricing question")
    answer, answer_id = mail(
        sender=RITA,
        to=[ADA],
        cc=["Grace <grace@example.com>"],
        subject="Re: Pricing question",
        replying_to=[root],
    )
    follow_up, _ = mail(
        sender=ADA,
        to=[RITA],
        subject="Re: Pricing question",
        replying_to=[root, answer_id],
        attachments=[("terms.pdf", b"%PDF-1.4 terms")],
    )
    imap_box.append(question)
    imap_box.append(follow_up)
    imap_box.append(answer, folder="Sent", seen=True)
    mailbox = connect(rep, imap_box)
    assert mailbox.sent_folder == "Sent"  # found by its \Sent flag (RFC 6154)

    result = mailbox_sync(mailbox_id=mailbox.pk)

    assert result.captured == 3 and not result.error
    emails = _captured(rep).order_by("message_date", "pk")
    assert [e.incoming for e in emails] == [True, True, False]
    assert {e.thread_identifier for e in emails} == {root}
    sent = emails.get(incoming=False)
    assert sent.sender == rep and not sent.is_tracked
    assert set(sent.relations.exclude(user=rep).values_list("contact", "lead")) == {
        (people["ada"].pk, None),
        (None, people["grace"].pk),
    }
    received = emails.filter(incoming=True).last()
    assert received.relations.get(relation_type="from").contact == people["ada"]
    attachment = CapturedAttachment.objects.get(email=received)
    assert (attachment.name, attachment.size, attachment.content) == ("terms.pdf", 14, None)
    # Read without a trace: the user's unread mail stays unread.
    assert all("\\Seen" not in m.flags for m in imap_box.messages())
    mailbox.refresh_from_db()
    assert mailbox.messages_captured == 3 and mailbox.last_success_at is not None


def test_it_keeps_out_what_must_not_be_captured(rep, people, imap_box, caplog):
    kept_out = [
        mail(sender="Otto <otto@openrate.example>", to=[RITA], subject="Lunch?"),  # internal
        mail(sender="alerts@bank.example", to=[RITA], cc=[ADA], subject="Statement"),  # excluded
        mail(sender="Dan <dan@example.com>", to=[RITA], subject="Hi"),  # Don't Process
        mail(sender="Dan <dan@example.com>", to=[RITA], cc=[ADA], subject="Hi both"),
        mail(sender="Bob <bob@customer.example>", to=[RITA], subject="Quote"),  # not hers
        mail(sender="news@random.example", to=[RITA], subject="Newsletter"),  # nobody
    ]
    for raw, _ in kept_out:
        imap_box.append(raw)
    imap_box.append(b"this is not an email at all\r\n")
    kept, _ = mail(sender=ADA, to=[RITA], subject="Still there")
    imap_box.append(kept)
    mailbox = connect(rep, imap_box)

    result = mailbox_sync(mailbox_id=mailbox.pk)

    assert result.captured == 1 and result.unreadable == 1 and not result.error
    assert list(_captured(rep).values_list("subject", flat=True)) == ["Still there"]
    assert result.skipped == {
        "internal only": 1,
        "excluded by Setup": 1,
        "Don't Process": 2,
        "no contact or lead": 2,
    }
    assert "is not readable mail" in caplog.text
    assert not EmailMessageRelation.objects.filter(contact=people["dan"]).exists()


def test_two_users_each_capture_their_own_and_a_shared_message_once(
    rep, other_rep, people, imap_server
):
    ritas, ottos = imap_server.mailbox(), imap_server.mailbox()
    both, both_id = mail(
        sender=ADA,
        to=[RITA],
        cc=["otto@openrate.example", "bob@customer.example"],
        subject="Kick-off",
    )
    ritas.append(both)
    ottos.append(both)
    quote, _ = mail(sender="Bob <bob@customer.example>", to=["otto@openrate.example"], subject="Q")
    ottos.append(quote)
    rita_box, otto_box = connect(rep, ritas), connect(other_rep, ottos)

    assert mailbox_sync(mailbox_id=rita_box.pk).captured == 1
    assert mailbox_sync(mailbox_id=otto_box.pk).captured == 1

    assert EmailMessage.objects.filter(message_identifier=both_id).count() == 1
    assert list(_captured(other_rep).values_list("subject", flat=True)) == ["Q"]
    assert CapturedMessage.objects.filter(message_id=both_id).count() == 2


def test_openrates_own_sent_copy_is_not_stored_twice_and_a_reply_to_it_marks_it_replied(
    rep, people, imap_box, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent = email_send(sender=rep, to=[people["ada"]], subject="Proposal", html_body="<p>Hi</p>")
    copy = sent.relations.get(contact=people["ada"])
    imap_box.append(django_mail.outbox[-1].message().as_bytes(), folder="Sent")
    reply, _ = mail(
        sender=ADA,
        to=[RITA],
        subject="Re: Proposal",
        replying_to=[copy.message_id],
        body="Looks good, let's sign.",
    )
    imap_box.append(reply)
    mailbox = connect(rep, imap_box)

    result = mailbox_sync(mailbox_id=mailbox.pk)

    assert result.captured == 1
    assert EmailMessage.objects.filter(subject="Proposal").count() == 1
    copy.refresh_from_db()
    sent.refresh_from_db()
    assert copy.replied_at is not None and sent.status == EmailMessage.Status.REPLIED
    answer = EmailMessage.objects.get(subject="Re: Proposal")
    assert (answer.source, answer.captured_for, answer.reply_to_message) == ("captured", rep, sent)
    assert answer.thread_identifier == sent.thread_identifier
    assert Task.objects.filter(owner=rep, subject__startswith="Ada Lovelace replied").exists()


def test_a_later_sync_reads_only_new_mail_and_a_new_uidvalidity_duplicates_nothing(
    rep, people, imap_box
):
    first, _ = mail(sender=ADA, to=[RITA], subject="One")
    imap_box.append(first)
    mailbox = connect(rep, imap_box)
    assert mailbox_sync(mailbox_id=mailbox.pk).captured == 1

    second, _ = mail(sender=ADA, to=[RITA], subject="Two")
    imap_box.append(second)
    again = mailbox_sync(mailbox_id=mailbox.pk)
    assert (again.read, again.captured) == (1, 1)
    assert mailbox_sync(mailbox_id=mailbox.pk).read == 0

    # The server renumbers the folder (a restore, a migration): the same mail, new UIDs.
    conn = imap_box.connect()
    conn.create('"Work"')
    conn.logout()
    for raw in (first, second):
        imap_box.append(raw, folder="Work")
    mailbox.inbox_folder = "Work"
    mailbox.save(update_fields=["inbox_folder"])
    state = FolderState.objects.get(mailbox=mailbox, role="inbox")
    renumbered = mailbox_sync(mailbox_id=mailbox.pk)

    assert (renumbered.read, renumbered.captured) == (2, 0)
    assert FolderState.objects.get(pk=state.pk).uidvalidity != state.uidvalidity
    assert _captured(rep).count() == 2


def test_the_first_sync_reaches_back_setups_days(rep, people, imap_box):
    org = OrgSettings.load()
    org.capture_reach_back_days = 10
    org.save()
    old, _ = mail(sender=ADA, to=[RITA], subject="Old", when=timezone.now() - timedelta(days=40))
    new, _ = mail(sender=ADA, to=[RITA], subject="New")
    conn = imap_box.connect()
    conn.append('"INBOX"', None, timezone.now() - timedelta(days=40), old)
    conn.logout()
    imap_box.append(new)
    mailbox = connect(rep, imap_box)

    mailbox_sync(mailbox_id=mailbox.pk)

    assert list(_captured(rep).values_list("subject", flat=True)) == ["New"]


def test_mail_marked_private_is_never_captured_and_is_removed_once_marked(rep, people, imap_box):
    flagged, _ = mail(sender=ADA, to=[RITA], subject="Personal")
    uid = imap_box.append(flagged)
    conn = imap_box.connect()
    conn.select('"INBOX"')
    conn.uid("STORE", str(uid), "+FLAGS", "($Private)")
    conn.logout()
    later, later_id = mail(sender=ADA, to=[RITA], subject="Also personal, filed later")
    imap_box.append(later)
    mailbox = connect(rep, imap_box)
    mailbox.private_folder = "Private"
    mailbox.save(update_fields=["private_folder"])

    mailbox_sync(mailbox_id=mailbox.pk)
    assert list(_captured(rep).values_list("subject", flat=True)) == ["Also personal, filed later"]

    imap_box.append(later, folder="Private")  # the user files it in their private folder
    mailbox_sync(mailbox_id=mailbox.pk)

    assert not _captured(rep).exists()
    assert CapturedMessage.objects.get(user=rep, message_id=later_id).outcome == "private"


def test_attachment_contents_are_kept_only_when_setup_says_and_within_the_limit(
    rep, people, imap_box
):
    org = OrgSettings.load()
    org.capture_attachment_contents = True
    org.capture_attachment_max_kb = 1
    org.save()
    raw, _ = mail(
        sender=ADA,
        to=[RITA],
        subject="Files",
        attachments=[("small.pdf", b"x" * 100), ("big.pdf", b"y" * 2000)],
    )
    imap_box.append(raw)
    mailbox = connect(rep, imap_box)

    mailbox_sync(mailbox_id=mailbox.pk)

    kept = dict(CapturedAttachment.objects.values_list("name", "content"))
    assert bytes(kept["small.pdf"]) == b"x" * 100 and kept["big.pdf"] is None
