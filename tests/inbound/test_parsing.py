import json
from email.message import EmailMessage
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from inbound.parsing import FailedRecipient, classify_message, message_content
from inbound.parsing.taxonomy import TAXONOMY, default_status, is_hard

ORIGINAL = (
    b"Message-ID: <orig-1@openrate.example>\r\n"
    b"From: Rita <rita@openrate.example>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: Our quote\r\n"
    b"X-Openrate-Token: tok123\r\n"
)


def _dsn(*recipient_blocks: bytes, original: bytes = ORIGINAL) -> bytes:
    """A Postfix-style RFC 3464 report with one block of fields per recipient."""
    blocks = b"\r\n".join(recipient_blocks)
    return (
        b"From: MAILER-DAEMON@mx.openrate.example (Mail Delivery System)\r\n"
        b"To: rita@openrate.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn-1@mx.openrate.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        b"\r\n--B\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        b"\r\n--B\r\n"
        b"Content-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.openrate.example\r\n\r\n" + blocks + b"\r\n--B\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\n" + original + b"\r\n--B--\r\n"
    )


def _recipient(address: bytes, status: bytes, diagnostic: bytes) -> bytes:
    return (
        b"Final-Recipient: rfc822; " + address + b"\r\n"
        b"Action: failed\r\n"
        b"Status: " + status + b"\r\n"
        b"Diagnostic-Code: smtp; " + diagnostic + b"\r\n"
    )


def _text_bounce(body: str, subject: str = "Mail delivery failed") -> bytes:
    message = EmailMessage()
    message["From"] = "Mail Delivery System <Mailer-Daemon@mx.openrate.example>"
    message["To"] = "rita@openrate.example"
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes()


def _mail(subject: str, body: str, **headers: str) -> bytes:
    headers = {"From": "Bob <bob@example.org>", **headers}
    message = EmailMessage()
    message["To"] = "Rita <rita@openrate.example>"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def test_it_reads_a_standard_dsn():
    raw = _dsn(
        _recipient(
            b"bob@example.org",
            b"5.1.1",
            b"550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown",
        )
    )

    result = classify_message(raw)

    assert result.kind == "bounce"
    assert result.recipients == (
        FailedRecipient(
            address="bob@example.org",
            status="5.1.1",
            reply_code="550",
            diagnostic="550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown",
            hard=True,
            reason="userunknown",
        ),
    )


def test_it_reads_every_recipient_of_a_dsn_in_order():
    raw = _dsn(
        _recipient(b"ann@example.org", b"5.2.2", b"552 5.2.2 Mailbox full"),
        _recipient(b"Bob@Example.org", b"5.1.1", b"550 5.1.1 No such user"),
    )

    recipients = classify_message(raw).recipients

    assert [(r.address, r.reason, r.hard) for r in recipients] == [
        ("ann@example.org", "mailboxfull", False),
        ("bob@example.org", "userunknown", True),
    ]


def test_it_extracts_the_original_message_id():
    result = classify_message(_dsn(_recipient(b"bob@example.org", b"5.1.1", b"550 5.1.1 gone")))

    assert result.message_id == "dsn-1@mx.openrate.example"
    assert result.original_message_id == "orig-1@openrate.example"
    assert result.original_headers["X-Openrate-Token"] == "tok123"
    assert result.original_headers["Subject"] == "Our quote"


def test_it_prefers_the_precise_code_in_the_diagnostic_over_a_generic_status():
    raw = _dsn(_recipient(b"bob@example.org", b"5.0.0", b"550 5.7.1 Message rejected as spam"))

    recipient = classify_message(raw).recipients[0]

    assert (recipient.status, recipient.reason, recipient.hard) == ("5.7.1", "spamdetected", False)


def test_it_reads_an_exim_bounce():
    raw = _text_bounce(
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  bob@example.org\n"
        "    SMTP error from remote mail server after RCPT TO:<bob@example.org>:\n"
        "    host mx.example.org [192.0.2.1]: 550 5.1.1 <bob@example.org>... User unknown\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        "From: rita@openrate.example\nTo: bob@example.org\nMessage-ID: <orig-2@openrate.example>\n"
    )

    result = classify_message(raw)

    assert result.kind == "bounce"
    assert [(r.address, r.status, r.reply_code, r.hard) for r in result.recipients] == [
        ("bob@example.org", "5.1.1", "550", True)
    ]
    assert result.original_message_id == "orig-2@openrate.example"


def test_it_reads_a_qmail_bounce_with_its_status_in_brackets():
    raw = _text_bounce(
        "Hi. This is the qmail-send program at mx.openrate.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<bob@example.org>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n",
        subject="failure notice",
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.address, recipient.status, recipient.reason) == (
        "bob@example.org",
        "5.1.1",
        "userunknown",
    )


