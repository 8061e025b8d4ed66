"""The send pipeline's rules: Setup, limits, privacy per recipient, one copy per recipient."""

import re

import pytest
from django.core import mail

from crm.models import (
    DailySendCount,
    EmailMessage,
    EmailMessageRelation,
    OrgSettings,
    Task,
    TrackedLink,
)
from crm.sending import SendRefused, email_send

HTML = (
    "<html><body><p>Hello {{first_name}},</p>"
    '<p>See <a href="https://example.com/pricing">our pricing</a> and '
    '<a href="mailto:sales@example.com">write to us</a>.</p></body></html>'
)


@pytest.fixture
def send(rep, django_capture_on_commit_callbacks):
    def run(**overrides):
        fields = {"sender": rep, "subject": "Hello {{first_name}}", "html_body": HTML}
        with django_capture_on_commit_callbacks(execute=True):
            return email_send(**{**fields, **overrides})

    return run


def _setup(**changes) -> None:
    org = OrgSettings.load()
    for name, value in changes.items():
        setattr(org, name, value)
    org.save()


def _copy_for(address: str) -> mail.EmailMultiAlternatives:
    (message,) = [m for m in mail.outbox if m.to == [address]]
    return message


def test_each_recipient_gets_their_own_tracked_copy(send, make_contact) -> None:
    ada = make_contact(first_name="Ada", email="ada@example.com")
    alan = make_contact(first_name="Alan", last_name="Turing", email="alan@example.com")

    email = send(to=[ada], cc=[alan])

    assert len(mail.outbox) == 2
    ada_copy, alan_copy = _copy_for("ada@example.com"), _copy_for("alan@example.com")
    assert ada_copy.subject == "Hello Ada" and alan_copy.subject == "Hello Alan"
    ada_html, alan_html = ada_copy.alternatives[0][0], alan_copy.alternatives[0][0]
    ada_pixel = re.search(r'src="(https://t\.openrate\.test/t/o/[^"]+\.gif)"', ada_html)[1]
    alan_pixel = re.search(r'src="(https://t\.openrate\.test/t/o/[^"]+\.gif)"', alan_html)[1]
    assert ada_pixel != alan_pixel
    assert 'href="mailto:sales@example.com"' in ada_html
    assert "https://example.com/pricing" not in ada_html
    assert ada_copy.extra_headers["To"] == "Ada Lovelace <ada@example.com>"
    assert ada_copy.extra_headers["Cc"] == "Alan Turing <alan@example.com>"
    email.refresh_from_db()
    assert (email.status, email.delivery_status, email.is_tracked) == ("sent", "sent", True)
    assert email.message_date is not None


def test_it_stores_each_destination_once_and_a_hidden_honeypot(send, make_contact) -> None:
    html = HTML.replace("</body>", '<a href="https://example.com/pricing">again</a></body>')

    email = send(to=[make_contact()], html_body=html)

    links = list(email.tracked_links.values_list("url", "position", "is_honeypot"))
    assert links == [
        ("https://example.com/pricing", 0, False),
        ("https://t.openrate.test/", 1, True),
    ]


def test_a_relation_row_records_every_address_with_its_record(
    send, make_contact, make_lead, rep
) -> None:
    contact = make_contact(email="ada@example.com")
    lead = make_lead(email="grace@example.com")

    email = send(to=["ADA@example.com", "grace@example.com"], bcc=["nobody@example.org"])

    rows = {r.address: r for r in email.relations.all()}
    assert rows[rep.email].relation_type == "from" and rows[rep.email].user == rep
    assert rows["ADA@example.com"].contact == contact
    assert rows["grace@example.com"].lead == lead
    assert rows["nobody@example.org"].relation_type == "bcc"
    assert all(r.message_id for r in rows.values() if r.relation_type != "from")


def test_dont_track_sends_an_untouched_copy(send, make_contact, make_individual) -> None:
    private = make_contact(
        email="p@example.com", individual=make_individual(has_opted_out_tracking=True)
    )

    send(to=[private])

    html = _copy_for("p@example.com").alternatives[0][0]
    assert html == HTML.replace("{{first_name}}", "Ada")
    relation = EmailMessageRelation.objects.get(address="p@example.com")
    assert not relation.is_tracked and relation.delivery_status == "sent"
    assert relation.untracked_reason == "Don't Track"


def test_dont_process_refuses_that_recipient_and_the_others_still_get_it(
    send, make_contact, make_individual
) -> None:
    refused = make_contact(
        email="no@example.com", individual=make_individual(has_opted_out_processing=True)
    )
    ok = make_contact(email="ok@example.com")

    email = send(to=[refused, ok])

    assert [m.to for m in mail.outbox] == [["ok@example.com"]]
    row = email.relations.get(address="no@example.com")
    assert (row.delivery_status, row.refusal_reason) == ("refused", "Don't Process")
    email.refresh_from_db()
    assert email.delivery_status == "sent"


def test_email_opt_out_blocks_list_email_but_not_a_single_email(send, make_contact) -> None:
    opted_out = make_contact(email="out@example.com", has_opted_out_of_email=True)

    send(to=[opted_out])
    listed = send(to=[opted_out], source=EmailMessage.Source.LIST)

    assert len(mail.outbox) == 1
    assert listed.relations.get(address="out@example.com").refusal_reason == "Email Opt Out"
    listed.refresh_from_db()
    assert listed.delivery_status == "failed"
    assert "out@example.com (Email Opt Out)" in listed.failure_reason


