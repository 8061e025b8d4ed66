"""The dashboard's and the email log's rep filter: the sales people, by name."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from crm.models import Role, User


@pytest.fixture
def people(rep, other_rep, manager, admin_user, outsider) -> dict[str, User]:
    gone = User.objects.create_user(username="gone", first_name="Gone", is_active=False)
    gone.groups.add(Group.objects.get(name=Role.REP.value))
    return {"rep": rep, "other_rep": other_rep, "manager": manager, "gone": gone}


def _rep_options(html: str) -> list[str]:
    select = html.split('name="rep"', 1)[1].split("</select>", 1)[0]
    return [part.split(">", 1)[1].split("<", 1)[0] for part in select.split("<option")[1:]]


@pytest.mark.parametrize("name", ["reports:dashboard", "reports:email_log"])
def test_the_rep_filter_lists_active_sales_users_by_display_name(
    client_for, people, manager, name
) -> None:
    html = client_for(manager).get(reverse(name)).content.decode()

    # Reps and managers by name, in name order; not the admin, the user without a role or an
    # inactive rep; "Rita Rep" is the rep's full name, the others have a first name only.
    assert _rep_options(html)[1:] == ["Mona", "Otto", "Rita Rep"]
    assert _rep_options(html)[0] == "All reps"


def test_choosing_a_rep_still_filters_the_dashboard(client_for, people, manager) -> None:
    response = client_for(manager).get(reverse("reports:dashboard"), {"rep": people["rep"].pk})

    assert response.status_code == 200
    assert f'<option value="{people["rep"].pk}" selected>Rita Rep</option>' in (
        response.content.decode()
    )


def test_an_admin_is_no_choice_even_by_id(client_for, people, manager, admin_user) -> None:
    response = client_for(manager).get(reverse("reports:dashboard"), {"rep": admin_user.pk})

    assert f'value="{admin_user.pk}" selected' not in response.content.decode()


def test_the_email_log_event_filter_is_checkboxes_named_on_its_button(client_for, manager) -> None:
    html = client_for(manager).get(reverse("reports:email_log")).content.decode()
    assert 'type="checkbox" name="kind" value="bounced"' in html
    assert ">Any event</button>" in html

    chosen = client_for(manager).get(reverse("reports:email_log"), {"kind": ["bounced", "clicked"]})
    assert ">Bounced, Clicked</button>" in chosen.content.decode()

    three = client_for(manager).get(
        reverse("reports:email_log"), {"kind": ["bounced", "clicked", "opened"]}
    )
    assert ">3 events</button>" in three.content.decode()
