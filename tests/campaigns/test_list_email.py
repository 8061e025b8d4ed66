"""List email: each member gets their own copy through the send pipeline (merge fields, their own
tracking, List-Unsubscribe), and those the policy refuses are skipped with the reason."""

import re
import uuid

from django.conf import settings
from django.core import mail

from campaigns.members import members_add
from campaigns.models import ListEmail, ListEmailRecipient
from campaigns.tasks import resume_list_emails
from crm.models import Contact, EmailMessage, EmailSuppression, OrgSettings
from privacy.models import Individual
from tests.tracking.conftest import html_of

BODY = '<p>Hi {{first_name}}, see <a href="https://example.com/spring">the launch</a>.</p>'


def _send(client, campaign, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            f"/campaigns/{campaign.pk}/email/",
            {"subject": "Spring news for {{first_name}}", "html_body": BODY, "query": "", **data},
        )


def test_a_list_email_to_1000_members_gives_each_their_own_tracked_copy(
    smtp_server, client_for, rep, campaign, django_capture_on_commit_callbacks
) -> None:
    people = Contact.objects.bulk_create(
        Contact(
            first_name=f"P{i}",
            last_name="Member",
            email=f"p{i}@example.com",
            owner=rep,
            has_opted_out_of_email=i % 100 == 7,  # ten opted out
        )
        for i in range(1000)
    )
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])

    response = _send(client_for(rep), campaign, django_capture_on_commit_callbacks)

    list_email = ListEmail.objects.get()
    assert response.status_code == 302 and response.url == list_email.get_absolute_url()
    received = {rcpt[0]: message for rcpt, message in smtp_server.messages}
    opted_out = {f"p{i}@example.com" for i in range(1000) if i % 100 == 7}
    assert len(smtp_server.messages) == 990 and len(received) == 990
    assert not opted_out & received.keys()
    pixels = set()
    for address, message in received.items():
        first_name = "P" + address.split("@")[0][1:]
        assert message["Subject"] == f"Spring news for {first_name}"
        html = html_of(message)
        assert f"Hi {first_name}," in html and "https://example.com/spring" not in html
        (pixel,) = re.findall(rf"{re.escape(settings.TRACKING_BASE_URL)}/t/o/[^\"]+", html)
        pixels.add(pixel)
        # The unsubscribe link has a token of its own, not the one in the header or the pixel.
        token = message["X-Openrate-Token"]
        unsubscribe = re.match(
            rf"<{re.escape(settings.TRACKING_BASE_URL)}/unsubscribe/([\w-]+)/>, <mailto:",
            message["List-Unsubscribe"].strip(),
        )
        assert unsubscribe and unsubscribe.group(1) not in (token, pixel)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(pixels) == 990  # one token per person
    # A refused copy is recorded too (with its reason), as every send through the pipeline is.
    emails = EmailMessage.objects.filter(campaign=campaign, source="list")
    assert emails.count() == 1000 and emails.filter(delivery_status="sent").count() == 990
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
    skipped = list_email.recipients.filter(state=ListEmailRecipient.State.SKIPPED)
    assert set(skipped.values_list("reason", flat=True)) == {"Email Opt Out"}
    assert skipped.count() == 10
    summary = client_for(rep).get(list_email.get_absolute_url()).content.decode()
    assert 'id="count-sent">990<' in summary and 'id="count-skipped">10<' in summary
    assert "Email Opt Out" in summary


def test_each_refusal_is_shown_with_its_reason(
    client_for, rep, campaign, make_contact, make_lead, django_capture_on_commit_callbacks
) -> None:
    people = {
        "ok": make_contact(email="ok@example.com"),
        "opt_out": make_contact(email="out@example.com", has_opted_out_of_email=True),
        "no_market": make_contact(
            email="nm@example.com",
            individual=Individual.objects.create(last_name="N", has_opted_out_solicit=True),
        ),
        "no_process": make_contact(
            email="np@example.com",
            individual=Individual.objects.create(last_name="P", has_opted_out_processing=True),
        ),
        "bounced": make_contact(email="gone@example.com"),
        "no_address": make_contact(email=""),
    }
    EmailSuppression.objects.create(address="gone@example.com", reason="hard_bounce")
    lead = make_lead(email="lead@example.com")
    members_add(campaign=campaign, contact_ids=[p.pk for p in people.values()], lead_ids=[lead.pk])

    _send(client_for(rep), campaign, django_capture_on_commit_callbacks)

    assert sorted(m.to[0] for m in mail.outbox) == ["lead@example.com", "ok@example.com"]
    reasons = dict(
        ListEmailRecipient.objects.filter(contact__isnull=False).values_list(
            "contact__email", "reason"
        )
    )
    assert reasons == {
        "ok@example.com": "",
        "out@example.com": "Email Opt Out",
        "nm@example.com": "Don't Market",
        "np@example.com": "Don't Process",
        "gone@example.com": "Suppressed: Hard bounce",
        "": "No email address",
    }


