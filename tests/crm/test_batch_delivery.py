"""A batch of emails delivered together (a list email's, a sequence's): claimed a group at a time
in one UPDATE, each group's outcomes written in a few statements before the next is claimed, and
what was never handed over goes back to Pending."""

import datetime as dt

import pytest
from django.core import mail
from django.core.mail.backends import locmem

import crm.delivery
from crm.delivery import DeliveryDeferred, emails_deliver
from crm.models import EmailMessageRelation, OrgSettings
from crm.sending import emails_send_each
from crm.sql import rows_update

Relation = EmailMessageRelation


@pytest.fixture
def people(make_contact):
    return [
        make_contact(first_name=f"P{i}", last_name="Person", email=f"p{i}@example.com")
        for i in range(4)
    ]


def _copies(emails):
    return Relation.objects.filter(email__in=emails, relation_type=Relation.Type.TO).order_by(
        "address"
    )


def test_a_batch_claimed_together_is_sent_once_and_each_copy_keeps_its_outcome(
    rep, people, smtp_server
) -> None:
    smtp_server.refuse = {"p2@example.com": "550 5.1.1 No such user"}
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")

    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)
    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)  # nothing left

    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == [
        "p0@example.com",
        "p1@example.com",
        "p3@example.com",
    ]
    outcomes = list(_copies(emails).values_list("delivery_status", "refusal_reason"))
    assert outcomes[2] == ("failed", "550 5.1.1 No such user")
    assert [o[0] for o in outcomes] == ["sent", "sent", "failed", "sent"]
    assert all(c.sent_at for c in _copies(emails).filter(delivery_status="sent"))


def test_copies_claimed_together_but_not_reached_go_back_to_pending(
    rep, people, smtp_server
) -> None:
    # The server defers the second copy: the loop stops there.
    smtp_server.refuse = {"p1@example.com": "451 4.7.1 Try later"}
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")

    with pytest.raises(DeliveryDeferred):
        emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    statuses = list(_copies(emails).values_list("address", "delivery_status"))
    assert statuses == [
        ("p0@example.com", "sent"),
        ("p1@example.com", "pending"),  # deferred: tried again later
        ("p2@example.com", "pending"),  # never reached: not left Sending
        ("p3@example.com", "pending"),
    ]
    smtp_server.refuse = {}
    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)
    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
        "p3@example.com",
    ]  # each once


def test_copies_claimed_together_are_claimed_and_recorded_a_group_at_a_time(
    rep, people, monkeypatch
) -> None:
    monkeypatch.setattr(crm.delivery, "CLAIM_GROUP", 2)
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")
    seen = []

    class Watching(locmem.EmailBackend):
        def send_messages(self, messages):
            # What a worker killed at this moment would leave.
            seen.append(list(_copies(emails).values_list("delivery_status", flat=True)))
            return super().send_messages(messages)

    monkeypatch.setattr(crm.delivery, "get_connection", Watching)
    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    assert seen == [
        ["sending", "sending", "pending", "pending"],
        ["sending", "sending", "pending", "pending"],
        ["sent", "sent", "sending", "sending"],
        ["sent", "sent", "sending", "sending"],
    ]
    assert set(_copies(emails).values_list("delivery_status", flat=True)) == {"sent"}
    assert len(mail.outbox) == 4


def test_a_deferral_in_a_later_group_puts_back_what_was_not_sent(
    rep, people, make_contact, smtp_server, monkeypatch
) -> None:
    monkeypatch.setattr(crm.delivery, "CLAIM_GROUP", 2)
    # The server defers the first copy of the second group.
    smtp_server.refuse = {"p2@example.com": "451 4.7.1 Try later"}
    people.append(make_contact(email="p4@example.com"))
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")

    with pytest.raises(DeliveryDeferred):
        emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    assert list(_copies(emails).values_list("address", "delivery_status")) == [
        ("p0@example.com", "sent"),
        ("p1@example.com", "sent"),
        ("p2@example.com", "pending"),  # deferred
        ("p3@example.com", "pending"),  # claimed with it, not reached: put back
        ("p4@example.com", "pending"),  # in a group never claimed
    ]


