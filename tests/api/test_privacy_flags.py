"""A person's privacy flags through the API: admins only, each change kept as on the record
page (crm.privacy_changes.privacy_update)."""

import json

import pytest

from crm.models import PrivacyChange


def _url(kind, pk=None):
    return f"/api/v1/privacy/{kind}s/" + (f"{pk}/" if pk else "")


def _patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


def test_an_admin_sets_dont_track_and_the_change_is_kept(client_for, admin_user, make_contact):
    ada = make_contact()

    response = _patch(
        client_for(admin_user), _url("contact", ada.pk), {"has_opted_out_tracking": True}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["has_opted_out_tracking"] is True and body["individual"] is not None
    assert [(c["label"], c["value"], c["source"]) for c in body["changes"]] == [
        ("Don't Track", True, "API")
    ]
    ada.refresh_from_db()
    assert ada.individual.has_opted_out_tracking
    change = PrivacyChange.objects.get(contact=ada)
    assert (change.field, change.value, change.changed_by) == (
        "has_opted_out_tracking",
        True,
        admin_user,
    )


def test_setting_a_flag_to_what_it_is_keeps_no_change(
    client_for, admin_user, make_lead, make_individual
) -> None:
    grace = make_lead(individual=make_individual(has_opted_out_processing=True))

    response = _patch(
        client_for(admin_user), _url("lead", grace.pk), {"has_opted_out_processing": True}
    )

    assert response.status_code == 200 and response.json()["changes"] == []
    assert not PrivacyChange.objects.exists()


def test_an_admin_reads_a_persons_flags(client_for, admin_user, make_contact, make_individual):
    ada = make_contact(individual=make_individual(has_opted_out_solicit=True))

    body = client_for(admin_user).get(_url("contact", ada.pk)).json()

    assert (body["has_opted_out_solicit"], body["has_opted_out_tracking"]) == (True, False)


@pytest.mark.parametrize("persona", ["rep", "manager"])
def test_reps_and_managers_may_not_read_or_change_flags(
    client_for, request, persona, make_contact
) -> None:
    ada = make_contact()
    client = client_for(request.getfixturevalue(persona))

    assert client.get(_url("contact")).status_code == 403
    assert client.get(_url("contact", ada.pk)).status_code == 403
    response = _patch(client, _url("contact", ada.pk), {"has_opted_out_tracking": True})

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert not PrivacyChange.objects.exists()


def test_a_flag_must_be_a_boolean(client_for, admin_user, make_contact) -> None:
    ada = make_contact()

    response = _patch(client_for(admin_user), _url("contact", ada.pk), {"should_forget": "maybe"})

    assert response.status_code == 400
    assert "should_forget" in response.json()["errors"]


def test_an_unknown_person_is_not_found(client_for, admin_user, db) -> None:
    assert client_for(admin_user).get(_url("lead", 987654)).status_code == 404
