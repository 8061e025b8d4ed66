"""Send later for a list email: the first batch waits for the chosen time (in the sender's time
zone), beat's resume starts it then, and until it starts it can be changed or cancelled (after a
confirmation). The template it was written from is recorded on every copy."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from campaigns.list_email import list_email_batch_send, list_email_cancel, list_emails_due
from campaigns.members import members_add
from campaigns.models import ListEmail, ListEmailRecipient
from crm.models import EmailMessage, EmailTemplate

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def people(campaign, make_contact):
    ada = make_contact(first_name="Ada", email="ada@example.com")
    bob = make_contact(first_name="Bob", email="bob@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk, bob.pk])
    return ada, bob


def _later(client, campaign, send_at: str, **data):
    return client.post(
        f"/campaigns/{campaign.pk}/email/",
        {
            "subject": "News",
            "html_body": "<p>Hi {{first_name}}</p>",
            "send_at": send_at,
            "action": "later",
        }
        | data,
    )


def test_a_scheduled_list_email_waits_for_its_time_in_the_senders_zone(
    client_for, rep, campaign, people, _frozen, django_capture_on_commit_callbacks
) -> None:
    rep.time_zone = "Asia/Tokyo"
    rep.save(update_fields=["time_zone"])
    template = EmailTemplate.objects.create(name="News", subject="News", html_body="<p>x</p>")

    with django_capture_on_commit_callbacks(execute=True):
        response = _later(client_for(rep), campaign, "2026-06-02T09:00", template=template.pk)

    list_email = ListEmail.objects.get()
    assert response["Location"] == list_email.get_absolute_url()
    assert list_email.send_at == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    assert list_email.status == ListEmail.Status.SCHEDULED and list_email.is_waiting
    assert not EmailMessage.objects.exists() and list_emails_due() == []
    page = client_for(rep).get(list_email.get_absolute_url())
    assert b"Tue, Jun 2, 2026 at 09:00" in page.content and b"Asia/Tokyo" in page.content

    _frozen.move_to(datetime(2026, 6, 2, 0, 0, tzinfo=UTC))
    assert list_emails_due() == [list_email.pk]
    list_email_batch_send(list_email_id=list_email.pk)

    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "bob@example.com"]
    assert set(EmailMessage.objects.values_list("template", flat=True)) == {template.pk}
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED


def test_a_time_past_or_too_far_is_explained(client_for, rep, campaign, people) -> None:
    for send_at, error in (("2026-06-01T08:00", "passed"), ("2026-09-01T08:00", "60 days")):
        response = _later(client_for(rep), campaign, send_at)
        assert error in response.context["form"].errors["send_at"][0]
    assert not ListEmail.objects.exists()


def test_it_is_changed_until_the_first_batch_goes(
    client_for, rep, campaign, people, _frozen
) -> None:
    _later(client_for(rep), campaign, "2026-06-01T12:00")
    list_email = ListEmail.objects.get()
    url = reverse("campaigns:list_email_edit", args=[campaign.pk, list_email.pk])
    fields = {"subject": "Better news", "html_body": "<p>Hello {{first_name}}</p>"}

    client_for(rep).post(url, fields | {"send_at": "2026-06-01T14:00"})

    list_email.refresh_from_db()
    assert list_email.subject == "Better news"
    assert list_email.send_at == list_email.next_batch_at == datetime(2026, 6, 1, 14, tzinfo=UTC)
    _frozen.move_to(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    list_email_batch_send(list_email_id=list_email.pk)
    response = client_for(rep).post(url, fields | {"send_at": "2026-06-01T18:00"})
    assert "first batch has gone" in response.context["form"].non_field_errors()[0]
    assert {m.subject for m in mail.outbox} == {"Better news"}


def test_a_cancel_after_a_confirmation_skips_everyone(
    client_for, rep, campaign, people, _frozen
) -> None:
    _later(client_for(rep), campaign, "2026-06-01T12:00")
    list_email = ListEmail.objects.get()
    url = reverse("campaigns:list_email_cancel", args=[campaign.pk, list_email.pk])
    client = client_for(rep)

    assert b"Cancel the list email" in client.get(url).content
    client.post(url)
    _frozen.move_to(datetime(2026, 6, 1, 13, 0, tzinfo=UTC))

    assert list_emails_due() == []
    assert list_email_batch_send(list_email_id=list_email.pk) is None
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.CANCELLED
    assert set(list_email.recipients.values_list("state", flat=True)) == {
        ListEmailRecipient.State.SKIPPED
    }
    assert not mail.outbox


def test_it_can_no_longer_be_cancelled_once_started(rep, campaign, people, client_for, _frozen):
    _later(client_for(rep), campaign, "2026-06-01T12:00")
    list_email = ListEmail.objects.get()
    _frozen.move_to(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    list_email_batch_send(list_email_id=list_email.pk)

    assert not list_email_cancel(list_email=list_email)
    assert len(mail.outbox) == 2
    _frozen.shift(timedelta(minutes=1))
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
