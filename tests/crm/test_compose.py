"""The composer on a Contact's or Lead's page: validation, templates, queued then sent."""

from django.core import mail
from django.urls import reverse

from crm.models import EmailMessage, EmailTemplate, OrgSettings

BODY = "<p>Hello {{first_name}}, see <a href='https://example.com/a'>this</a>.</p>"


def _compose(client, contact, **fields):
    data = {"to": contact.email, "cc": "", "bcc": "", "subject": "Hi", "html_body": BODY} | fields
    return client.post(reverse("crm:contact_email", args=[contact.pk]), data)


def test_the_composer_starts_with_the_persons_address(client_for, rep, make_contact) -> None:
    contact = make_contact(email="ada@example.com")

    page = client_for(rep).get(reverse("crm:contact_email", args=[contact.pk]))

    assert page.context["form"]["to"].value() == "ada@example.com"
    assert b"{{first_name}}" in page.content  # the merge fields are listed


def test_sending_queues_the_email_and_goes_to_its_page(
    client_for, rep, make_contact, django_capture_on_commit_callbacks
) -> None:
    contact = make_contact(email="ada@example.com")
    client = client_for(rep)

    with django_capture_on_commit_callbacks(execute=True):
        response = _compose(client, contact, cc="boss@example.org")

    email = EmailMessage.objects.get()
    assert response["Location"] == email.get_absolute_url()
    assert email.relations.get(address="ada@example.com").contact == contact
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "boss@example.org"]
    page = client.get(email.get_absolute_url())
    assert b"Email queued." in page.content and b"Sent" in page.content


def test_a_bad_address_and_an_unknown_merge_field_are_explained_and_nothing_is_sent(
    client_for, rep, make_contact
) -> None:
    contact = make_contact()

    response = _compose(
        client_for(rep), contact, cc="ok@example.com, not-an-address", subject="Hi {{nickname}}"
    )

    form = response.context["form"]
    assert form.errors["cc"] == ["Not an email address: not-an-address."]
    assert "Unknown merge field {{nickname}}" in form.non_field_errors()[0]
    assert EmailMessage.objects.count() == 0
    assert b"Hi {{nickname}}" in response.content  # what was typed is kept


def test_a_refused_send_says_why_and_keeps_the_draft(client_for, rep, make_contact) -> None:
    org = OrgSettings.load()
    org.deliverability_access = "no_access"
    org.save()

    response = _compose(client_for(rep), make_contact())

    assert "No access" in response.context["form"].non_field_errors()[0]
    assert response.context["form"]["html_body"].value() == BODY


def test_a_recipient_refused_by_privacy_is_named_after_sending(
    client_for, rep, make_contact, make_individual, django_capture_on_commit_callbacks
) -> None:
    contact = make_contact(email="ok@example.com")
    make_contact(email="no@example.com", individual=make_individual(has_opted_out_processing=True))

    client = client_for(rep)
    with django_capture_on_commit_callbacks(execute=True):
        response = _compose(client, contact, to="ok@example.com, no@example.com")

    page = client.get(response["Location"])
    assert "not sent to no@example.com (Don&#x27;t Process)" in page.content.decode()


def test_templates_are_offered_with_their_content(client_for, rep, make_contact) -> None:
    EmailTemplate.objects.create(
        name="Intro", subject="Meet us", html_body="<p>Hi {{first_name}}</p>"
    )

    page = client_for(rep).get(reverse("crm:contact_email", args=[make_contact().pk]))

    assert b'id="email-templates"' in page.content
    assert b"Meet us" in page.content


def test_a_rep_cannot_email_from_someone_elses_record(client_for, other_rep, make_contact) -> None:
    response = client_for(other_rep).get(reverse("crm:contact_email", args=[make_contact().pk]))

    assert response.status_code == 404


def test_the_lead_page_has_a_composer_too(client_for, rep, make_lead) -> None:
    lead = make_lead()

    page = client_for(rep).get(reverse("crm:lead_email", args=[lead.pk]))

    assert page.status_code == 200
    assert page.context["form"]["to"].value() == lead.email
