"""The Activity Timeline: what it shows, at a glance, filtered and paged in bounded queries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, Task, TrackedLink
from crm.timeline import timeline


def _email(contact, *, when, subject="Hello", **relation_fields):
    email = EmailMessage.objects.create(
        subject=subject,
        from_address="rita@openrate.example",
        status="sent",
        delivery_status="sent",
        message_date=when,
        is_tracked=True,
    )
    fields = {"delivery_status": "sent", "is_tracked": True, "sent_at": when} | relation_fields
    EmailMessageRelation.objects.create(
        email=email, relation_type="to", address=contact.email, contact=contact, **fields
    )
    return email


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def test_open_tasks_come_first_and_history_is_newest_first_by_month(
    make_contact, make_task, now
) -> None:
    contact = make_contact()
    upcoming = make_task(
        subject="Call back", who_contact=contact, due_date=now.date() + timedelta(days=2)
    )
    old = make_task(subject="Sent brochure", who_contact=contact, status="completed")
    Task.objects.filter(pk=old.pk).update(completed_at=now - timedelta(days=40))
    _email(contact, when=now - timedelta(days=1), subject="Recent")

    page = timeline(contact)

    assert page.upcoming == [upcoming]
    assert [(e.kind, str(e.obj)) for e in page.entries] == [
        ("email", "Recent"),
        ("task", "Sent brochure"),
    ]
    assert page.entries[0].new_month and page.entries[1].new_month  # two months, two headings
    assert page.next_cursor == ""


@pytest.mark.parametrize(
    "fields,badges",
    [
        ({"human_opens": 3}, ["Opened 3 times"]),
        ({"human_opens": 1}, ["Opened once"]),
        (
            {"machine_opens": 2, "machine_open_label": "apple_mpp"},
            ["Machine open only (Apple Privacy)"],
        ),
        ({"is_tracked": False, "untracked_reason": "Don't Track"}, ["Not tracked (Don't Track)"]),
        ({"bounce_category": "hard"}, ["Bounced (hard)"]),
        (
            {"delivery_status": "refused", "refusal_reason": "Don't Process"},
            ["Not sent (Don't Process)"],
        ),
        ({}, ["Not opened yet"]),
    ],
)
def test_each_email_shows_its_engagement_at_a_glance(make_contact, now, fields, badges) -> None:
    contact = make_contact()
    _email(contact, when=now, **fields)

    (entry,) = timeline(contact).entries

    assert [text for text, _ in entry.badges] == badges


def test_a_click_names_the_link(make_contact, now) -> None:
    contact = make_contact()
    email = _email(contact, when=now, human_opens=1, human_clicks=1)
    link = TrackedLink.objects.create(email=email, url="https://example.com/pricing/", position=0)
    EmailMessageRelation.objects.filter(email=email).update(last_clicked_link=link)

    (entry,) = timeline(contact).entries

    assert [text for text, _ in entry.badges] == ["Opened once", "Clicked example.com/pricing"]


def test_filters_show_only_emails_or_tasks_within_dates(make_contact, make_task, now) -> None:
    contact = make_contact()
    _email(contact, when=now - timedelta(days=10), subject="Old")
    _email(contact, when=now, subject="New")
    done = make_task(subject="Done", who_contact=contact, status="completed")
    Task.objects.filter(pk=done.pk).update(completed_at=now)

    emails = timeline(contact, kind="emails")
    tasks = timeline(contact, kind="tasks")
    recent = timeline(contact, start=(now - timedelta(days=1)).date(), end=now.date())

    assert [str(e.obj) for e in emails.entries] == ["New", "Old"]
    assert [str(e.obj) for e in tasks.entries] == ["Done"]
    assert sorted(str(e.obj) for e in recent.entries) == ["Done", "New"]


def test_paging_returns_every_entry_once_even_when_times_tie(make_contact, now) -> None:
    contact = make_contact()
    for index in range(45):
        _email(contact, when=now - timedelta(minutes=index // 3), subject=f"E{index:02d}")

    seen, cursor = [], ""
    while True:
        page = timeline(contact, cursor=cursor, limit=20)
        seen += [str(e.obj) for e in page.entries]
        if not page.next_cursor:
            break
        cursor = page.next_cursor

    assert sorted(seen) == [f"E{i:02d}" for i in range(45)]
    assert len(seen) == 45


def test_a_record_with_ten_thousand_emails_renders_in_the_same_queries(
    client_for, rep, make_contact, now, django_assert_num_queries
) -> None:
    contact = make_contact()
    emails = EmailMessage.objects.bulk_create(
        EmailMessage(
            subject=f"E{i}",
            from_address="r@x.example",
            status="sent",
            delivery_status="sent",
            message_date=now - timedelta(minutes=i),
        )
        for i in range(10_000)
    )
    EmailMessageRelation.objects.bulk_create(
        EmailMessageRelation(
            email=e,
            relation_type="to",
            address=contact.email,
            contact=contact,
            delivery_status="sent",
        )
        for e in emails
    )
    client = client_for(rep)
    OrgSettings.load()  # Setup is cached after its first read

    # session, user, permissions (2), the contact, emails, done tasks, privacy changes,
    # open tasks, scheduled emails, the navbar's roles and follow-up count, opportunity roles,
    # enrolment history in sequences: whatever the number of emails
    with django_assert_num_queries(14):
        page = client.get(reverse("crm:contact_detail", args=[contact.pk]))

    assert len(page.context["timeline"].entries) == 20
    # the next page: no open tasks, navbar or roles to read
    with django_assert_num_queries(9):
        more = client.get(page.context["more_url"])
    assert more.status_code == 200
    assert b"E20" in more.content


def test_an_account_rolls_up_its_contacts_activity(
    make_account, make_contact, make_task, now
) -> None:
    account = make_account()
    ada = make_contact(account=account)
    _email(ada, when=now, subject="To Ada")
    done = make_task(subject="Met Ada", who_contact=ada, status="completed")
    Task.objects.filter(pk=done.pk).update(completed_at=now - timedelta(hours=1))

    page = timeline(account)

    assert [str(e.obj) for e in page.entries] == ["To Ada", "Met Ada"]


def test_the_timeline_fragment_loads_the_next_page(client_for, rep, make_contact, now) -> None:
    contact = make_contact()
    for index in range(25):
        _email(contact, when=now - timedelta(minutes=index), subject=f"E{index:02d}")
    client = client_for(rep)
    first = client.get(reverse("crm:contact_detail", args=[contact.pk]))

    more = client.get(first.context["more_url"])

    assert [str(e.obj) for e in more.context["timeline"].entries] == [
        f"E{i}" for i in range(20, 25)
    ]
    assert b"<html" not in more.content  # a fragment to append
    assert not more.context["timeline"].entries[0].new_month  # same month: no heading again


def test_logging_a_call_adds_a_completed_call(client_for, rep, make_contact) -> None:
    contact = make_contact()
    client = client_for(rep)

    client.post(
        reverse("crm:log_call", args=["contact", contact.pk]),
        {"subject": "Discovery call", "comments": "Budget ok"},
    )

    call = Task.objects.get()
    assert (call.subtype, call.status, call.who_contact, call.description) == (
        "call",
        "completed",
        contact,
        "Budget ok",
    )
    page = client.get(reverse("crm:contact_detail", args=[contact.pk]))
    assert [str(e.obj) for e in page.context["timeline"].entries] == ["Discovery call"]


def test_marking_a_task_done_from_the_timeline_moves_it_to_history(
    client_for, rep, make_contact, make_task
) -> None:
    contact = make_contact()
    task = make_task(who_contact=contact)
    client = client_for(rep)
    url = reverse("crm:contact_detail", args=[contact.pk])

    client.post(reverse("crm:task_complete", args=[task.pk]), {"next": url})

    page = client.get(url)
    assert page.context["timeline"].upcoming == []
    assert [e.obj for e in page.context["timeline"].entries] == [task]


def test_a_start_after_the_end_is_explained(client_for, rep, make_contact) -> None:
    contact = make_contact()

    page = client_for(rep).get(
        reverse("crm:contact_detail", args=[contact.pk]),
        {"start": "2026-12-01", "end": "2026-01-01"},
    )

    assert b"The start date is after the end date." in page.content


def test_opens_and_clicks_are_offered_only_once_the_email_has_gone_out(
    client_for, rep, make_contact, now
) -> None:
    contact = make_contact()
    _email(contact, when=now, subject="Queued", delivery_status="pending", sent_at=None)
    _email(contact, when=now - timedelta(minutes=1), subject="Sent")
    page = client_for(rep).get(reverse("crm:contact_detail", args=[contact.pk]))

    entries = page.content.decode().split('class="timeline-entry')[1:]

    assert ["Opens and clicks" in entry for entry in entries] == [False, True]


def test_a_cursor_with_a_non_ascii_digit_is_ignored_not_a_server_error(
    client_for, rep, make_contact
) -> None:
    contact = make_contact()
    url = reverse("crm:timeline", args=["contact", contact.pk])

    response = client_for(rep).get(url, {"before": "2026-01-01T00:00:00+00:00|email|²"})

    assert response.status_code == 200
