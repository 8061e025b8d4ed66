"""One token, one purpose: the pixel and click token records opens and clicks and nothing
else; unsubscribing and matching what comes back need tokens of their own. Copies sent before
tokens had purposes keep working with the one token they carry."""

import pytest
from django.core import mail
from django.test import Client

from campaigns.members import members_add
from crm.delivery import verp_address
from crm.models import EmailMessageRelation
from crm.tokens import relation_for_token, token_for
from inbound.processing import inbound_mail_process
from mailkit.tokens import Purpose, configured_keys, parse_token, purpose_keys, to_verp

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def copy(campaign, make_contact, send_list_email, settings):
    settings.INBOUND_VERP_DOMAIN = "bounces.openrate.test"
    ada = make_contact(email="ada@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk])
    send_list_email(campaign)
    (message,) = mail.outbox
    return EmailMessageRelation.objects.get(contact=ada), message


def _pixel_token(message) -> str:
    html = message.alternatives[0][0]
    return html.split("/t/o/")[1].split(".gif")[0]


def _bounce(verp: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.net>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; ada@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--b--\r\n"
    ).encode()


def test_each_purpose_signs_with_its_own_keys_and_tracking_keeps_the_configured_ones():
    keys = (b"new", b"old")

    assert purpose_keys(keys, Purpose.TRACK) == keys
    unsubscribe = purpose_keys(keys, Purpose.UNSUBSCRIBE)
    returned = purpose_keys(keys, Purpose.RETURN)
    assert len({*keys, *unsubscribe, *returned}) == 6


def test_the_copy_carries_a_different_token_for_each_purpose(copy):
    relation, message = copy
    pixel = _pixel_token(message)
    header = message.extra_headers["X-Openrate-Token"]
    unsubscribe = message.extra_headers["List-Unsubscribe"].split("/unsubscribe/")[1].split("/")[0]

    assert len({pixel, header, unsubscribe}) == 3
    assert message.from_email == verp_address(header)
    # The return and unsubscribe tokens record no open: the fast path's keys refuse them.
    assert parse_token(header, keys=configured_keys()) is None
    assert parse_token(unsubscribe, keys=configured_keys()) is None
    assert parse_token(pixel, keys=configured_keys()).recipient_id == relation.pk


def test_whoever_sees_the_image_url_cannot_unsubscribe_the_recipient(copy):
    relation, message = copy

    response = Client().post(
        f"/unsubscribe/{_pixel_token(message)}/", data=ONE_CLICK, content_type=FORM
    )

    assert response.status_code == 404
    relation.contact.refresh_from_db()
    assert not relation.contact.has_opted_out_of_email


def test_the_unsubscribe_token_unsubscribes(copy):
    relation, _ = copy
    token = token_for(relation.pk, Purpose.UNSUBSCRIBE)

    response = Client().post(f"/unsubscribe/{token}/", data=ONE_CLICK, content_type=FORM)

    assert response.status_code == 200
    relation.contact.refresh_from_db()
    assert relation.contact.has_opted_out_of_email


def test_a_bounce_to_the_image_tokens_verp_address_matches_nothing(copy):
    relation, message = copy
    verp = f"bounces+{to_verp(_pixel_token(message))}@bounces.openrate.test"

    inbound = inbound_mail_process(raw=_bounce(verp), source="imap")

    assert inbound.relation is None
    relation.refresh_from_db()
    assert relation.bounce_category == ""


def test_a_copy_sent_before_purposes_still_answers_to_its_one_token(copy):
    relation, message = copy
    EmailMessageRelation.objects.filter(pk=relation.pk).update(tokens_by_purpose=False)
    old_token = _pixel_token(message)  # what its List-Unsubscribe, header and VERP carried

    assert relation_for_token(old_token, Purpose.RETURN) == relation
    response = Client().post(f"/unsubscribe/{old_token}/", data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    relation.contact.refresh_from_db()
    assert relation.contact.has_opted_out_of_email


def test_a_link_token_is_never_a_message_token(copy):
    relation, _ = copy

    assert (
        relation_for_token(token_for(relation.pk, Purpose.UNSUBSCRIBE, 7), Purpose.UNSUBSCRIBE)
        is None
    )
    assert relation_for_token("garbage", Purpose.RETURN) is None
    assert relation_for_token("", Purpose.RETURN) is None
