"""Where the metrics and follow-ups show: lists, record pages, My tasks, the admin."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.activity import activity_metrics_recompute
from crm.models import ActivityMetric, Contact, OrgSettings, Task
from tests.crm.activity import email_to


@pytest.fixture
def quiet_and_busy(make_contact, make_account):
    now = timezone.now()
    quiet = make_contact(last_name="Quiet", account=make_account())
    busy = make_contact(last_name="Busy", email="busy@example.com")
    Contact.objects.update(created_at=now - timedelta(days=90))
    email_to(quiet, when=now - timedelta(days=40))
    email_to(busy, when=now - timedelta(days=2))
    activity_metrics_recompute()
    return quiet, busy


def names(response) -> list[str]:
    return [row.record.last_name for row in response.context["table"].page.object_list]


def test_the_contact_list_sorts_by_last_activity(client_for, rep, quiet_and_busy) -> None:
    client = client_for(rep)

    newest_first = client.get(reverse("crm:contact_list"), {"sort": "-last_activity"})
    quietest_first = client.get(reverse("crm:contact_list"), {"sort": "-inactive_days"})

    assert names(newest_first) == ["Busy", "Quiet"]
    assert names(quietest_first) == ["Quiet", "Busy"]
    assert b"Days quiet" in newest_first.content


@pytest.mark.parametrize("model", ["contact", "account"])
def test_the_list_filters_records_with_no_activity_for_30_days(
    client_for, rep, quiet_and_busy, model
) -> None:
    response = client_for(rep).get(reverse(f"crm:{model}_list"), {"quiet": "30"})

    rows = [row.record for row in response.context["table"].page.object_list]
    quiet, _ = quiet_and_busy
    assert rows == [quiet if model == "contact" else quiet.account]


def test_the_lead_list_shows_its_metrics_without_a_query_per_row(
    client_for, rep, make_lead, django_assert_num_queries
) -> None:
    for index in range(10):
        email_to(make_lead(last_name=f"L{index}"), when=timezone.now())
    activity_metrics_recompute()
    client = client_for(rep)
    client.get(reverse("crm:lead_list"))

    # session, user, permissions (2), count, rows with their metrics, navbar roles and count
    with django_assert_num_queries(8):
        response = client.get(reverse("crm:lead_list"))

    assert response.context["table"].page.object_list[0].record.activity.emails_sent_30d == 1


def test_a_contact_page_shows_its_activity(client_for, rep, quiet_and_busy) -> None:
    quiet, _ = quiet_and_busy

    page = client_for(rep).get(reverse("crm:contact_detail", args=[quiet.pk]))

    content = page.content.decode()
    assert "Days without activity</dt><dd>40</dd>" in content
    assert "0 sent, 0 received, 0 opens, 0 clicks" in content  # the email was 40 days ago


def test_the_card_counts_in_words_one_open_one_click(client_for, rep, quiet_and_busy) -> None:
    quiet, _ = quiet_and_busy
    ActivityMetric.objects.filter(contact=quiet).update(
        human_opens_30d=1, human_clicks_30d=1, activities_30d=1
    )

    page = client_for(rep).get(reverse("crm:contact_detail", args=[quiet.pk])).content.decode()

    assert "1 open, 1 click; 1 activity in all" in page


def test_a_page_whose_metrics_are_not_computed_yet_says_so(client_for, rep, make_lead) -> None:
    page = client_for(rep).get(reverse("crm:lead_detail", args=[make_lead().pk]))

    assert b"Not computed yet" in page.content


@pytest.fixture
def rita_tasks(rep, other_rep, make_contact, make_task):
    ada = make_contact()
    follow_up = make_task(subject="No activity for 15 days", kind="follow_up", who_contact=ada)
    alert = make_task(
        subject="Ada opened", kind="engagement_alert", alert_date=timezone.localdate()
    )
    make_task(subject="Done follow-up", kind="follow_up", status="completed")
    make_task(subject="Regular")
    make_task(subject="Otto's", kind="follow_up", owner=other_rep)
    return follow_up, alert


def test_my_tasks_lists_the_reps_open_follow_ups_and_alerts(
    client_for, rep, rita_tasks, django_assert_num_queries
) -> None:
    client = client_for(rep)
    client.get(reverse("crm:my_tasks"))

    # session, user, permissions (2), count, rows with their records, navbar roles and count
    with django_assert_num_queries(8):
        response = client.get(reverse("crm:my_tasks"))

    rows = {row.record for row in response.context["table"].page.object_list}
    assert rows == set(rita_tasks)
    assert 'title="Open follow-ups and alerts">2</span>' in response.content.decode()


def test_my_tasks_filters_by_why(client_for, rep, rita_tasks) -> None:
    response = client_for(rep).get(reverse("crm:my_tasks"), {"kind": "engagement_alert"})

    assert [row.record.subject for row in response.context["table"].page.object_list] == [
        "Ada opened"
    ]


def test_the_navigation_shows_no_count_without_follow_ups(client_for, rep) -> None:
    page = client_for(rep).get(reverse("home"))

    assert b"My tasks" in page.content
    assert b"Open follow-ups and alerts" not in page.content


def test_setup_changes_the_alert_threshold(client_for, admin_user) -> None:
    from tests.crm.test_setup import VALID

    client_for(admin_user).post(reverse("crm:setup"), {**VALID, "engagement_alert_threshold": "7"})

    assert OrgSettings.load().engagement_alert_threshold == 7


def test_the_admin_lists_and_recomputes_metrics(client_for, admin_user, quiet_and_busy) -> None:
    quiet, _ = quiet_and_busy
    admin_user.is_superuser = True
    admin_user.save(update_fields=["is_superuser"])
    client = client_for(admin_user)
    url = reverse("admin:crm_activitymetric_changelist")
    email_to(quiet, when=timezone.now())

    listing = client.get(url, {"type": "contact", "quiet": "30"})
    response = client.post(
        url,
        {
            "action": "recompute_selected",
            "_selected_action": [ActivityMetric.objects.get(contact=quiet).pk],
        },
        follow=True,
    )

    assert [row.contact for row in listing.context["cl"].result_list] == [quiet]
    assert b"Activity metrics recomputed for 1 records." in response.content
    assert ActivityMetric.objects.get(contact=quiet).inactive_days == 0
    assert client.get(reverse("admin:crm_contact_changelist"), {"quiet": "90"}).status_code == 200
    assert Task.objects.count() == 0
