from datetime import timedelta
from io import StringIO

import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone


def test_a_user_logs_in_and_lands_on_home(client, rep) -> None:
    response = client.post(reverse("login"), {"username": "rita", "password": "pw"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"Hello, Rita" in response.content


def test_a_wrong_password_says_so_and_keeps_the_username(client, rep) -> None:
    response = client.post(reverse("login"), {"username": "rita", "password": "nope"})

    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert b'value="rita"' in response.content


def test_logging_out_takes_a_post(client_for, rep) -> None:
    client = client_for(rep)

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))

    assert response["Location"] == reverse("login")
    assert client.get(reverse("home")).status_code == 302


def test_a_user_changes_their_password(client_for, rep) -> None:
    response = client_for(rep).post(
        reverse("password_change"),
        {
            "old_password": "pw",
            "new_password1": "a-long-new-secret",
            "new_password2": "a-long-new-secret",
        },
    )

    assert response["Location"] == reverse("password_change_done")
    rep.refresh_from_db()
    assert rep.check_password("a-long-new-secret")


def test_home_lists_my_open_tasks_and_counts(
    client_for, rep, other_rep, make_task, make_contact
) -> None:
    make_task(subject="Mine")
    make_task(subject="Done", status="completed")
    make_task(subject="Theirs", owner=other_rep)
    make_contact()

    page = client_for(rep).get(reverse("home"))

    assert [task.subject for task in page.context["tasks"]] == ["Mine"]
    assert page.context["counts"]["Contacts"][0] == 1


# Login throttling (django-axes): five failures lock the username from that address.


def _fail(client, username: str = "rita", times: int = 1):
    for _ in range(times):
        response = client.post(reverse("login"), {"username": username, "password": "nope"})
    return response


def test_five_wrong_passwords_lock_the_username_from_that_address(client, rep) -> None:
    assert _fail(client, times=4).status_code == 200

    locked = _fail(client)

    assert locked.status_code == 429
    assert b"Login locked" in locked.content and b"15 minutes" in locked.content
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    # Even the right password is refused while the lock lasts.
    right = client.post(reverse("login"), {"username": "rita", "password": "pw"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_an_overlong_username_is_a_wrong_login_like_any_other(client, rep) -> None:
    response = client.post(reverse("login"), {"username": "x" * 5000, "password": "pw"})

    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_the_lock_holds_only_that_username_and_address(client, rep, other_rep) -> None:
    _fail(client, times=5)

    other_user = client.post(reverse("login"), {"username": "otto", "password": "pw"})
    elsewhere = Client(REMOTE_ADDR="203.0.113.9").post(
        reverse("login"), {"username": "rita", "password": "pw"}
    )

    assert other_user.status_code == 302
    assert elsewhere.status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, rep) -> None:
    _fail(client, times=5)

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = client.post(reverse("login"), {"username": "rita", "password": "pw"})

    assert response.status_code == 302


def test_a_success_clears_the_count(client, rep) -> None:
    _fail(client, times=4)
    client.post(reverse("login"), {"username": "rita", "password": "pw"})
    client.post(reverse("logout"))

    assert _fail(client, times=4).status_code == 200


def test_an_admin_unlocks_a_login_from_the_command_line(client, rep) -> None:
    _fail(client, times=5)

    call_command("axes_reset_username", "rita", stdout=StringIO())
    response = client.post(reverse("login"), {"username": "rita", "password": "pw"})

    assert response.status_code == 302


def test_an_admin_sees_and_clears_locked_logins_in_the_admin(
    client, client_for, rep, admin_user
) -> None:
    _fail(client, times=5)
    attempt = AccessAttempt.objects.get(username="rita")
    admin = client_for(admin_user)

    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    admin.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})

    assert listing.status_code == 200 and b"rita" in listing.content
    assert not AccessAttempt.objects.exists()
    assert client.post(reverse("login"), {"username": "rita", "password": "pw"}).status_code == 302


def test_the_admin_login_page_is_ours(client) -> None:
    response = client.get(reverse("admin:login") + "?next=/admin/crm/")

    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/crm/"


def test_a_logged_in_user_without_admin_access_is_refused_not_looped(client_for, rep) -> None:
    assert client_for(rep).get(reverse("admin:index"), follow=True).status_code == 403


def test_the_login_log_keeps_the_retention_and_no_more(client, rep, settings) -> None:
    from axes.models import AccessLog

    from crm.tasks import prune_login_log

    settings.LOGIN_LOG_RETENTION_DAYS = 90
    with time_machine.travel(timezone.now() - timedelta(days=91)):
        assert (
            client.post(reverse("login"), {"username": "rita", "password": "pw"}).status_code == 302
        )
    client.post(reverse("logout"))
    assert client.post(reverse("login"), {"username": "rita", "password": "pw"}).status_code == 302
    assert AccessLog.objects.count() == 2

    assert prune_login_log.delay().get() == 1

    (kept,) = AccessLog.objects.all()
    assert kept.attempt_time > timezone.now() - timedelta(days=1)
