"""The permission matrix: every page, for anonymous, rep, other rep, manager, admin and outsider.

The records belong to the rep. Another rep gets 404 on them (their existence is not revealed);
a user without the permission gets 403; anonymous users are sent to the login page.
"""

from typing import Any

import pytest
from django.urls import reverse

OK, FORBIDDEN, NOT_FOUND, LOGIN = 200, 403, 404, "login"

PERSONAS = ["anonymous", "rep", "other_rep", "manager", "admin_user", "outsider"]

# page name -> expected answer per persona, in PERSONAS order (after anonymous, always LOGIN)
MATRIX: dict[str, tuple[Any, ...]] = {
    "home": (OK, OK, OK, OK, OK),
    "password_change": (OK, OK, OK, OK, OK),
    "crm:setup": (FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN),
    "admin:index": (LOGIN, LOGIN, LOGIN, OK, LOGIN),
    **{
        f"crm:{model}_list": (OK, OK, OK, OK, FORBIDDEN)
        for model in ("account", "contact", "lead", "opportunity", "task")
    },
    **{
        f"crm:{model}_create": (OK, OK, OK, OK, FORBIDDEN)
        for model in ("account", "contact", "lead", "opportunity", "task")
    },
    **{
        f"crm:{model}_detail": (OK, NOT_FOUND, OK, OK, FORBIDDEN)
        for model in ("account", "contact", "lead", "opportunity", "task")
    },
    **{
        f"crm:{model}_edit": (OK, NOT_FOUND, OK, OK, FORBIDDEN)
        for model in ("account", "contact", "lead", "opportunity", "task")
    },
    **{
        f"crm:{model}_delete": (FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN)
        for model in ("account", "contact", "lead", "opportunity")
    },
    "crm:task_delete": (OK, NOT_FOUND, OK, OK, FORBIDDEN),
    "crm:lead_convert": (OK, NOT_FOUND, OK, OK, FORBIDDEN),
}


@pytest.fixture
def records(make_account, make_contact, make_lead, make_opportunity, make_task) -> dict[str, int]:
    account = make_account()
    return {
        "account": account.pk,
        "contact": make_contact(account=account).pk,
        "lead": make_lead().pk,
        "opportunity": make_opportunity(account=account).pk,
        "task": make_task().pk,
    }


def _url(name: str, records: dict[str, int]) -> str:
    model = name.removeprefix("crm:").split("_")[0]
    if name.endswith(("_detail", "_edit", "_delete", "_convert")):
        return reverse(name, args=[records[model]])
    return reverse(name)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("page", sorted(MATRIX))
def test_each_persona_gets_the_expected_answer_on_each_page(
    request, client_for, records, persona: str, page: str
) -> None:
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    url = _url(page, records)

    response = client_for(user).get(url)

    expected = LOGIN if persona == "anonymous" else MATRIX[page][PERSONAS.index(persona) - 1]
    if expected == LOGIN:
        assert response.status_code == 302
        assert "login" in response["Location"]
    else:
        assert response.status_code == expected


def test_the_login_page_is_open_to_anyone(client) -> None:
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="password"' in response.content


@pytest.mark.parametrize("persona,expected", [("rep", 302), ("other_rep", 404), ("outsider", 403)])
def test_marking_a_task_done_follows_the_same_rules(
    request, client_for, make_task, persona: str, expected: int
) -> None:
    task = make_task()

    response = client_for(request.getfixturevalue(persona)).post(
        reverse("crm:task_complete", args=[task.pk])
    )

    assert response.status_code == expected
    task.refresh_from_db()
    assert task.is_completed == (expected == 302)


def test_marking_a_task_done_refuses_get(client_for, rep, make_task) -> None:
    task = make_task()

    response = client_for(rep).get(reverse("crm:task_complete", args=[task.pk]))

    assert response.status_code == 405
    task.refresh_from_db()
    assert not task.is_completed