def test_the_filtered_members_alone_get_the_email(
    client_for, rep, campaign, make_contact, make_lead, django_capture_on_commit_callbacks
) -> None:
    contact = make_contact(email="c@example.com")
    lead = make_lead(email="l@example.com")
    members_add(campaign=campaign, contact_ids=[contact.pk], lead_ids=[lead.pk])

    _send(client_for(rep), campaign, django_capture_on_commit_callbacks, query="kind=lead")

    assert [m.to for m in mail.outbox] == [["l@example.com"]]


def _five_members_at_three_pm(campaign, make_contact, time_machine, **setup) -> None:
    time_machine.move_to("2026-03-02 15:00:00Z", tick=False)
    org = OrgSettings.load()
    for name, value in setup.items():
        setattr(org, name, value)
    org.save()
    people = [make_contact(email=f"p{i}@example.com") for i in range(5)]
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])


def test_a_send_over_the_daily_limit_goes_out_in_part_and_the_rest_is_scheduled(
    client_for, rep, campaign, make_contact, django_capture_on_commit_callbacks, time_machine
) -> None:
    _five_members_at_three_pm(campaign, make_contact, time_machine, daily_list_email_limit=3)
    client = client_for(rep)

    _send(client, campaign, django_capture_on_commit_callbacks)

    list_email = ListEmail.objects.get()
    assert len(mail.outbox) == 3
    assert list_email.status == ListEmail.Status.SCHEDULED
    assert list_email.next_batch_at.isoformat() == "2026-03-03T00:00:00+00:00"
    progress = client.get(f"{list_email.get_absolute_url()}progress/").json()
    assert (progress["sent"], progress["remaining"], progress["status"]) == (3, 2, "scheduled")

    resume_list_emails.delay()  # beat, before midnight: nothing is due
    assert len(mail.outbox) == 3
    time_machine.move_to("2026-03-03 00:01:00Z", tick=False)
    resume_list_emails.delay()

    assert len(mail.outbox) == 5
    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED


def test_setups_per_minute_rate_paces_the_batches(
    client_for, rep, campaign, make_contact, django_capture_on_commit_callbacks, time_machine
) -> None:
    _five_members_at_three_pm(campaign, make_contact, time_machine, list_email_per_minute=2)

    _send(client_for(rep), campaign, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 2
    resume_list_emails.delay()  # the same minute: nothing more
    assert len(mail.outbox) == 2
    time_machine.move_to("2026-03-02 15:01:00Z", tick=False)
    resume_list_emails.delay()
    assert len(mail.outbox) == 4
    time_machine.move_to("2026-03-02 15:02:00Z", tick=False)
    resume_list_emails.delay()
    assert len(mail.outbox) == 5
    assert ListEmail.objects.get().status == ListEmail.Status.COMPLETED


def test_a_rep_cannot_send_to_another_reps_campaign(
    client_for, other_rep, campaign, django_capture_on_commit_callbacks
) -> None:
    response = _send(client_for(other_rep), campaign, django_capture_on_commit_callbacks)

    assert response.status_code == 403 and not ListEmail.objects.exists()


def test_the_composer_names_how_many_members_it_goes_to(
    client_for, rep, campaign, make_contact, make_lead
) -> None:
    members_add(campaign=campaign, contact_ids=[make_contact().pk], lead_ids=[make_lead().pk])

    page = client_for(rep).get(f"/campaigns/{campaign.pk}/email/?kind=lead").content.decode()

    assert "Send to 1 member<" in page and 'name="query" value="kind=lead"' in page


def test_the_send_page_lists_each_recipient_with_the_result_in_few_queries(
    client_for,
    rep,
    campaign,
    make_contact,
    send_list_email,
    django_assert_max_num_queries,
) -> None:
    people = [make_contact(email=f"p{i}@example.com") for i in range(3)]
    people.append(make_contact(email="out@example.com", has_opted_out_of_email=True))
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])
    list_email = send_list_email(campaign)
    client = client_for(rep)

    with django_assert_max_num_queries(16):
        page = client.get(list_email.get_absolute_url()).content.decode()

    # Each sent member's result and their copy's delivery; the skipped one says why.
    assert page.count(">Sent<") == 6 and ">Skipped: Email Opt Out" in page
    assert 'data-done="true"' in page


def test_a_batch_whose_worker_died_goes_out_once_its_lease_has_passed(
    client_for, rep, campaign, make_contact, django_capture_on_commit_callbacks, time_machine
) -> None:
    _five_members_at_three_pm(campaign, make_contact, time_machine, list_email_per_minute=2)
    _send(client_for(rep), campaign, django_capture_on_commit_callbacks)
    list_email = ListEmail.objects.get()
    # A worker claimed the next two and died before handing them over.
    claimed = list(list_email.recipients.filter(state="queued").order_by("pk")[:2])
    ListEmailRecipient.objects.filter(pk__in=[r.pk for r in claimed]).update(
        state="sending", batch=uuid.uuid4()
    )

    for minute in range(1, 15):  # beat, every minute; the dead worker's lease is 10 minutes
        time_machine.move_to(f"2026-03-02 15:{minute:02d}:00Z", tick=False)
        resume_list_emails.delay()

    list_email.refresh_from_db()
    assert list_email.status == ListEmail.Status.COMPLETED
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        campaign.members.values_list("contact__email", flat=True)
    )  # each member once
