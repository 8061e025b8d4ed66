"""The forget confirmation page: admins only, what goes and what stays, then the job queued."""

import pytest

from crm.sending import email_send
from dataprotection.forget import person_forget
from dataprotection.models import DataRequest
from dataprotection.people import person_from
from privacy.models import AuditEntry


@pytest.fixture
def ada(rep, make_contact, make_individual, make_task, django_capture_on_commit_callbacks):
    """Ada with one email of her own, one shared with Bob, and a task."""
    individual = make_individual(first_name="Ada", last_name="Lovelace")
    ada = make_contact(individual=individual)
    bob = make_contact(first_name="Bob", last_name="Brown", email="bob@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[ada], subject="Pricing", html_body="<p>Hi</p>")
        email_send(sender=rep, to=[ada, bob], subject="Both", html_body="<p>Hi both</p>")
    make_task(who_contact=ada, subject="Call Ada")
    return ada


@pytest.mark.parametrize("persona", ["rep", "manager"])
def test_only_an_admin_may_open_or_post_the_forget_page(request, persona, ada, client_for) -> None:
    client = client_for(request.getfixturevalue(persona))

    assert client.get(f"/privacy/forget/contact/{ada.pk}/").status_code == 403
    assert client.post(f"/privacy/forget/contact/{ada.pk}/").status_code == 403
    assert not DataRequest.objects.exists()


def test_the_page_names_what_goes_and_what_stays(ada, client_for, admin_user) -> None:
    response = client_for(admin_user).get(f"/privacy/forget/contact/{ada.pk}/")

    assert response.status_code == 200
    preview = response.context["preview"]
    assert (preview.records, preview.individuals, preview.tasks) == (1, 1, 1)
    assert (preview.emails_erased, preview.emails_scrubbed) == (1, 1)
    assert preview.inbound_messages == preview.tracking_events == 0
    page = response.content.decode()
    assert "Ada Lovelace" in page and "ada@example.com" in page
    assert "age out on their own schedule" in page
    assert "Forget this person</button>" in page


def test_an_unknown_kind_or_record_is_not_found(ada, client_for, admin_user) -> None:
    client = client_for(admin_user)

    assert client.get(f"/privacy/forget/account/{ada.pk}/").status_code == 404
    assert client.get("/privacy/forget/contact/999999/").status_code == 404


def test_posting_records_the_request_and_queues_the_job_after_commit(
    ada, client_for, admin_user, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client_for(admin_user).post(f"/privacy/forget/contact/{ada.pk}/")

    data_request = DataRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/privacy/requests/{data_request.pk}/"
    assert (data_request.kind, data_request.status, data_request.subject) == (
        "forget",
        "queued",
        f"Contact #{ada.pk}",
    )
    assert data_request.contact == ada and data_request.requested_by == admin_user
    assert len(queued) == 1
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target, entry.actor) == (
        "forget_requested",
        f"Contact #{ada.pk}",
        admin_user,
    )
    ada.refresh_from_db()
    assert ada.forgotten_at is None  # the job has not run


def test_a_person_already_forgotten_gets_no_button_and_no_second_request(
    ada, client_for, admin_user
) -> None:
    person_forget(person=person_from("contact", ada.pk))
    client = client_for(admin_user)

    page = client.get(f"/privacy/forget/contact/{ada.pk}/").content.decode()
    client.post(f"/privacy/forget/contact/{ada.pk}/")

    assert "is already forgotten" in page and "Forget this person</button>" not in page
    assert not DataRequest.objects.exists()


def test_the_record_pages_offer_forget_to_admins_and_show_when_it_happened(
    ada, make_lead, client_for, admin_user, rep
) -> None:
    url = f"/privacy/forget/contact/{ada.pk}/"
    lead = make_lead()

    assert url in client_for(admin_user).get(ada.get_absolute_url()).content.decode()
    assert url not in client_for(rep).get(ada.get_absolute_url()).content.decode()
    lead_page = client_for(admin_user).get(lead.get_absolute_url()).content.decode()
    assert f"/privacy/forget/lead/{lead.pk}/" in lead_page

    person_forget(person=person_from("contact", ada.pk))

    page = client_for(admin_user).get(ada.get_absolute_url()).content.decode()
    assert "Forgotten on" in page and url not in page


def test_the_individual_admin_page_links_to_forget(ada, client_for, admin_user) -> None:
    url = f"/admin/privacy/individual/{ada.individual_id}/change/"

    page = client_for(admin_user).get(url).content.decode()
    assert f"/privacy/forget/individual/{ada.individual_id}/" in page

    person_forget(person=person_from("individual", ada.individual_id))

    assert "Forgotten on" in client_for(admin_user).get(url).content.decode()
