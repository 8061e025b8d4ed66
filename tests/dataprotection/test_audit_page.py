"""The audit trail's page (admins): newest first, filtered, paginated, and its CSV."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from privacy.audit import audit_record
from privacy.models import AuditEntry

URL = reverse("dataprotection:audit")
CSV_URL = reverse("dataprotection:audit_csv")


@pytest.fixture
def trail(admin_user, rep) -> None:
    """Three entries over three days (UTC): Setup by ada, a flag by a recipient, a role by ada."""
    entries = [
        (datetime(2026, 5, 1, 10, tzinfo=UTC), admin_user, "setup", "Setup", "Email tracking"),
        (datetime(2026, 5, 2, 23, 30, tzinfo=UTC), None, "privacy_flag", "Contact #12", "Email Opt Out"),
        (datetime(2026, 5, 3, 8, tzinfo=UTC), admin_user, "role", f"User #{rep.pk}", "Role"),
    ]  # fmt: skip
    for at, actor, action, target, field in entries:
        with time_machine.travel(at, tick=False):
            audit_record(actor=actor, action=action, target=target, field=field, before=1, after=2)


def _targets(response) -> list[str]:
    return [entry.target for entry in response.context["table"].page.object_list.data]


def test_an_admin_sees_every_entry_newest_first_in_bounded_queries(
    client_for, admin_user, rep, trail, django_assert_num_queries
) -> None:
    client = client_for(admin_user)
    client.get(URL)

    # The session, the user, two for permissions, the actors filter, the count, the page, the
    # nav (tasks, roles).
    with django_assert_num_queries(9):
        page = client.get(URL)

    assert _targets(page) == [f"User #{rep.pk}", "Contact #12", "Setup"]
    text = page.content.decode()
    assert "Setup changed" in text and "No user" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "setup"}, ["Setup"]),
        ({"actor": "ada"}, ["User #", "Setup"]),
        ({"actor": "~"}, ["Contact #12"]),
        ({"target": "contact #1"}, ["Contact #12"]),
        ({"start": "2026-05-02", "end": "2026-05-02"}, ["Contact #12"]),
        ({"start": "2026-05-03"}, ["User #"]),
        ({"end": "2026-05-01"}, ["Setup"]),
    ],
)
def test_the_filters_choose_entries(client_for, admin_user, trail, query, expected) -> None:
    page = client_for(admin_user).get(URL, query)

    targets = _targets(page)
    assert len(targets) == len(expected)
    assert all(t.startswith(e) for t, e in zip(targets, expected, strict=True))


def test_days_are_the_users_own(client_for, admin_user, trail) -> None:
    admin_user.time_zone = "Europe/Paris"  # 23:30 UTC on May 2nd is 01:30 on May 3rd there
    admin_user.save(update_fields=["time_zone"])

    page = client_for(admin_user).get(URL, {"start": "2026-05-03", "end": "2026-05-03"})

    assert len(_targets(page)) == 2 and _targets(page)[1] == "Contact #12"


def test_filters_that_make_no_sense_are_said_and_every_entry_is_shown(
    client_for, admin_user, trail
) -> None:
    page = client_for(admin_user).get(URL, {"start": "2026-05-03", "end": "2026-05-01"})

    assert len(_targets(page)) == 3
    assert "The start date must be on or before the end date." in page.content.decode()


def test_no_entry_says_so(client_for, admin_user) -> None:
    page = client_for(admin_user).get(URL, {"action": "role"})

    assert "No entry matches these filters" in page.content.decode()


def test_the_csv_holds_the_filtered_entries_in_the_users_time_zone(
    client_for, admin_user, trail
) -> None:
    AuditEntry.objects.create(action="setup", target="Setup", field="x", after="=HYPERLINK(1)")
    admin_user.time_zone = "Europe/Paris"
    admin_user.save(update_fields=["time_zone"])

    response = client_for(admin_user).get(CSV_URL, {"action": "setup"})

    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["at", "who", "change", "target", "field", "before", "after", "note"]
    assert rows[2] == [
        "2026-05-01T12:00:00+02:00",
        "ada",
        "Setup changed",
        "Setup",
        "Email tracking",
        "1",
        "2",
        "",
    ]
    assert rows[1][6] == "'=HYPERLINK(1)"  # a spreadsheet would run it as a formula
    assert len(rows) == 3


@pytest.mark.parametrize("persona", ["rep", "manager"])
@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_reps_and_managers_may_not_see_it(client_for, persona, url, request) -> None:
    assert client_for(request.getfixturevalue(persona)).get(url).status_code == 403


def test_a_long_value_is_cut_on_the_page_and_nothing_in_it_runs(client_for, admin_user) -> None:
    audit_record(actor=None, action="setup", target="Setup", before="<b>x</b>" * 40, after="<i>")

    text = client_for(admin_user).get(URL).content.decode()

    assert "<b>" not in text and "<i>" not in text and "&lt;i&gt;" in text
    assert f'title="{"&lt;b&gt;x&lt;/b&gt;" * 40}"' in text
    assert "&lt;b&gt;x&lt;/b&gt;" * 14 + "&lt;b&gt;x&lt;/b…</span>" in text  # 120 characters
