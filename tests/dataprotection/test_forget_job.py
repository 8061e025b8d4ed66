"""The forget job: claimed once, all or nothing, and a failure shown on the request in words."""

import pytest

from crm.models import EmailMessage
from crm.sending import email_send
from dataprotection import forget
from dataprotection.models import DataRequest
from privacy.models import AuditEntry


@pytest.fixture
def queued(rep, admin_user, make_contact, django_capture_on_commit_callbacks) -> DataRequest:
    ada = make_contact()
    with django_capture_on_commit_callbacks(execute=True):
        email_send(sender=rep, to=[ada], subject="Pricing for Ada", html_body="<p>Hi Ada</p>")
    with django_capture_on_commit_callbacks(execute=False):
        return forget.forget_request(actor=admin_user, kind="contact", pk=ada.pk)


def test_the_job_runs_once_however_often_it_is_delivered(queued) -> None:
    first = forget.forget_request_run(request_id=queued.pk)
    second = forget.forget_request_run(request_id=queued.pk)

    assert first is not None and first.status == DataRequest.Status.DONE
    assert first.progress == 100 and first.finished_at is not None
    assert second is None
    assert AuditEntry.objects.filter(action="forgotten").count() == 1


def test_a_failure_erases_nothing_and_is_shown_on_the_request(queued, monkeypatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full for ada@example.com")

    monkeypatch.setattr(forget, "_records_forget", fail)

    with pytest.raises(RuntimeError):
        forget.forget_request_run(request_id=queued.pk)

    queued.refresh_from_db()
    assert queued.status == DataRequest.Status.FAILED
    assert queued.error == "RuntimeError: the disk is full for [forgotten]"
    # The emails were scrubbed before the failure, in the same transaction: rolled back.
    assert EmailMessage.objects.get().subject == "Pricing for Ada"
    assert not AuditEntry.objects.filter(action="forgotten").exists()
