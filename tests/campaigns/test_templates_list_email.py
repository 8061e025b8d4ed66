"""The list email composer offers the templates its writer may use and records the one each
copy was written from."""

from campaigns.members import members_add
from crm.models import EmailMessage, EmailTemplate


def test_the_list_composer_offers_usable_templates_and_records_the_one_sent(
    client_for, rep, other_rep, manager, campaign, make_contact, django_capture_on_commit_callbacks
) -> None:
    shared = EmailTemplate.objects.create(
        name="Launch", subject="Launch", html_body="<p>Hi {{first_name}}</p>", owner=manager
    )
    theirs = EmailTemplate.objects.create(
        name="Otto's", subject="S", html_body="<p>x</p>", is_private=True, owner=other_rep
    )
    EmailTemplate.objects.create(
        name="Old", subject="S", html_body="<p>x</p>", is_active=False, owner=manager
    )
    ada = make_contact(first_name="Ada", email="ada@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk])
    client = client_for(rep)
    url = f"/campaigns/{campaign.pk}/email/"

    page = client.get(url)
    assert set(page.context["templates"]) == {str(shared.pk)}
    fields = {"subject": "Launch", "html_body": "<p>Hi {{first_name}}</p>", "action": "send"}
    refused = client.post(url, fields | {"template": theirs.pk})
    assert "template" in refused.context["form"].errors
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, fields | {"template": shared.pk})

    email = EmailMessage.objects.get()
    assert (email.template, email.subject) == (shared, "Launch")
