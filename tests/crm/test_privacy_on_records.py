"""A person's privacy on their page: who may change what, and every change on the timeline."""

from django.urls import reverse

from crm.models import PrivacyChange
from crm.timeline import timeline


def _post(client, contact, **flags):
    data = {name: "on" for name, on in flags.items() if on}
    return client.post(reverse("crm:person_privacy", args=["contact", contact.pk]), data)


def test_a_rep_turns_email_opt_out_on_and_the_timeline_says_who_and_when(
    client_for, rep, make_contact
) -> None:
    contact = make_contact()

    _post(client_for(rep), contact, has_opted_out_of_email=True)

    contact.refresh_from_db()
    assert contact.has_opted_out_of_email
    change = PrivacyChange.objects.get()
    assert (change.label, change.value, change.changed_by, change.source) == (
        "Email Opt Out",
        True,
        rep,
        "record page",
    )
    assert [e.obj for e in timeline(contact).entries] == [change]


def test_a_rep_cannot_change_the_individuals_flags(
    client_for, rep, make_contact, make_individual
) -> None:
    contact = make_contact(individual=make_individual(has_opted_out_tracking=True))

    _post(client_for(rep), contact, has_opted_out_tracking=False, has_opted_out_processing=True)

    contact.individual.refresh_from_db()
    assert (
        contact.individual.has_opted_out_tracking
        and not contact.individual.has_opted_out_processing
    )
    assert not PrivacyChange.objects.exists()


def test_an_admin_sets_dont_track_and_an_individual_is_created(
    client_for, admin_user, make_contact
) -> None:
    contact = make_contact(first_name="Ada", last_name="Lovelace")

    response = _post(client_for(admin_user), contact, has_opted_out_tracking=True)

    contact.refresh_from_db()
    assert contact.individual.name == "Ada Lovelace"
    assert contact.individual.has_opted_out_tracking
    assert PrivacyChange.objects.get().label == "Don't Track"
    assert response["Location"] == contact.get_absolute_url()


def test_another_rep_cannot_change_it(client_for, other_rep, make_contact) -> None:
    contact = make_contact()

    response = _post(client_for(other_rep), contact, has_opted_out_of_email=True)

    assert response.status_code == 404


def test_the_form_only_takes_a_post(client_for, rep, make_contact) -> None:
    response = client_for(rep).get(
        reverse("crm:person_privacy", args=["contact", make_contact().pk])
    )

    assert response.status_code == 405