def test_it_derives_a_status_from_the_reason_when_the_report_has_none():
    raw = _text_bounce(
        "Sorry, we were unable to deliver your message to the following address.\n\n"
        "<bob@example.org>:\n"
        "This account is over quota.\n"
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.status, recipient.reason, recipient.hard) == ("5.0.922", "mailboxfull", False)


def test_a_temporary_reply_code_gives_a_temporary_derived_status():
    raw = _text_bounce("<bob@example.org>:\nRemote host said: 452 Mailbox full, try later\n")

    recipient = classify_message(raw).recipients[0]

    assert (recipient.status, recipient.reply_code) == ("4.0.922", "452")


def test_a_user_unknown_said_after_data_is_soft():
    raw = _text_bounce(
        "<bob@example.org>: host mx.example.org[192.0.2.1] said: 550 User unknown\n"
        "    (in reply to end of DATA command)\n"
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.hard) == ("filtered", False)


def test_it_treats_a_domain_that_does_not_exist_as_hard():
    raw = _text_bounce(
        "<bob@nowhere.example>: Host or domain name not found. Name service error for\n"
        "    name=nowhere.example type=MX: Host not found\n"
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.status, recipient.hard) == ("hostunknown", "5.0.912", True)


def test_a_dns_failure_that_will_be_retried_is_soft():
    raw = _dsn(_recipient(b"bob@example.org", b"4.4.3", b"DNS Error: Domain name not found"))

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.hard) == ("networkerror", False)


def test_only_a_dead_address_is_hard_whatever_the_reason_table_holds():
    hard = {reason for reason in TAXONOMY if is_hard(reason, "5.0.0")}

    assert hard == {"userunknown", "hostunknown", "hasmoved", "notaccept"}


def test_a_domain_that_accepts_no_mail_for_now_is_soft():
    assert is_hard("notaccept", "5.1.10")
    assert not is_hard("notaccept", "4.3.2")
    assert is_hard("userunknown", "4.1.1")  # the mailbox is gone, even if said temporarily


def test_a_report_without_a_status_gets_its_reasons_default_code():
    assert default_status("mailboxfull", temporary=True) == "4.0.922"
    assert default_status("userunknown", temporary=True) == "5.0.911"
    assert default_status("no-such-reason", temporary=False) == "5.0.0"


def test_a_status_names_its_reason_in_either_class():
    raw = _dsn(
        _recipient(b"bob@example.org", b"5.4.6", b"554 5.4.6 Hop count exceeded"),
        _recipient(b"ann@example.org", b"4.4.6", b"451 4.4.6 Hop count exceeded"),
    )

    reasons = [r.reason for r in classify_message(raw).recipients]

    assert reasons == ["networkerror", "networkerror"]


def test_any_content_status_is_a_content_error():
    raw = _dsn(_recipient(b"bob@example.org", b"5.6.9", b"550 5.6.9 not acceptable here"))

    assert classify_message(raw).recipients[0].reason == "contenterror"


def test_the_reply_code_names_the_reason_when_nothing_else_does():
    raw = _dsn(_recipient(b"bob@example.org", b"4.0.0", b"421 closing transmission channel"))

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.status, recipient.hard) == ("blocked", "4.0.0", False)


def test_a_refusal_at_mail_from_is_about_our_sender():
    raw = _text_bounce(
        "  bob@example.org\n"
        "    SMTP error from remote mail server after MAIL FROM:<rita@openrate.example>:\n"
        "    550 go away\n"
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.hard) == ("rejected", False)


def test_a_security_refusal_at_mail_from_is_a_block_of_the_sending_host():
    raw = _text_bounce(
        "  bob@example.org\n"
        "    SMTP error from remote mail server after MAIL FROM:<rita@openrate.example>:\n"
        "    550 5.7.0 go away\n"
    )

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.status, recipient.hard) == ("blocked", "5.7.0", False)


@pytest.mark.parametrize(
    ("diagnostic", "reason"),
    [
        ("Adresse destinataire inconnue (in reply to RCPT TO command)", "userunknown"),
        ("Empfänger unbekannt (in reply to RCPT TO command)", "userunknown"),
        ("utente sconosciuto (in reply to RCPT TO command)", "userunknown"),
        ("usuario desconocido (in reply to RCPT TO command)", "userunknown"),
        ("552 Boîte aux lettres pleine", "mailboxfull"),
        ("552 Postfach ist voll", "mailboxfull"),
        ("554 No relaying allowed", "norelaying"),
        ("550 unknown domain", "hostunknown"),
        ("554 The domain is unreachable", "hostunknown"),
        ("550 The domain doesn't receive email", "notaccept"),
        ("421 Too many concurrent sessions", "toomanyconn"),
        ("451 Connection rate limit exceeded", "toomanyconn"),
        ("Delivery failed after 12 attempts", "expired"),
        ("This message has been in the queue for a long time", "expired"),
    ],
)
def test_common_reasons_are_recognised_however_the_mta_words_them(
    diagnostic: str, reason: str
) -> None:
    raw = _text_bounce(f"<bob@example.org>:\n{diagnostic}\n")

    recipient = classify_message(raw).recipients[0]

    assert recipient.reason == reason


