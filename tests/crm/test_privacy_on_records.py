"""A person's privacy on their page: who may change what, and every change on the timeline."""

from django.forms import model_to_dict
from django.urls import reverse

from crm.forms import ContactForm
from crm.models import PrivacyChange
from crm.timeline import timeline
from privacy.models import AuditEntry


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


def test_email_opt_out_changed_in_the_edit_form_is_a_privacy_change_like_any_other(
    client_for, rep, make_contact
) -> None:
    contact = make_contact()
    data = {
        name: value
        for name, value in model_to_dict(contact, fields=ContactForm._meta.fields).items()
        if value is not None and name != "has_opted_out_of_email"
    }

    response = client_for(rep).post(
        reverse("crm:contact_edit", args=[contact.pk]), {**data, "has_opted_out_of_email": "on"}
    )

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.has_opted_out_of_email
    change = PrivacyChange.objects.get()
    assert (change.label, change.value, change.changed_by, change.source) == (
        "Email Opt Out",
        True,
        rep,
        "edit form",
    )
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PRIVACY_FLAG)
    assert (entry.target, entry.note) == (f"Contact #{contact.pk}", "edit form")
    # Saving the form again unchanged records nothing more.
    client_for(rep).post(
        reverse("crm:contact_edit", args=[contact.pk]), {**data, "has_opted_out_of_email": "on"}
    )
    assert PrivacyChange.objects.count() == 1


def test_a_lead_created_opted_out_has_the_change_on_its_timeline(client_for, rep) -> None:
    response = client_for(rep).post(
        reverse("crm:lead_create"),
        {
            "last_name": "Hopper",
            "company": "Navy",
            "email": "grace@example.com",
            "status": "open",
            "has_opted_out_of_email": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    change = PrivacyChange.objects.get()
    assert (change.lead.has_opted_out_of_email, change.source) == (True, "edit form")
