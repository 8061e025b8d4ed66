"""Stored emails are read-only in the Django admin, as in Salesforce: they record what was
sent or received, and only sending and inbound mail create them."""

from django.urls import reverse

from crm.models import EmailMessage, EmailMessageRelation


def _email(rep) -> EmailMessage:
    email = EmailMessage.objects.create(subject="Pricing", sender=rep, from_address="r@x.test")
    EmailMessageRelation.objects.create(email=email, relation_type="to", address="ada@x.test")
    return email


def test_an_admin_sees_a_stored_email_but_cannot_change_it(client_for, admin_user, rep) -> None:
    email = _email(rep)
    client = client_for(admin_user)
    url = reverse("admin:crm_emailmessage_change", args=[email.pk])

    page = client.get(url)
    posted = client.post(url, {"subject": "Changed", "status": "sent"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    email.refresh_from_db()
    assert email.subject == "Pricing"


def test_no_email_or_recipient_is_added_by_hand(client_for, admin_user, rep) -> None:
    relation = _email(rep).relations.get()
    client = client_for(admin_user)

    assert client.get(reverse("admin:crm_emailmessage_add")).status_code == 403
    assert client.get(reverse("admin:crm_emailmessagerelation_add")).status_code == 403
    change = reverse("admin:crm_emailmessagerelation_change", args=[relation.pk])
    assert client.post(change, {"address": "eve@x.test"}).status_code == 403
    relation.refresh_from_db()
    assert relation.address == "ada@x.test"
