"""Where inbound mail comes from: a real IMAP mailbox (Dovecot), and ESP webhooks (Anymail)."""

import pytest

from crm.models import EmailMessageRelation
from inbound.models import InboundMessage
from inbound.tasks import poll_inbound_mailbox
from tests.inbound.conftest import POSTMARK, dsn, post_webhook
from tests.inbound.imap_server import (  # noqa: F401 (fixtures)
    dovecot_server_fixture,
    imap_mailbox_fixture,
)


@pytest.mark.services
def test_the_beat_task_reads_the_imap_mailbox_and_marks_what_it_processed(
    sent,
    imap_mailbox,
    settings,
) -> None:
    relation, copy = sent
    settings.INBOUND_IMAP_URL = imap_mailbox.url
    bounce = dsn(
        to=copy.from_email,
        recipient="ada@example.com",
        status="5.1.1",
        diagnostic="550 user unknown",
    )
    stranger = b"From: x@example.org\r\nTo: sales@openrate.test\r\nSubject: Hi\r\n\r\nHello\r\n"
    imap_mailbox.append(bounce)
    imap_mailbox.append(stranger)

    assert poll_inbound_mailbox() == 2

    relation.refresh_from_db()
    assert relation.bounce_category == "hard"
    assert sorted(InboundMessage.objects.values_list("status", flat=True)) == [
        "processed",
        "unmatched",
    ]
    assert all("\\Seen" in message.flags for message in imap_mailbox.messages())
    assert poll_inbound_mailbox() == 0  # nothing new


def test_without_a_mailbox_the_beat_task_does_nothing(settings) -> None:
    settings.INBOUND_IMAP_URL = ""

    assert poll_inbound_mailbox() == 0


def _postmark_bounce(token: str, kind: str = "HardBounce") -> dict:
    """A Postmark bounce webhook body, as Postmark posts it."""
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"openrate_token": token},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "ada@example.com",
        "From": "rita@openrate.example",
        "BouncedAt": "2026-11-23T16:33:54.9070259Z",
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Pricing",
    }


TRACKING = "/anymail/postmark/tracking/"


def test_an_esp_bounce_webhook_is_authenticated_and_recorded(sent, client, mount_esps) -> None:
    relation, copy = sent
    mount_esps(ANYMAIL=POSTMARK)
    token = copy.metadata["openrate_token"]

    forged = post_webhook(client, TRACKING, _postmark_bounce(token), secret="openrate:guess")
    relation.refresh_from_db()
    assert forged.status_code in (400, 403) and relation.bounce_category == ""

    response = post_webhook(client, TRACKING, _postmark_bounce(token))

    assert response.status_code == 200
    relation.refresh_from_db()
    assert (relation.bounce_category, relation.delivery_status) == ("hard", "bounced")
    assert InboundMessage.objects.get().source == "webhook"


def test_an_esp_webhook_for_an_unknown_message_is_kept_unmatched(db, client, mount_esps) -> None:
    mount_esps(ANYMAIL=POSTMARK)

    response = post_webhook(client, TRACKING, _postmark_bounce("not-a-token"))

    assert response.status_code == 200
    assert InboundMessage.objects.get().status == "unmatched"
    assert not EmailMessageRelation.objects.exists()
