"""The audit trail is written where privacy and configuration change (Setup, a person's flags,
a user's role) and is append-only, in the application and in the Django admin."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, Role
from crm.privacy_changes import unsubscribe_record
from privacy.models import AuditEntry
from tests.crm.test_setup import VALID

SETUP_FORM = {
    **VALID,
    "email_body_retention_months": "24",
    "inbound_raw_retention_days": "90",
    "events_after_dont_track": OrgSettings.AfterDontTrack.NOT_STORED,
}


def _entries() -> list[tuple[str, str, str, str, str, str]]:
    return list(
        AuditEntry.objects.order_by("pk").values_list(
            "actor_name", "action", "target", "field", "before", "after"
        )
    )


def test_each_changed_setup_field_is_audited_as_people_read_it(client_for, admin_user) -> None:
    form = {
        **SETUP_FORM,
        "email_tracking_enabled": "",
        "no_activity_days": "7",
        "events_after_dont_track": OrgSettings.AfterDontTrack.ANONYMOUS,
    }

    client_for(admin_user).post(reverse("crm:setup"), form)

    assert _entries() == [
        ("ada", "setup", "Setup", "Email tracking", "on", "off"),
        ("ada", "setup", "Setup", "Days without activity before a follow-up", "14", "7"),
        (
            "ada",
            "setup",
            "Setup",
            "Opens and clicks after Don't Track",
            "Not stored",
            "Counted anonymously",
        ),
    ]


def test_saving_setup_unchanged_audits_nothing(client_for, admin_user) -> None:
    client_for(admin_user).post(reverse("crm:setup"), SETUP_FORM)

    assert not AuditEntry.objects.exists()


def test_a_flag_changed_on_the_record_page_is_audited_with_its_source(
    client_for, admin_user, make_contact
) -> None:
    contact = make_contact()

    client_for(admin_user).post(
        reverse("crm:person_privacy", args=["contact", contact.pk]),
        {"has_opted_out_tracking": "on", "has_opted_out_of_email": "on"},
    )

    assert _entries() == [
        ("ada", "privacy_flag", f"Contact #{contact.pk}", "Email Opt Out", "off", "on"),
        ("ada", "privacy_flag", f"Contact #{contact.pk}", "Don't Track", "off", "on"),
    ]
    assert set(AuditEntry.objects.values_list("note", flat=True)) == {"record page"}


def test_a_one_click_unsubscribe_is_audited_with_no_user(make_lead) -> None:
    lead = make_lead()
    email = EmailMessage.objects.create(subject="Hi", from_address="rita@openrate.example")
    relation = EmailMessageRelation.objects.create(
        email=email, relation_type="to", address=lead.email, lead=lead
    )

    unsubscribe_record(relation=relation)
    unsubscribe_record(relation=relation)  # a second click changes nothing

    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_name, entry.target, entry.field, entry.note) == (
        None,
        "",
        f"Lead #{lead.pk}",
        "Email Opt Out",
        "one-click unsubscribe",
    )


def test_a_role_changed_in_the_admin_is_audited_by_group_name(client_for, admin_user, rep) -> None:
    url = reverse("admin:crm_user_change", args=[rep.pk])
    client = client_for(admin_user)
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("groups", "user_permissions", "password")
    }
    manager_role = Group.objects.get(name=Role.MANAGER.value)
    data.update(
        {
            "groups": [manager_role.pk],
            "last_login_0": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
        }
    )
    data = {name: ("on" if value is True else value) for name, value in data.items() if value}

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _entries() == [
        ("ada", "role", f"User #{rep.pk}", "Role", Role.REP.value, Role.MANAGER.value)
    ]

    client.post(url, data)  # saved again unchanged
    assert AuditEntry.objects.count() == 1


def test_entries_can_be_added_but_never_changed_or_removed(admin_user) -> None:
    entry = AuditEntry.objects.create(action=AuditEntry.Action.SETUP, target="Setup")

    entry.after = "tampered"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(after="tampered")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().after == ""


def test_the_admin_shows_entries_but_offers_no_add_change_or_delete(client_for, admin_user) -> None:
    entry = AuditEntry.objects.create(action=AuditEntry.Action.SETUP, target="Setup", after="x")
    client = client_for(admin_user)
    change = reverse("admin:privacy_auditentry_change", args=[entry.pk])

    listing = client.get(reverse("admin:privacy_auditentry_changelist"))
    page = client.get(change)

    assert listing.status_code == page.status_code == 200
    assert "delete_selected" not in listing.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"target": "Contact #1"}).status_code == 403
    assert client.get(reverse("admin:privacy_auditentry_add")).status_code == 403
    delete = reverse("admin:privacy_auditentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.target == "Setup"


def test_a_flag_changed_in_the_individual_admin_is_audited(
    client_for, admin_user, make_individual
) -> None:
    individual = make_individual()
    url = reverse("admin:privacy_individual_change", args=[individual.pk])
    client = client_for(admin_user)
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data["has_opted_out_geo_tracking"] = "on"

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _entries() == [
        (
            admin_user.username,
            "privacy_flag",
            f"Individual #{individual.pk}",
            "Block Geolocation",
            "off",
            "on",
        )
    ]


def test_setup_is_shown_not_changed_in_the_django_admin(client_for, admin_user) -> None:
    """Setup changes on its page, where each change is audited and the recounts are queued."""
    OrgSettings.load()
    client = client_for(admin_user)
    url = reverse("admin:crm_orgsettings_change", args=[1])

    assert client.get(url).status_code == 200
    client.post(url, {**SETUP_FORM, "enhanced_email": ""})

    assert OrgSettings.objects.get().enhanced_email is True
    assert not AuditEntry.objects.exists()
