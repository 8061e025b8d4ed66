"""Enhanced Email off: a send is one completed Email task per person, as in Salesforce, and
counts once in their activity."""

import pytest
from django.core import mail

from crm.activity import activity_metrics_recompute
from crm.models import ActivityMetric, EmailMessageRelation, OrgSettings, Task, TrackedLink
from crm.sending import email_send
from crm.timeline import timeline


@pytest.fixture
def send_off(rep, django_capture_on_commit_callbacks):
    org = OrgSettings.load()
    org.enhanced_email = False
    org.save()

    def run(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            return email_send(
                sender=rep,
                **{"subject": "Hello {{first_name}}", "html_body": "<p>Hi {{first_name}}</p>"}
                | fields,
            )

    return run


def test_each_person_gets_a_completed_email_task_showing_what_they_got(
    send_off, make_contact, make_lead, rep
) -> None:
    ada = make_contact(first_name="Ada", email="ada@example.com")
    grace = make_lead(first_name="Grace", last_name="Hopper", email="grace@example.com")

    email = send_off(to=[ada], cc=[grace, "someone@example.org"])

    tasks = {task.who: task for task in Task.objects.all()}
    assert set(tasks) == {ada, grace}
    for person, name in ((ada, "Ada"), (grace, "Grace")):
        task = tasks[person]
        assert (task.subtype, task.status, task.owner) == ("email", "completed", rep)
        assert task.subject == f"Email: Hello {name}"
        assert f"Hi {name}" in task.description
        assert task.completed_at is not None
    # The copies are still delivered, untracked, marked as logged by the task.
    assert len(mail.outbox) == 3
    assert not email.is_tracked and not TrackedLink.objects.exists()
    assert set(
        email.relations.exclude(relation_type="from").values_list("untracked_reason", flat=True)
    ) == {EmailMessageRelation.LOGGED_AS_TASK}


def test_a_send_to_plain_addresses_logs_one_task_naming_no_one(send_off) -> None:
    send_off(to=["a@example.org", "b@example.org"], subject="Note", html_body="<p>Hi</p>")

    (task,) = Task.objects.all()
    assert (task.who, task.subject) == (None, "Email: Note")


def test_nothing_is_logged_when_nobody_may_receive_it(
    send_off, make_contact, make_individual
) -> None:
    make_contact(individual=make_individual(has_opted_out_processing=True))

    email = send_off(to=["ada@example.com"])

    assert email.delivery_status == "failed"
    assert not Task.objects.exists()


def test_the_send_counts_once_in_the_persons_activity(send_off, make_contact) -> None:
    ada = make_contact()

    send_off(to=[ada])
    activity_metrics_recompute(contact_ids=[ada.pk])

    metric = ActivityMetric.objects.get(contact=ada)
    assert metric.activities_30d == 1
    assert metric.last_activity_at is not None


def test_the_timeline_shows_the_send_once_as_its_task(send_off, make_contact) -> None:
    ada = make_contact()

    send_off(to=[ada])

    assert [entry.kind for entry in timeline(ada).entries] == ["task"]
