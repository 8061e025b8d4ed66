"""One-click unsubscribe (RFC 8058): the mail client's POST opts the person out with no login
or cookie; a GET (a link scanner, a preview) only asks to confirm and changes nothing."""

import pytest
from django.core import mail
from django.db.models import Sum
from django.test import Client

from campaigns.services import members_add
from crm.models import EmailDailyStat, EmailEvent, EmailMessageRelation, PrivacyChange
from crm.timeline import timeline
from tests.tracking.conftest import CHROME


@pytest.fixture
def copy(campaign, make_contact, send_list_email):
    """Ada's list email copy: her relation and the List-Unsubscribe URL her mail carries."""
    ada = make_contact(email="ada@example.com")
    members_add(campaign=campaign, contact_ids=[ada.pk])
    send_list_email(campaign)
    (message,) = mail.outbox
    header = message.extra_headers["List-Unsubscribe"]
    url = header.split(",")[0].strip("<> ")
    relation = EmailMessageRelation.objects.get(contact=ada)
    return relation, url.removeprefix("https://t.openrate.test")


def test_the_one_click_post_opts_the_person_out_as_a_mail_client_sends_it(copy) -> None:
    relation, path = copy
    client = Client(enforce_csrf_checks=True)  # no session, no cookie, no CSRF token

    response = client.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        HTTP_USER_AGENT="Mozilla/5.0 (compatible; GmailUnsubscribe)",
    )

    assert response.status_code == 200
    relation.contact.refresh_from_db()
    assert relation.contact.has_opted_out_of_email
    change = PrivacyChange.objects.get()
    assert (change.label, change.value, change.source) == (
        "Email Opt Out",
        True,
        "one-click unsubscribe",
    )
    assert any(entry.obj == change for entry in timeline(relation.contact).entries)


def test_a_scanners_get_changes_nothing_and_only_asks_to_confirm(copy) -> None:
    relation, path = copy

    response = Client().get(path, HTTP_USER_AGENT=CHROME)

    assert response.status_code == 200
    assert b'name="List-Unsubscribe" value="One-Click"' in response.content
    relation.contact.refresh_from_db()
    assert not relation.contact.has_opted_out_of_email
    assert not PrivacyChange.objects.exists()


def test_a_second_click_changes_nothing_more(copy) -> None:
    _, path = copy
    for _ in range(2):
        Client().post(path, {"List-Unsubscribe": "One-Click"})

    assert PrivacyChange.objects.count() == 1


def test_an_unsubscribe_is_in_the_email_log_and_the_rollups_once(copy) -> None:
    relation, path = copy
    for _ in range(2):
        Client().post(path, {"List-Unsubscribe": "One-Click"})

    event = EmailEvent.objects.get(kind=EmailEvent.Kind.UNSUBSCRIBED)
    assert event.relation == relation
    stats = EmailDailyStat.objects.aggregate(unsubscribed=Sum("unsubscribed"))
    assert stats["unsubscribed"] == 1


def test_a_forged_token_unsubscribes_no_one(copy) -> None:
    relation, path = copy
    forged = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    response = Client().post(forged, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 404
    relation.contact.refresh_from_db()
    assert not relation.contact.has_opted_out_of_email


def test_a_post_without_the_one_click_body_is_refused(copy) -> None:
    relation, path = copy

    assert Client().post(path, {}).status_code == 400
    relation.contact.refresh_from_db()
    assert not relation.contact.has_opted_out_of_email


def test_single_email_carries_no_list_unsubscribe(rep, make_contact, sent_email) -> None:
    assert "List-Unsubscribe" not in mail.outbox[-1].extra_headers
