"""The email and recipient resources: each role sees what the email pages show it."""

import pytest
from django.utils import timezone

from crm.models import EmailMessage, EmailMessageRelation

EMAILS = "/api/v1/emails/"
RECIPIENTS = "/api/v1/recipients/"


@pytest.fixture
def mail(rep, other_rep, make_contact):
    """Rep's email to their contact; another rep's email to rep's contact and one to their own
    (which rep may not see)."""
    now = timezone.now()
    ada = make_contact()
    otto_person = make_contact(first_name="Otto's", email="o@example.com", owner=other_rep)

    def send(subject, sender, person, **fields):
        email = EmailMessage.objects.create(
            subject=subject,
            html_body="<p>Hi</p>",
            from_address=sender.email,
            sender=sender,
            status="sent",
            delivery_status="sent",
            message_date=now,
            is_tracked=True,
            **fields,
        )
        EmailMessageRelation.objects.create(
            email=email, relation_type="from", address=sender.email, user=sender
        )
        relation = EmailMessageRelation.objects.create(
            email=email,
            relation_type="to",
            address=person.email,
            contact=person,
            is_tracked=True,
            human_opens=2,
            machine_opens=1,
            human_clicks=1,
            first_opened_at=now,
            replied_at=now,
        )
        return email, relation

    return {
        "mine": send("Mine", rep, ada, is_opened=True),
        "to_mine": send("To my contact", other_rep, ada),
        "theirs": send("Theirs", other_rep, otto_person, is_bounced=True),
    }


def _subjects(response):
    assert response.status_code == 200, response.content
    return sorted(row["subject"] for row in response.json()["results"])


def test_a_rep_sees_what_they_sent_and_what_their_people_got(client_for, rep, mail) -> None:
    assert _subjects(client_for(rep).get(EMAILS)) == ["Mine", "To my contact"]


@pytest.mark.parametrize("persona", ["manager", "admin_user"])
def test_managers_and_admins_see_every_email(client_for, request, persona, mail) -> None:
    user = request.getfixturevalue(persona)
    assert _subjects(client_for(user).get(EMAILS)) == ["Mine", "Theirs", "To my contact"]


def test_another_reps_email_is_not_found(client_for, rep, mail) -> None:
    theirs, _ = mail["theirs"]

    response = client_for(rep).get(f"{EMAILS}{theirs.pk}/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_one_email_has_its_body(client_for, rep, mail) -> None:
    mine, _ = mail["mine"]

    body = client_for(rep).get(f"{EMAILS}{mine.pk}/").json()

    assert (body["subject"], body["html_body"], body["is_opened"]) == ("Mine", "<p>Hi</p>", True)


def test_a_user_without_a_role_may_not_read_emails(client_for, outsider, mail) -> None:
    assert client_for(outsider).get(EMAILS).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bounced=true", ["Theirs"]),
        ("opened=true", ["Mine"]),
        ("q=their", ["Theirs"]),
        ("sent_after=2000-01-01&bounced=false", ["Mine", "To my contact"]),
    ],
)
def test_emails_filter_as_the_list_does(client_for, manager, mail, query, expected) -> None:
    assert _subjects(client_for(manager).get(f"{EMAILS}?{query}")) == expected


def test_a_bad_filter_value_is_a_field_error(client_for, manager, mail) -> None:
    response = client_for(manager).get(f"{EMAILS}?owner=99999999999999999999999")

    assert response.status_code == 400
    assert "owner" in response.json()["errors"]


def test_recipients_carry_their_tracking(client_for, rep, mail) -> None:
    mine, relation = mail["mine"]

    rows = client_for(rep).get(f"{RECIPIENTS}?email={mine.pk}").json()["results"]

    assert len(rows) == 1  # From is not a recipient
    row = rows[0]
    assert row["id"] == relation.pk and row["contact"] == relation.contact_id
    assert (row["human_opens"], row["machine_opens"], row["human_clicks"]) == (2, 1, 1)
    assert row["is_tracked"] and row["is_opened"] and row["replied_at"]


def test_a_rep_sees_recipients_of_the_emails_they_may_see_only(client_for, rep, mail) -> None:
    rows = client_for(rep).get(RECIPIENTS).json()["results"]

    assert sorted(row["email"] for row in rows) == sorted(
        [mail["mine"][0].pk, mail["to_mine"][0].pk]
    )
    _, theirs = mail["theirs"]
    assert client_for(rep).get(f"{RECIPIENTS}{theirs.pk}/").status_code == 404


def test_a_recipients_record_is_named_only_for_who_may_see_it(
    client_for, other_rep, rep, mail
) -> None:
    # Otto sent "To my contact" to Rita's contact: he sees the email, not whose record it is.
    _, relation = mail["to_mine"]

    mine = client_for(rep).get(f"{RECIPIENTS}{relation.pk}/").json()
    his = client_for(other_rep).get(f"{RECIPIENTS}{relation.pk}/").json()

    assert mine["contact"] == relation.contact_id
    assert his["contact"] is None and his["address"] == relation.address


def test_the_recipient_list_runs_a_bounded_number_of_queries(
    client_for, manager, mail, django_assert_max_num_queries
) -> None:
    client = client_for(manager)
    client.get(RECIPIENTS)  # session and permissions cached

    with django_assert_max_num_queries(6):
        response = client.get(RECIPIENTS)

    assert len(response.json()["results"]) == 3


def test_a_token_reads_what_its_user_sees(api_for, rep, mail) -> None:
    theirs, _ = mail["theirs"]
    client = api_for(rep)

    assert _subjects(client.get(EMAILS)) == ["Mine", "To my contact"]
    assert client.get(f"{EMAILS}{theirs.pk}/").status_code == 404
