"""The Mailbox page: test and connect (errors in words), credentials encrypted and never shown,
folders, status, pausing after repeated failures, disconnecting, and the admins' list."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from capture.credentials import password_decrypt
from capture.models import Mailbox
from capture.sync import mailbox_sync
from crm.models import OrgSettings, Task
from tests.capture.conftest import connect
from tests.inbound.imap_server import HOST, PASSWORD, dovecot

pytestmark = [pytest.mark.django_db, pytest.mark.services]

URL = "/mailbox/"


def _form(box, **overrides):
    return {
        "host": HOST,
        "security": "tls",
        "port": box.port,
        "username": box.user,
        "password": PASSWORD,
        "other_addresses": "",
        **overrides,
    }


def test_test_connection_reports_the_folders_and_saves_nothing(rep, client_for, imap_box):
    response = client_for(rep).post(URL, {**_form(imap_box), "action": "test"})

    assert response.status_code == 200
    assert "the sent folder is “Sent”" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_connecting_stores_the_password_encrypted_and_never_shows_it(rep, client_for, imap_box):
    client = client_for(rep)
    response = client.post(URL, {**_form(imap_box), "action": "connect"}, follow=True)

    mailbox = Mailbox.objects.get(user=rep)
    assert (mailbox.host, mailbox.username, mailbox.sent_folder) == (HOST, imap_box.user, "Sent")
    assert PASSWORD not in mailbox.password_token
    assert password_decrypt(mailbox.password_token) == PASSWORD
    page = response.content.decode()
    assert PASSWORD not in page and mailbox.password_token not in page
    assert "Mailbox connected" in page and "capture+" in page  # and the Bcc address


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"host": "no-such-host.invalid"}, "is not in DNS"),
        ({"password": "wrong"}, "refused the user name or app password"),
        ({"port": "closed"}, "refused the connection"),
        ({"ca": ""}, "is not trusted"),
    ],
)
def test_a_failed_test_says_what_failed_in_words(
    rep, client_for, imap_box, settings, change, words
):
    if "ca" in change:
        settings.MAILBOX_TLS_CA_FILE = ""
    form = _form(imap_box, **{k: v for k, v in change.items() if k != "ca"})
    if form["port"] == "closed":
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            form["port"] = probe.getsockname()[1]

    response = client_for(rep).post(URL, {**form, "action": "connect"})

    assert response.status_code == 400
    assert words in response.content.decode()
    assert PASSWORD not in response.content.decode()
    assert not Mailbox.objects.exists()


def test_without_an_encryption_key_connecting_is_refused(rep, client_for, imap_box, settings):
    settings.MAILBOX_ENCRYPTION_KEY = []
    settings.DEBUG = False

    response = client_for(rep).post(URL, {**_form(imap_box), "action": "connect"})

    assert response.status_code == 400
    assert "no MAILBOX_ENCRYPTION_KEY" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_a_server_without_special_use_folders_asks_for_the_sent_folder(rep, client_for, settings):
    with dovecot(tls=True) as plain:
        settings.MAILBOX_TLS_CA_FILE = str(plain.workdir / "cert.pem")
        box = plain.mailbox()
        conn = box.connect()
        conn.create('"Sent Items"')
        conn.logout()
        client = client_for(rep)
        page = client.post(URL, {**_form(box), "action": "connect"}, follow=True)
        assert "marks no folder as Sent: choose it" in page.content.decode()
        mailbox = Mailbox.objects.get(user=rep)
        assert mailbox.sent_folder == "" and "Sent Items" in mailbox.known_folders

        client.post(reverse("capture:folders"), {"inbox": "INBOX", "sent": "Sent Items"})

    mailbox.refresh_from_db()
    assert mailbox.sent_folder == "Sent Items"


def test_the_same_folder_twice_is_refused(rep, client_for, imap_box):
    mailbox = connect(rep, imap_box)

    response = client_for(rep).post(
        reverse("capture:folders"), {"inbox": "INBOX", "sent": "INBOX", "private": ""}
    )

    assert response.status_code == 400
    assert "a different folder for each" in response.content.decode()
    mailbox.refresh_from_db()
    assert mailbox.sent_folder == "Sent"


@pytest.mark.django_db(transaction=True)
def test_a_mailbox_failing_setups_limit_in_a_row_is_paused_and_its_owner_told(
    rep, client_for, imap_box
):
    org = OrgSettings.load()
    org.mailbox_failure_limit = 2
    org.save()
    mailbox = connect(rep, imap_box)
    Mailbox.objects.filter(pk=mailbox.pk).update(inbox_folder="Gone")

    first = mailbox_sync(mailbox_id=mailbox.pk)
    assert "The folder “Gone” cannot be opened" in first.error
    assert not Task.objects.filter(owner=rep).exists()
    mailbox_sync(mailbox_id=mailbox.pk)

    mailbox.refresh_from_db()
    assert mailbox.is_paused and mailbox.failures_in_a_row == 2
    task = Task.objects.get(owner=rep)
    assert "stopped syncing" in task.subject and "Gone" in task.description
    assert mailbox_sync(mailbox_id=mailbox.pk).ran is False  # not retried while paused
    page = client_for(rep).get(URL).content.decode()
    assert "Paused" in page and "cannot be opened" in page

    client_for(rep).post(reverse("capture:resume"))
    mailbox.refresh_from_db()
    assert not mailbox.is_paused and mailbox.failures_in_a_row == 0


def test_disconnecting_asks_first_then_deletes_the_credentials(rep, client_for, imap_box):
    connect(rep, imap_box)
    client = client_for(rep)

    confirm = client.get(reverse("capture:disconnect"))
    assert confirm.status_code == 200 and "Disconnect" in confirm.content.decode()
    assert Mailbox.objects.filter(user=rep).exists()

    client.post(reverse("capture:disconnect"))
    assert not Mailbox.objects.filter(user=rep).exists()


def test_a_user_sees_only_their_own_mailbox(rep, other_rep, client_for, imap_box):
    connect(other_rep, imap_box)

    page = client_for(rep).get(URL).content.decode()

    assert imap_box.user not in page and "Connect your mailbox" in page


def test_the_admin_lists_every_users_mailbox_status(
    rep, other_rep, admin_user, client_for, imap_server, django_assert_max_num_queries
):
    for user in (rep, other_rep):
        connect(user, imap_server.mailbox())
    Mailbox.objects.filter(user=other_rep).update(last_error="TLS failed")
    client = client_for(admin_user)

    with django_assert_max_num_queries(12):
        response = client.get("/admin/capture/mailbox/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "rita" in page and "otto" in page and "TLS failed" in page
    assert "password_token" not in page and "Password token" not in page
    assert client_for(rep).get("/admin/capture/mailbox/").status_code == 302


def test_an_admin_resumes_a_paused_mailbox_from_the_list(rep, admin_user, client_for, imap_box):
    mailbox = connect(rep, imap_box)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        paused_at=mailbox.connected_at, failures_in_a_row=5
    )

    client_for(admin_user).post(
        "/admin/capture/mailbox/",
        {"action": "resume", "_selected_action": [mailbox.pk]},
    )

    mailbox.refresh_from_db()
    assert not mailbox.is_paused and mailbox.failures_in_a_row == 0
