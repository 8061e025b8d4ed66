"""A record's timeline shows its enrolments' history and names the sequence step behind each
automated email."""

import pytest
from django.urls import reverse

from automation.advance import enrolments_advance
from automation.enrolment import enrolment_stop, people_enrol

pytestmark = pytest.mark.django_db


def test_the_contacts_timeline_shows_the_enrolment_and_the_steps_email(
    client_for, rep, make_sequence, make_contact
) -> None:
    sequence = make_sequence("email", ("wait", 2), "email", name="Q1 outreach")
    ada = make_contact()
    (enrolment,), _ = people_enrol(sequence=sequence, people=[ada], by=rep)
    enrolments_advance()
    enrolment_stop(enrolment=enrolment, by=rep)

    page = client_for(rep).get(reverse("crm:contact_detail", args=[ada.pk]))

    kinds = [entry.kind for entry in page.context["timeline"].entries]
    assert kinds.count("sequence") == 2  # enrolled, stopped
    assert "email" in kinds
    content = page.content.decode()
    assert "Sequence “Q1 outreach”, step 1" in content
    assert f"Stopped by {rep.display_name}" in content
    assert reverse("automation:enrolment_detail", args=[enrolment.pk]) in content