def test_privacy_flags_are_ignored_when_setup_does_not_enforce_them(
    send, make_contact, make_individual
) -> None:
    _setup(enforce_email_privacy=False)
    contact = make_contact(individual=make_individual(has_opted_out_processing=True))

    send(to=[contact])

    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    "access,message",
    [
        ("no_access", "deliverability access is No access"),
        ("system_only", "deliverability access is System email only"),
    ],
)
def test_deliverability_access_refuses_the_send(send, make_contact, access, message) -> None:
    _setup(deliverability_access=access)

    with pytest.raises(SendRefused, match=message):
        send(to=[make_contact()])

    assert EmailMessage.objects.count() == 0
    assert mail.outbox == []


def test_the_daily_limit_names_the_limit_when_exceeded(send, make_contact) -> None:
    _setup(daily_single_email_limit=2)
    send(to=["a@example.com"])

    with pytest.raises(SendRefused, match="daily single email limit of 2 recipients"):
        send(to=["b@example.com", "c@example.com"])

    assert EmailMessage.objects.count() == 1


def test_list_email_counts_against_its_own_limit(send) -> None:
    _setup(daily_single_email_limit=1, daily_list_email_limit=5)
    send(to=["a@example.com"])

    send(to=["b@example.com", "c@example.com"], source=EmailMessage.Source.LIST)

    assert len(mail.outbox) == 3


def test_the_daily_limit_counts_from_one_row_per_day_that_starts_from_what_was_sent(
    send, make_individual, make_contact, time_machine
) -> None:
    _setup(daily_single_email_limit=4, enforce_email_privacy=True)
    time_machine.move_to("2026-03-02 09:00:00Z", tick=False)
    refused = make_contact(
        email="np@example.com", individual=make_individual(has_opted_out_processing=True)
    )
    send(to=["a@example.com", refused])  # one may be sent, one is refused
    # Emails recorded before the counter existed (an upgrade): the day's row starts from them.
    DailySendCount.objects.all().delete()
    send(to=["b@example.com"])
    assert DailySendCount.objects.get(is_list=False).used == 2

    with pytest.raises(SendRefused, match="2 already today, and this email has 3"):
        send(to=["c@example.com", "d@example.com", "e@example.com"])
    send(to=["c@example.com", "d@example.com"])
    assert DailySendCount.objects.get(is_list=False).used == 4

    # A new day: a new row, from zero.
    time_machine.move_to("2026-03-03 09:00:00Z", tick=False)
    send(to=["f@example.com"])
    assert list(DailySendCount.objects.order_by("day").values_list("used", flat=True)) == [4, 1]


def test_with_tracking_off_nothing_is_instrumented(send, make_contact) -> None:
    _setup(email_tracking_enabled=False)

    email = send(to=[make_contact()])

    assert "/t/o/" not in mail.outbox[0].alternatives[0][0]
    assert not email.is_tracked and not TrackedLink.objects.exists()


def test_with_enhanced_email_off_the_send_is_logged_as_a_completed_email_task(
    send, make_contact, rep
) -> None:
    contact = make_contact()
    _setup(enhanced_email=False)

    email = send(to=[contact])

    task = Task.objects.get()
    assert (task.subtype, task.status, task.who_contact, task.owner) == (
        "email",
        "completed",
        contact,
        rep,
    )
    assert task.subject == "Email: Hello Ada"
    assert not email.is_tracked
    assert "/t/o/" not in mail.outbox[0].alternatives[0][0]


def test_the_text_part_is_generated_from_the_html_and_its_links_are_tracked(
    send, make_contact
) -> None:
    send(to=[make_contact()])

    text = mail.outbox[0].body
    assert "Hello Ada," in text
    assert "https://t.openrate.test/t/c/" in text
    assert "https://example.com/pricing" not in text


def test_malformed_html_is_sent_as_written_with_the_pixel_appended(
    send, make_contact, make_individual
) -> None:
    broken = '<p>Unclosed <b>bold <a href="https://example.com/x">link'
    send(to=[make_contact()], html_body=broken)

    html = mail.outbox[0].alternatives[0][0]
    assert html.startswith('<p>Unclosed <b>bold <a href="https://t.openrate.test/t/c/')
    assert '<img src="https://t.openrate.test/t/o/' in html


def test_a_single_recipient_email_is_stored_as_they_read_it(send, make_contact) -> None:
    email = send(to=[make_contact(first_name="Ada")])

    assert email.subject == "Hello Ada"
    assert "Hello Ada," in email.html_body and "Hello Ada," in email.text_body


def test_a_multi_recipient_email_keeps_its_merge_fields(send, make_contact) -> None:
    email = send(to=[make_contact(), make_contact(first_name="Alan", email="alan@example.com")])

    assert email.subject == "Hello {{first_name}}"


def test_a_send_with_no_recipient_is_refused(send) -> None:
    with pytest.raises(SendRefused, match="at least one recipient"):
        send(to=[])
