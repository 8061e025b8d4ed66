"""Send later for a single email: scheduled in the user's time zone within 60 days, shown on
the Scheduled page, changed or cancelled until it goes, sent by beat once, checked (Setup,
privacy, the daily limit) on the day it goes."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from crm.models import EmailMessage, EmailTemplate, OrgSettings, ScheduledEmail, Task
from crm.scheduling import scheduled_email_create, scheduled_emails_send_due
from crm.sending import email_send

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # Monday 06:00 in New York (EDT, UTC-4)
BODY = "<p>Hello {{first_name}}</p>"


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _later(client, contact, send_at: str, **fields):
    data = {
        "to": contact.email,
        "subject": "Hi {{first_name}}",
        "html_body": BODY,
        "send_at": send_at,
        "action": "later",
    } | fields
    return client.post(reverse("crm:contact_email", args=[contact.pk]), data)


def _schedule(sender, contact, *, at: datetime, **fields) -> ScheduledEmail:
    return scheduled_email_create(
        sender=sender,
        to=[contact.email],
        subject=fields.pop("subject", "Hi {{first_name}}"),
        html_body=BODY,
        send_at=at,
        person=contact,
        **fields,
    )


def test_the_time_is_read_in_the_users_time_zone_and_nothing_is_sent_yet(
    client_for, rep, make_contact
) -> None:
    rep.time_zone = "America/New_York"
    rep.save(update_fields=["time_zone"])
    contact = make_contact()

    response = _later(client_for(rep), contact, "2026-06-02T09:30")

    assert response["Location"] == reverse("crm:scheduled_list")
    scheduled = ScheduledEmail.objects.get()
    assert scheduled.send_at == datetime(2026, 6, 2, 13, 30, tzinfo=UTC)  # 09:30 EDT
    assert (scheduled.contact, scheduled.status) == (contact, ScheduledEmail.Status.SCHEDULED)
    assert scheduled.subject == "Hi {{first_name}}"  # filled when it goes
    assert not EmailMessage.objects.exists() and not mail.outbox
    page = client_for(rep).get(reverse("crm:scheduled_list"))
    assert b"Tue, Jun 2, 2026 09:30" in page.content and b"America/New_York" in page.content


@pytest.mark.parametrize(
    ("send_at", "error"),
    [
        ("2026-06-01T09:00", "That time has passed"),
        ("2026-08-01T10:00", "up to 60 days ahead"),
        ("", "Choose when to send it."),
        ("tomorrow-ish", "Enter a date and time"),
    ],
)
def test_a_time_in_the_past_too_far_or_missing_is_explained(
    client_for, rep, make_contact, send_at, error
) -> None:
    response = _later(client_for(rep), make_contact(), send_at)

    assert error in response.context["form"].errors["send_at"][0]
    assert not ScheduledEmail.objects.exists()
    assert b"Hello {{first_name}}" in response.content  # nothing typed is lost


def test_a_time_the_clocks_skip_is_refused(client_for, rep, make_contact) -> None:
    rep.time_zone = "Europe/Paris"
    rep.save(update_fields=["time_zone"])

    with time_machine.travel(datetime(2027, 3, 20, 12, 0, tzinfo=UTC), tick=False):
        response = _later(client_for(rep), make_contact(), "2027-03-28T02:30")

    assert "does not exist" in response.context["form"].errors["send_at"][0]


def test_beat_sends_it_when_due_once_with_the_template(
    rep, make_contact, _frozen, django_capture_on_commit_callbacks
) -> None:
    contact = make_contact()
    template = EmailTemplate.objects.create(name="T", subject="S", html_body=BODY)
    scheduled = _schedule(rep, contact, at=NOW + timedelta(hours=2), template=template)

    assert scheduled_emails_send_due() == 0
    _frozen.shift(timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduled_emails_send_due() == 1
    assert scheduled_emails_send_due() == 0

    scheduled.refresh_from_db()
    email = EmailMessage.objects.get()
    assert (scheduled.status, scheduled.email) == (ScheduledEmail.Status.SENT, email)
    assert email.subject == "Hi Ada" and email.template == template
    assert email.relations.get(relation_type="to").contact == contact
    assert [m.to for m in mail.outbox] == [[contact.email]]


def test_a_send_due_while_the_worker_was_down_goes_when_it_is_back_once(
    rep, make_contact, _frozen
) -> None:
    _schedule(rep, make_contact(), at=NOW + timedelta(minutes=5))

    _frozen.shift(timedelta(days=3))  # nobody ran beat for three days
    assert scheduled_emails_send_due() == 1
    _frozen.shift(timedelta(minutes=1))
    assert scheduled_emails_send_due() == 0
    assert EmailMessage.objects.count() == 1


def test_the_daily_limit_counts_it_on_the_day_it_is_sent(rep, make_contact, _frozen) -> None:
    org = OrgSettings.load()
    org.daily_single_email_limit = 1
    org.save()
    today = _schedule(rep, make_contact(email="a@example.com"), at=NOW + timedelta(hours=1))
    tomorrow = _schedule(rep, make_contact(email="b@example.com"), at=NOW + timedelta(days=1))
    # Scheduling takes none of today's places: a send now still goes.
    email_send(sender=rep, to=["c@example.com"], subject="Now", html_body="<p>x</p>")

    _frozen.shift(timedelta(hours=1))
    scheduled_emails_send_due()
    _frozen.shift(timedelta(days=1))
    scheduled_emails_send_due()

    today.refresh_from_db()
    tomorrow.refresh_from_db()
    assert today.status == ScheduledEmail.Status.FAILED
    assert "daily single email limit of 1" in today.failure_reason
    assert tomorrow.status == ScheduledEmail.Status.SENT


def test_a_refusal_when_it_goes_is_kept_with_the_reason_and_a_task(
    client_for, rep, make_contact, _frozen
) -> None:
    contact = make_contact()
    scheduled = _schedule(rep, contact, at=NOW + timedelta(hours=1))
    org = OrgSettings.load()
    org.deliverability_access = OrgSettings.Deliverability.NO_ACCESS
    org.save()

    _frozen.shift(timedelta(hours=1))
    scheduled_emails_send_due()

    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledEmail.Status.FAILED
    assert "Email is switched off" in scheduled.failure_reason
    task = Task.objects.get(owner=rep)
    assert task.who_contact == contact and "Email is switched off" in task.description
    page = client_for(rep).get(reverse("crm:scheduled_list"), {"show": "failed"})
    assert b"Email is switched off" in page.content


def test_the_sender_cancels_after_a_confirmation_and_it_never_goes(
    client_for, rep, make_contact, _frozen
) -> None:
    scheduled = _schedule(rep, make_contact(), at=NOW + timedelta(hours=1))
    client = client_for(rep)
    url = reverse("crm:scheduled_cancel", args=[scheduled.pk])

    confirm = client.get(url)
    assert b"Cancel \xe2\x80\x9cHi {{first_name}}\xe2\x80\x9d?" in confirm.content
    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledEmail.Status.SCHEDULED
    client.post(url)
    _frozen.shift(timedelta(hours=2))
    scheduled_emails_send_due()

    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledEmail.Status.CANCELLED
    assert not EmailMessage.objects.exists()


def test_the_sender_changes_it_until_it_goes_then_no_more(
    client_for, rep, make_contact, _frozen
) -> None:
    rep.time_zone = "America/New_York"
    rep.save(update_fields=["time_zone"])
    contact = make_contact()
    scheduled = _schedule(rep, contact, at=NOW + timedelta(hours=1))
    client = client_for(rep)
    url = reverse("crm:scheduled_edit", args=[scheduled.pk])
    assert client.get(url).context["form"]["send_at"].value() == "2026-06-01T07:00"
    fields = {"to": contact.email, "subject": "Changed", "html_body": "<p>New</p>"}

    client.post(url, fields | {"send_at": "2026-06-01T08:00"})

    scheduled.refresh_from_db()
    assert scheduled.subject == "Changed"
    assert scheduled.send_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    _frozen.shift(timedelta(hours=2))
    scheduled_emails_send_due()
    response = client.post(url, fields | {"subject": "Too late", "send_at": "2026-06-02T08:00"})
    assert "no longer waiting" in response.context["form"].non_field_errors()[0]
    assert EmailMessage.objects.get().subject == "Changed"


def test_only_the_sender_changes_it_and_a_manager_sees_and_cancels_everyones(
    client_for, rep, other_rep, manager, make_contact, django_assert_num_queries
) -> None:
    ritas = _schedule(rep, make_contact(), at=NOW + timedelta(hours=1), subject="Ritas")
    _schedule(
        other_rep, make_contact(owner=other_rep), at=NOW + timedelta(hours=2), subject="Ottos"
    )

    assert (
        client_for(other_rep).get(reverse("crm:scheduled_edit", args=[ritas.pk])).status_code == 404
    )
    mine = client_for(rep).get(reverse("crm:scheduled_list"))
    assert [s.subject for s in mine.context["page"].object_list] == ["Ritas"]
    client = client_for(manager)
    client.get(reverse("crm:scheduled_list"))
    with django_assert_num_queries(8):
        everyone = client.get(reverse("crm:scheduled_list"))
    assert [s.subject for s in everyone.context["page"].object_list] == ["Ritas", "Ottos"]
    assert client.get(reverse("crm:scheduled_edit", args=[ritas.pk])).status_code == 403
    client.post(reverse("crm:scheduled_cancel", args=[ritas.pk]))
    ritas.refresh_from_db()
    assert ritas.status == ScheduledEmail.Status.CANCELLED


def test_the_scheduled_page_says_when_nothing_waits(client_for, rep) -> None:
    page = client_for(rep).get(reverse("crm:scheduled_list"))

    assert b"Nothing waiting" in page.content and b"Send later" in page.content


def test_a_person_reassigned_since_is_sent_to_as_a_plain_address(
    rep, other_rep, make_contact, _frozen
) -> None:
    contact = make_contact(first_name="Zelda")
    _schedule(rep, contact, at=NOW + timedelta(hours=1))
    contact.owner = other_rep
    contact.save(update_fields=["owner"])

    _frozen.shift(timedelta(hours=1))
    scheduled_emails_send_due()

    email = EmailMessage.objects.get()
    assert email.relations.get(relation_type="to").contact is None
    assert "Zelda" not in email.subject  # no merge field filled from a record rep cannot see


def test_send_with_a_time_chosen_asks_which_was_meant(client_for, rep, make_contact) -> None:
    response = _later(client_for(rep), make_contact(), "2026-06-02T09:30", action="send")

    assert "press Send later" in response.context["form"].errors["send_at"][0]
    assert not EmailMessage.objects.exists() and not ScheduledEmail.objects.exists()


def test_a_waiting_email_is_on_the_records_timeline_until_it_goes(
    client_for, rep, manager, make_contact
) -> None:
    rep.time_zone = "America/New_York"
    rep.save(update_fields=["time_zone"])
    contact = make_contact()
    scheduled = _schedule(rep, contact, at=NOW + timedelta(days=1), subject="Agenda for Tuesday")
    edit = reverse("crm:scheduled_edit", args=[scheduled.pk])

    page = client_for(rep).get(contact.get_absolute_url()).content.decode()
    # In the viewer's zone, with a link to change it for its sender only.
    assert "Scheduled email" in page and "Agenda for Tuesday" in page
    assert "Goes Tue, Jun 2, 2026 06:00 (America/New_York)" in page
    assert edit in page
    by_manager = client_for(manager).get(contact.get_absolute_url()).content.decode()
    assert "Agenda for Tuesday" in by_manager and edit not in by_manager

    with time_machine.travel(NOW + timedelta(days=1, minutes=1), tick=False):
        assert scheduled_emails_send_due() == 1
        page = client_for(rep).get(contact.get_absolute_url()).content.decode()
    assert "Scheduled email" not in page and edit not in page
    assert "Agenda for Tuesday" in page  # sent: an email on the timeline