def test_a_full_mailbox_is_recognised_however_the_mta_words_it():
    raw = _text_bounce("<bob@example.org>:\nThe recipient's inbox has exceeded its limit\n")

    recipient = classify_message(raw).recipients[0]

    assert (recipient.reason, recipient.hard) == ("mailboxfull", False)


def test_html_entities_of_a_bounce_are_read_as_text():
    message = EmailMessage()
    message["From"] = "Mail Delivery System <Mailer-Daemon@mx.openrate.example>"
    message["To"] = "rita@openrate.example"
    message["Subject"] = "Undeliverable"
    message.set_content(
        "<p>Delivery has failed to these recipients:</p>"
        "<p>bob@example.org</p><p>550 5.1.1 User&#39;s mailbox &quot;bob&quot; is unknown</p>",
        subtype="html",
    )

    recipient = classify_message(message.as_bytes()).recipients[0]

    assert (recipient.address, recipient.reason) == ("bob@example.org", "userunknown")


def test_a_pasted_report_ends_where_the_original_message_begins():
    raw = _text_bounce(
        "Final-Recipient: rfc822; bob@example.org\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
        "\n"
        "Received: from mx.openrate.example\n"
        "From: rita@openrate.example\n"
        "Subject: Fwd: an old report\n"
        "\n"
        "Final-Recipient: rfc822; eve@example.org\n"
        "Status: 5.2.2\n"
    )

    assert [r.address for r in classify_message(raw).recipients] == ["bob@example.org"]


def test_message_content_accepts_text_as_well_as_bytes():
    content = message_content("Subject: Hello\r\n\r\nThanks!\r\n")

    assert (content.subject, content.text.strip()) == ("Hello", "Thanks!")


def test_it_reads_an_arf_complaint():
    raw = (
        b"From: feedback@isp.example\r\n"
        b"To: abuse@openrate.example\r\n"
        b"Subject: Abuse Report\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n'
        b"\r\n--F\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"This is an email abuse report.\r\n"
        b"\r\n--F\r\n"
        b"Content-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\n"
        b"User-Agent: SomeGenerator/1.0\r\n"
        b"Version: 1\r\n"
        b"Original-Rcpt-To: bob@example.org\r\n"
        b"\r\n--F\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + ORIGINAL + b"\r\nHello\r\n"
        b"\r\n--F--\r\n"
    )

    result = classify_message(raw)

    assert (result.kind, result.feedback_type) == ("complaint", "abuse")
    assert [(r.address, r.reason, r.hard) for r in result.recipients] == [
        ("bob@example.org", "feedback", False)
    ]
    assert result.original_message_id == "orig-1@openrate.example"


