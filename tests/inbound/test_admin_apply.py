"""The admin's one-click "apply" on an Unmatched bounce or complaint: POST + CSRF, the Admin
role only, once."""

import pytest
from django.test import Client

from crm.models import Contact, EmailSuppression, PrivacyChange
from inbound.models import InboundMessage
from inbound.processing import inbound_mail_process
from tests.inbound.conftest import arf


@pytest.fixture
def forged(sent) -> InboundMessage:
    return inbound_mail_process(raw=arf(recipient="ada@example.com"), source="pipe")


def _apply_url(message: InboundMessage) -> str:
    return f"/admin/inbound/inboundmessage/{message.pk}/apply/"


def test_the_change_page_offers_apply_for_an_unmatched_complaint(forged, client_for, admin_user):
    page = client_for(admin_user).get(f"/admin/inbound/inboundmessage/{forged.pk}/change/")

    assert page.status_code == 200
    assert _apply_url(forged).encode() in page.content
    assert b"csrfmiddlewaretoken" in page.content


def test_the_button_applies_it_once_and_says_so_the_second_time(forged, client_for, admin_user):
    client = client_for(admin_user)

    first = client.post(_apply_url(forged), follow=True)
    second = client.post(_apply_url(forged), follow=True)

    assert first.status_code == second.status_code == 200
    assert b"Applied." in first.content and b"Not applied" in second.content
    assert _apply_url(forged).encode() not in second.content  # no button once applied
    forged.refresh_from_db()
    assert (forged.status, forged.applied_by) == ("processed", admin_user)
    assert Contact.objects.get(email="ada@example.com").has_opted_out_of_email
    assert PrivacyChange.objects.count() == 1


def test_the_list_action_applies_the_selected_messages(forged, client_for, admin_user):
    response = client_for(admin_user).post(
        "/admin/inbound/inboundmessage/",
        {"action": "apply_reports", "_selected_action": [forged.pk]},
        follow=True,
    )

    assert b"Applied 1 message(s)." in response.content
    assert EmailSuppression.objects.get().address == "ada@example.com"


def test_a_staff_user_without_the_admin_role_cannot_apply(forged, client_for, manager):
    manager.is_staff = True
    manager.save(update_fields=["is_staff"])

    response = client_for(manager).post(_apply_url(forged))

    assert response.status_code == 403
    forged.refresh_from_db()
    assert forged.applied_at is None and not EmailSuppression.objects.exists()


def test_apply_is_post_only_and_checks_csrf(forged, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.get(_apply_url(forged)).status_code == 405
    assert client.post(_apply_url(forged)).status_code == 403
    forged.refresh_from_db()
    assert forged.applied_at is None


def test_the_queue_reads_in_constant_queries(
    sent, client_for, admin_user, django_assert_max_num_queries
) -> None:
    for n in range(5):
        inbound_mail_process(raw=arf(recipient=f"p{n}@example.com"), source="pipe")
    client = client_for(admin_user)
    client.get("/admin/inbound/inboundmessage/")  # the session and permissions, cached

    with django_assert_max_num_queries(12):
        page = client.get("/admin/inbound/inboundmessage/?status__exact=unmatched")

    assert page.status_code == 200 and b"p4@example.com" in page.content
