"""Enrolling from the Contact and Lead lists (ticked rows or the whole filter) and from a record
page, after a confirmation listing who is skipped and why (the list email policy)."""

import pytest
from django.urls import reverse

from automation.models import Enrolment, EnrolmentEvent
from crm.models import EmailSuppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_contact, make_individual, rep):
    return {
        "ok": make_contact(first_name="Ok", email="ok@example.com"),
        "opted_out": make_contact(
            first_name="Out", email="out@example.com", has_opted_out_of_email=True
        ),
        "dont_market": make_contact(
            first_name="Nomarket",
            email="nm@example.com",
            individual=make_individual(has_opted_out_solicit=True),
        ),
        "dont_process": make_contact(
            first_name="Noprocess",
            email="np@example.com",
            individual=make_individual(has_opted_out_processing=True),
        ),
        "suppressed": make_contact(first_name="Bounced", email="bounced@example.com"),
        "no_email": make_contact(first_name="Blank", email=""),
    }


def test_the_confirmation_lists_who_is_skipped_and_why_then_enrols_the_rest(
    client_for, rep, make_sequence, people
) -> None:
    EmailSuppression.objects.create(
        address="bounced@example.com", reason=EmailSuppression.Reason.HARD_BOUNCE
    )
    sequence = make_sequence("email")
    client = client_for(rep)
    data = {
        "kind": "contact",
        "scope": "selected",
        "select": [p.pk for p in people.values()],
        "sequence": sequence.pk,
    }

    page = client.get(reverse("automation:enrol"), data)

    assert page.status_code == 200
    plan = page.context["plan"]
    assert [p.pk for p in plan.eligible] == [people["ok"].pk]
    reasons = {person.pk: reason for person, reason in plan.skipped}
    assert reasons == {
        people["opted_out"].pk: "Email Opt Out",
        people["dont_market"].pk: "Don't Market",
        people["dont_process"].pk: "Don't Process",
        people["suppressed"].pk: "Suppressed: Hard bounce",
        people["no_email"].pk: "No email address",
    }
    assert b"Suppressed: Hard bounce" in page.content
    assert Enrolment.objects.count() == 0  # nothing before the POST

    done = client.post(reverse("automation:enrol"), data)

    assert done.status_code == 302
    enrolment = Enrolment.objects.get()
    assert enrolment.contact == people["ok"]
    assert enrolment.owner == rep
    assert enrolment.events.get().kind == EnrolmentEvent.Kind.ENROLLED


def test_the_whole_filter_can_be_enrolled_and_never_twice(
    client_for, rep, make_sequence, make_contact
) -> None:
    for n in range(3):
        make_contact(first_name=f"Zed{n}", last_name="Filtered", email=f"z{n}@example.com")
    make_contact(first_name="Other", last_name="Person", email="o@example.com")
    sequence = make_sequence("email")
    client = client_for(rep)
    data = {"kind": "contact", "scope": "all", "query": "q=Filtered", "sequence": sequence.pk}

    client.post(reverse("automation:enrol"), data)
    again = client.get(reverse("automation:enrol"), data)

    assert Enrolment.objects.count() == 3
    assert {reason for _, reason in again.context["plan"].skipped} == {"Already in this sequence"}


def test_a_rep_cannot_enrol_another_reps_record(
    client_for, rep, other_rep, make_sequence, make_contact
) -> None:
    theirs = make_contact(owner=other_rep, email="theirs@example.com")
    sequence = make_sequence("email")

    client_for(rep).post(
        reverse("automation:enrol"),
        {"kind": "contact", "select": theirs.pk, "sequence": sequence.pk},
    )

    assert Enrolment.objects.count() == 0


def test_the_record_page_and_list_offer_enrolment(client_for, rep, make_lead, make_contact) -> None:
    lead = make_lead()
    make_contact()
    client = client_for(rep)

    page = client.get(reverse("crm:lead_detail", args=[lead.pk]))
    listing = client.get(reverse("crm:contact_list"))

    assert reverse("automation:enrol").encode() + b"?kind=lead" in page.content
    assert b"Enrol ticked in sequence" in listing.content


def test_an_archived_sequence_takes_no_one(client_for, rep, make_sequence, make_contact) -> None:
    sequence = make_sequence("email", status="archived")
    ada = make_contact()

    response = client_for(rep).post(
        reverse("automation:enrol"),
        {"kind": "contact", "select": ada.pk, "sequence": sequence.pk},
    )

    assert response.status_code == 200  # not offered: the page asks for a sequence again
    assert Enrolment.objects.count() == 0
