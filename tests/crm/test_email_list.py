"""The list of emails: who sees which, filters on engagement, sortable tracking columns."""

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation


@pytest.fixture
def emails(rep, other_rep, make_contact):
    now = timezone.now()
    ada = make_contact()

    def make(subject, sender, **fields):
        email = EmailMessage.objects.create(
            subject=subject,
            from_address=sender.email,
            sender=sender,
            status="sent",
            delivery_status="sent",
            message_date=now,
            is_tracked=True,
            **fields,
        )
        return email

    mine = make("Mine opened", rep, is_opened=True, times_opened=2)
    make("Mine clicked", rep, times_clicked=1)
    theirs = make("Theirs to my contact", other_rep, is_bounced=True)
    EmailMessageRelation.objects.create(
        email=theirs, relation_type="to", address=ada.email, contact=ada
    )
    make("Theirs alone", other_rep)
    return mine


def _subjects(response):
    return sorted(row.record.subject for row in response.context["table"].page.object_list)


def test_a_rep_sees_what_they_sent_and_what_their_people_got(client_for, rep, emails) -> None:
    response = client_for(rep).get(reverse("crm:email_list"))

    assert _subjects(response) == ["Mine clicked", "Mine opened", "Theirs to my contact"]


def test_a_manager_sees_every_email(client_for, manager, emails) -> None:
    assert len(_subjects(client_for(manager).get(reverse("crm:email_list")))) == 4


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"opened": "true"}, ["Mine opened"]),
        ({"clicked": "true"}, ["Mine clicked"]),
        ({"bounced": "true"}, ["Theirs to my contact"]),
        ({"q": "clicked"}, ["Mine clicked"]),
    ],
)
def test_it_filters_on_engagement(client_for, rep, emails, query, expected) -> None:
    assert _subjects(client_for(rep).get(reverse("crm:email_list"), query)) == expected


def test_the_tracking_columns_sort(client_for, manager, emails) -> None:
    response = client_for(manager).get(reverse("crm:email_list"), {"sort": "-times_opened"})

    assert response.context["table"].page.object_list[0].record.subject == "Mine opened"


def test_the_list_runs_a_bounded_number_of_queries(
    client_for, manager, emails, django_assert_max_num_queries
) -> None:
    client = client_for(manager)
    client.get(reverse("crm:email_list"))

    # as before, plus the navbar's count of open follow-ups and alerts
    with django_assert_max_num_queries(9):
        assert client.get(reverse("crm:email_list")).status_code == 200