def test_it_reads_an_amazon_ses_bounce_notification():
    notification = {
        "notificationType": "Bounce",
        "bounce": {
            "bouncedRecipients": [
                {
                    "emailAddress": "bob@example.org",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ]
        },
    }
    raw = _mail("AWS Notification Message", json.dumps(notification))

    recipient = classify_message(raw).recipients[0]

    assert (recipient.address, recipient.status, recipient.hard) == (
        "bob@example.org",
        "5.1.1",
        True,
    )


def test_it_recognises_an_out_of_office_reply():
    raw = _mail(
        "Automatic reply: Our quote",
        "I am out of the office until Monday.",
        In_Reply_To="<orig-1@openrate.example>",
    )

    assert classify_message(raw).kind == "auto_reply"


def test_it_recognises_an_rfc_3834_auto_reply_by_its_header():
    raw = _mail("Re: Our quote", "Thanks, got it.", Auto_Submitted="auto-replied")

    assert classify_message(raw).kind == "auto_reply"


def test_it_recognises_a_german_out_of_office_subject():
    raw = _mail("Abwesenheitsnotiz: Our quote", "Ich bin bis Montag nicht im Büro.")

    assert classify_message(raw).kind == "auto_reply"


def test_a_person_saying_they_are_out_of_the_office_is_a_reply():
    raw = _mail(
        "Re: Our quote",
        "Looks good. I'm out of the office next week, so let's talk after.",
        In_Reply_To="<orig-1@openrate.example>",
    )

    assert classify_message(raw).kind == "reply"


def test_it_tells_a_reply_from_a_bounce():
    raw = _mail(
        "Re: Undeliverable: Our quote",
        "Our old address bob@old.example could not be delivered to: 550 5.1.1 User unknown.\n"
        "Please use this one instead.",
        In_Reply_To="<orig-1@openrate.example>",
    )

    result = classify_message(raw)

    assert (result.kind, result.recipients) == ("reply", ())


def test_an_order_update_about_delivery_is_not_a_bounce():
    raw = _mail(
        "Delivery status of your order 550",
        "Your order shipped.\nShipping to: bob@example.org\nQuestions? help@shop.example\n",
        From="Shop <noreply@shop.example>",
    )

    assert classify_message(raw).kind == "other"


def test_a_colleague_forwarding_a_bounce_is_not_a_bounce():
    raw = _mail(
        "Fwd: Undeliverable: Our quote",
        "FYI, see below.\n\nDelivery has failed to these recipients or groups:\n\n"
        "bob@example.org\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound'\n",
        From="Carl <carl@openrate.example>",
    )

    assert classify_message(raw).kind != "bounce"


def test_it_unwraps_a_bounce_forwarded_as_an_attachment():
    inner = _dsn(_recipient(b"bob@example.org", b"5.1.1", b"550 5.1.1 User unknown"))
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@relay.openrate.example>\r\n"
        b"To: rita@openrate.example\r\n"
        b"Subject: Returned mail: User unknown\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="W"\r\n'
        b"\r\n--W\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"The following addresses had permanent delivery errors\r\n"
        b"\r\n--W\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--W--\r\n"
    )

    recipients = classify_message(raw).recipients

    assert [(r.address, r.status, r.hard) for r in recipients] == [
        ("bob@example.org", "5.1.1", True)
    ]


def test_it_reads_the_reply_headers():
    raw = _mail(
        "Re: Our quote",
        "Sounds good.",
        Message_ID="<reply-1@example.org>",
        In_Reply_To="<orig-1@openrate.example>",
        References="<orig-0@openrate.example> <orig-1@openrate.example>",
    )

    result = classify_message(raw)

    assert result.message_id == "reply-1@example.org"
    assert result.in_reply_to == ("orig-1@openrate.example", "orig-0@openrate.example")
    assert (result.from_address, result.subject) == ("bob@example.org", "Re: Our quote")


def test_a_message_that_answers_nothing_is_other():
    result = classify_message(_mail("Hello", "Are you the right person for pricing?"))

    assert result.kind == "other"
    assert result.reason


def test_it_collects_the_addresses_used_for_verp_matching():
    raw = _mail(
        "Hello",
        "Is this still the right address?",
        Delivered_To="Bounces+Tok123@Openrate.example",
        X_Original_To="bounces+tok123@openrate.example",
    )

    assert classify_message(raw).to_addresses == (
        "rita@openrate.example",
        "bounces+tok123@openrate.example",
    )


def test_a_successful_delivery_notice_is_not_a_bounce():
    raw = _dsn(_recipient(b"bob@example.org", b"2.1.5", b"250 2.1.5 Ok"))

    result = classify_message(raw)

    assert result.kind == "other"
    assert result.recipients[0].reason == "delivered"


def test_empty_input_is_unreadable():
    result = classify_message(b"")

    assert (result.kind, result.reason) == ("other", "unreadable: empty message")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_it_never_raises_on_garbage(raw: bytes) -> None:
    result = classify_message(raw)

    assert result.kind in ("bounce", "complaint", "auto_reply", "reply", "other")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_it_never_raises_on_mangled_bounces(noise: str) -> None:
    raw = _dsn(_recipient(b"bob@example.org", b"5.1.1", noise.encode()))

    assert classify_message(raw).kind in ("bounce", "other")


def test_classify_mail_command_prints_json_lines(tmp_path: Path) -> None:
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(_dsn(_recipient(b"bob@example.org", b"5.1.1", b"550 5.1.1 unknown")))
    missing = tmp_path / "missing.eml"
    out = StringIO()

    call_command("classify_mail", str(bounce), str(missing), stdout=out)

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "file": str(bounce),
        "kind": "bounce",
        "recipients": [
            {
                "address": "bob@example.org",
                "status": "5.1.1",
                "reply_code": "550",
                "hard": True,
                "reason": "userunknown",
            }
        ],
        "feedback_type": "",
    }
    assert second["kind"] == "other"
    assert second["reason"].startswith("unreadable")