def test_an_error_while_rendering_releases_the_copies_not_yet_handed_over(
    rep, people, settings, monkeypatch
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")
    import crm.delivery

    real = crm.delivery._render_copy
    calls = []

    def render(email, relation, **kwargs):
        calls.append(relation.pk)
        if len(calls) == 3:
            raise RuntimeError("a bug")
        return real(email, relation, **kwargs)

    monkeypatch.setattr(crm.delivery, "_render_copy", render)
    with pytest.raises(RuntimeError):
        emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    assert len(mail.outbox) == 2
    assert list(_copies(emails).values_list("delivery_status", flat=True)) == [
        "sent",
        "sent",
        "pending",
        "pending",
    ]


def test_the_text_part_made_once_reads_as_each_persons_own(rep, make_contact) -> None:
    OrgSettings.objects.update(email_tracking_enabled=True)
    body = (
        "<p>Hi {{first_name}} &amp; welcome,</p>"
        '<p>Your company: <b>{{company}}</b>. <a href="https://example.com/a">Read</a></p>'
        "<ul><li>{{name}}</li><li>{{email}}</li></ul><p>{{sender_name}}</p>"
    )
    odd = make_contact(first_name="Zoë <Zed>", last_name="O'Brien & Co", email="z@example.com")
    plain = make_contact(first_name="Ann", last_name="Lee", email="ann@example.com")
    emails = emails_send_each(sender=rep, people=[odd, plain], subject="Hi", html_body=body)

    from mailkit.rewrite import html_to_text

    for email in emails:
        assert email.text_body == html_to_text(email.html_body)
    assert "Hi Zoë <Zed> & welcome," in emails[0].text_body


def test_rows_update_gives_each_row_its_own_values_nulls_and_times_included(
    rep, people, smtp_server
) -> None:
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")
    copies = list(_copies(emails))
    when = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
    rows_update(
        Relation,
        ["delivery_status", "refusal_reason", "sent_at"],
        [
            (copies[0].pk, "sent", "", when),
            (copies[1].pk, "failed", "550 gone", None),
            (copies[2].pk, "sent", "", when + dt.timedelta(seconds=1)),
        ],
    )
    assert list(_copies(emails).values_list("delivery_status", "refusal_reason", "sent_at")) == [
        ("sent", "", when),
        ("failed", "550 gone", None),
        ("sent", "", when + dt.timedelta(seconds=1)),
        ("pending", "", None),  # not named: unchanged
    ]


def test_a_name_with_a_line_break_reaches_its_person_on_one_line(rep, make_contact) -> None:
    """A name from an import's multi-line cell: a header cannot hold the line break, so it is
    read as a space (in To and in a subject it is merged into) rather than failing the copy."""
    person = make_contact(first_name="Bo\r\n b", last_name="Two", email="p1@example.com")
    emails = emails_send_each(
        sender=rep, people=[person], subject="Hi {{first_name}}", html_body="<p>Hi</p>"
    )

    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    assert _copies(emails).get().delivery_status == "sent"
    message = mail.outbox[0].message()
    assert (message["To"], message["Subject"]) == ("Bo b Two <p1@example.com>", "Hi Bo b")


def test_a_copy_that_cannot_be_built_fails_alone_and_the_rest_go_out(
    rep, people, smtp_server
) -> None:
    """A copy whose own data cannot make a message (here an address with a header after a line
    break, written around the forms) fails with the reason; the batch does not stop at it and
    leave it Pending to stop every retry too."""
    emails = emails_send_each(sender=rep, people=people, subject="Hi", html_body="<p>Hi</p>")
    Relation.objects.filter(address="p1@example.com").update(
        address="p1@example.com\nBcc: someone@example.net"
    )

    emails_deliver(email_ids=[e.pk for e in emails], claim_together=True)

    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == [
        "p0@example.com",
        "p2@example.com",
        "p3@example.com",
    ]
    outcomes = list(_copies(emails).values_list("delivery_status", "refusal_reason"))
    assert [o[0] for o in outcomes] == ["sent", "failed", "sent", "sent"]
    assert outcomes[1][1].startswith("This copy could not be built:")


def test_an_email_with_a_copy_left_unconfirmed_is_finished_not_left_queued(
    rep, people, settings
) -> None:
    """copies_unconfirm gives the email a delivery status: Unconfirmed when no copy of it went
    out, Partly sent beside one that did, the unconfirmed address named as a failed one is."""
    from crm.delivery import UNCONFIRMED, copies_unconfirm
    from crm.models import EmailMessage
    from crm.sending import email_send

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alone = emails_send_each(sender=rep, people=people[:1], subject="Hi", html_body="<p>Hi</p>")[0]
    shared = email_send(sender=rep, to=people[1:3], subject="Hi", html_body="<p>Hi</p>")
    Relation.objects.filter(email__in=[alone, shared], relation_type="to").update(
        delivery_status="sending"
    )
    Relation.objects.filter(email=shared, address="p1@example.com").update(delivery_status="sent")

    assert copies_unconfirm(email_ids=[alone.pk, shared.pk]) == 2
    assert copies_unconfirm(email_ids=[alone.pk, shared.pk]) == 0  # marked once

    alone.refresh_from_db()
    shared.refresh_from_db()
    assert alone.delivery_status == EmailMessage.Delivery.UNCONFIRMED
    assert alone.failure_reason == f"p0@example.com: {UNCONFIRMED}"
    assert shared.delivery_status == EmailMessage.Delivery.PARTIAL
    assert shared.failure_reason == f"p2@example.com: {UNCONFIRMED}"
    assert shared.status == EmailMessage.Status.SENT and shared.message_date
