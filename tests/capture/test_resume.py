"""A connection dropped mid-fetch: the batches before it are kept, the next sync resumes, and
nothing is lost or stored twice."""

from __future__ import annotations

import pytest

from capture.models import FolderState
from capture.sync import mailbox_sync
from crm.models import EmailMessage
from tests.capture.conftest import connect, mail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_a_sync_cut_mid_fetch_resumes_with_nothing_lost_or_doubled(
    rep, make_contact, imap_box, dropping_proxy
):
    make_contact(email="ada@example.com")
    sent = []
    for n in range(12):
        raw, message_id = mail(
            sender="Ada <ada@example.com>",
            to=["rita@openrate.example"],
            subject=f"Message {n}",
            body="A line of text long enough to take some room on the wire.\n" * 40,
        )
        imap_box.append(raw)
        sent.append(message_id)
    # About half of the mail's bytes get through, then the server "drops" the connection.
    proxy = dropping_proxy(sum(len(m.raw) for m in imap_box.messages()) // 2)
    mailbox = connect(rep, imap_box, port=proxy.port)

    cut = mailbox_sync(mailbox_id=mailbox.pk, batch=3)

    assert proxy.dropped and cut.error
    assert 0 < cut.captured < 12
    mailbox.refresh_from_db()
    assert mailbox.failures_in_a_row == 1 and "connection" in mailbox.last_error
    assert FolderState.objects.get(mailbox=mailbox, role="inbox").last_uid == cut.captured

    resumed = mailbox_sync(mailbox_id=mailbox.pk, batch=3)

    assert not resumed.error and resumed.read == 12 - cut.captured
    identifiers = list(EmailMessage.objects.values_list("message_identifier", flat=True))
    assert sorted(identifiers) == sorted(sent)
    mailbox.refresh_from_db()
    assert (mailbox.failures_in_a_row, mailbox.messages_captured) == (0, 12)
