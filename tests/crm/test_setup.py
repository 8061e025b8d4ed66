"""Setup: an admin switches each setting and sees it saved; bad values are refused."""

from django.urls import reverse

from crm import jobs
from crm.models import OrgSettings

VALID = {
    "enhanced_email": "on",
    "email_tracking_enabled": "on",
    "deliverability_access": "all",
    "enforce_email_privacy": "on",
    "data_protection_in_records": "on",
    "daily_single_email_limit": "5000",
    "daily_list_email_limit": "5000",
    "no_activity_days": "14",
    "engagement_alert_threshold": "3",
    "machine_open_filtering": "on",
    "store_full_ip": "",
    "scanner_window_seconds": "10",
    "soft_bounce_limit": "3",
    "soft_bounce_window_days": "30",
    "list_email_per_minute": "0",
    "influence_time_frame_days": "365",
    "email_log_retention_months": "24",
    "email_body_retention_months": "24",
    "inbound_raw_retention_days": "90",
    "events_after_dont_track": "not_stored",
    "webhook_private_addresses": "",
    "capture_reach_back_days": "30",
    "capture_excluded_addresses": "",
    "capture_attachment_contents": "",
    "capture_attachment_max_kb": "1024",
    "captured_body_retention_months": "24",
    "mailbox_failure_limit": "5",
}


def test_setup_starts_with_salesforce_like_defaults(db) -> None:
    org = OrgSettings.load()

    assert org.enhanced_email and org.email_tracking_enabled and org.enforce_email_privacy
    assert org.deliverability_access == OrgSettings.Deliverability.ALL
    assert (org.daily_single_email_limit, org.daily_list_email_limit, org.no_activity_days) == (
        5000,
        5000,
        14,
    )


def test_each_setting_shows_one_line_saying_what_it_does(client_for, admin_user) -> None:
    page = client_for(admin_user).get(reverse("crm:setup"))

    for name in VALID:
        field = page.context["form"].fields[name]
        assert field.help_text
        assert field.help_text.encode().replace(b"'", b"&#x27;") in page.content


def test_an_admin_switches_tracking_off_and_sees_it_saved(client_for, admin_user) -> None:
    client = client_for(admin_user)

    response = client.post(
        reverse("crm:setup"), {**VALID, "email_tracking_enabled": ""}, follow=True
    )

    org = OrgSettings.load()
    assert not org.email_tracking_enabled
    assert org.updated_by == admin_user
    assert b"Setup saved: Email tracking." in response.content
    assert response.context["form"]["email_tracking_enabled"].value() is False


def test_an_excluded_address_that_is_neither_address_nor_domain_is_refused(
    client_for, admin_user
) -> None:
    response = client_for(admin_user).post(
        reverse("crm:setup"),
        VALID | {"capture_excluded_addresses": "bank.example\nnot an address"},
    )

    assert response.context["form"].errors["capture_excluded_addresses"]
    assert OrgSettings.load().capture_excluded_addresses == ""


def test_a_limit_of_zero_is_refused_and_nothing_changes(client_for, admin_user) -> None:
    response = client_for(admin_user).post(
        reverse("crm:setup"), {**VALID, "daily_single_email_limit": "0", "no_activity_days": "7"}
    )

    assert response.context["form"].errors["daily_single_email_limit"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert OrgSettings.load().no_activity_days == 14


def test_there_is_only_ever_one_setup_row(db) -> None:
    OrgSettings.load()
    OrgSettings(no_activity_days=3).save()

    assert OrgSettings.objects.count() == 1
    assert OrgSettings.load().no_activity_days == 3


def test_switching_machine_open_filtering_queues_a_recount(
    client_for, admin_user, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(jobs, "send_now", lambda name, *a, **k: sent.append(name))
    client = client_for(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("crm:setup"), VALID | {"machine_open_filtering": ""})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("crm:setup"),
            VALID | {"machine_open_filtering": "", "no_activity_days": "15"},
        )

    assert sent == ["tracking.tasks.recount_counters"]  # once: the second left it as it was
