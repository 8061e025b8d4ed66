from django.urls import reverse


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
