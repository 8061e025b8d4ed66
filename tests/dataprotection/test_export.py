"""Exporting a person's data: an archive (JSON + CSV) with every section of their history and
nothing of anyone else, built by a job that shows its progress, downloadable only by the admin
who asked, for 7 days, each step in the audit trail."""

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from automation.enrolment import people_enrol
from automation.models import Firing, Rule, Sequence, Step
from campaigns.members import members_add
from campaigns.models import Campaign
from capture.models import CapturedAttachment
from crm.models import Contact, EmailMessageRelation, Role
from crm.privacy_changes import privacy_update
from crm.scheduling import scheduled_email_create
from crm.sending import email_send
from dataprotection import export
from dataprotection.models import DataRequest
from dataprotection.tasks import exports_expire
from inbound.processing import inbound_mail_process
from privacy.models import AuditEntry
from tests.conftest import _make_user
from tests.tracking.conftest import (  # noqa: F401 -- fixtures
    CHROME,
    call,
    embedded,
    tracking_app,
)
from tracking.ingestion import events_ingest

SECTIONS = [
    "records",
    "privacy_changes",
    "emails",
    "events",
    "campaign_memberships",
    "inbound_messages",
    "scheduled_emails",
    "captured_attachments",
    "sequences",
    "triggered_emails",
    "tasks",
]
BOB_IP = "203.0.113.99"


@dataclass
class History:
    ada: Contact
    bob: Contact
    copy: EmailMessageRelation


def _pixel_for(address: str) -> str:
    (message,) = [m for m in mail.outbox if m.to == [address]]
    html = message.alternatives[0][0]
    base = re.escape(settings.TRACKING_BASE_URL)
    pixel = re.findall(rf'"{base}(/t/o/[^"]+)"', html)[0]
    return str(pixel)


def _reply(copy: EmailMessageRelation) -> bytes:
    date = format_datetime(timezone.now() + timedelta(minutes=1))
    return (
        "From: Ada Lovelace <ada@example.com>\r\nTo: rita@openrate.example\r\n"
        "Subject: Re: Pricing\r\nMessage-ID: <answer-1@example.com>\r\n"
        f"In-Reply-To: <{copy.message_id}>\r\nDate: {date}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nSounds good, call me.\r\n"
    ).encode()


@pytest.fixture
def history(
    settings: Any,
    tmp_path: Path,
    rep: Any,
    make_contact: Callable[..., Contact],
    make_individual: Callable[..., Any],
    make_task: Callable[..., Any],
    embedded: None,  # noqa: F811
    tracking_app: Callable[..., Any],  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> History:
    """Ada, with an email (sent to her and Bob together) she opened and answered, a privacy
    change, a campaign membership and tasks; Bob, on the same email, is someone else."""
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.INBOUND_VERP_DOMAIN = "bounces.openrate.test"
    ada = make_contact(individual=make_individual(first_name="Ada"))
    bob = make_contact(first_name="Bob", last_name="Builder", email="bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        email_send(
            sender=rep,
            to=[ada, bob],
            subject="Pricing",
            html_body='<p>See <a href="https://example.com/pricing">pricing</a></p>',
        )
    app = tracking_app()
    call(app, _pixel_for("ada@example.com"), headers={"User-Agent": CHROME})
    call(app, _pixel_for("bob@example.com"), headers={"User-Agent": CHROME}, remote_addr=BOB_IP)
    assert events_ingest().stored == 2
    copy = EmailMessageRelation.objects.get(contact=ada, relation_type="to")
    with django_capture_on_commit_callbacks(execute=True):
        inbound_mail_process(raw=_reply(copy), source="imap")
        privacy_update(
            person=ada, by=rep, source="record page", flags={"has_opted_out_tracking": True}
        )
        campaign = Campaign.objects.create(name="Spring launch", owner=rep)
        members_add(campaign=campaign, contact_ids=[ada.pk, bob.pk])
    make_task(subject='=HYPERLINK("https://evil.example")', who_contact=ada)
    make_task(subject="Call Bob", who_contact=bob)
    # An email waiting to go, a sequence she is in (by a rule), an attachment of their email.
    scheduled_email_create(
        sender=rep,
        to=["ada@example.com"],
        subject="Next week",
        html_body="<p>Hello again</p>",
        send_at=timezone.now() + timedelta(days=2),
        person=ada,
    )
    sequence = Sequence.objects.create(name="Outreach", owner=rep)
    Step.objects.create(
        sequence=sequence, position=1, kind=Step.Kind.TASK, task_kind="call", task_subject="Call"
    )
    (enrolment,), _ = people_enrol(sequence=sequence, people=[ada], by=rep)
    rule = Rule.objects.create(
        name="Quiet", trigger=Rule.Trigger.QUIET, quiet_days=30, action=Rule.Action.ENROL
    )
    Firing.objects.create(
        rule=rule, event_key=f"quiet:{ada.pk}", contact=ada, enrolment=enrolment, outcome="Enrolled"
    )
    CapturedAttachment.objects.create(email=copy.email, name="terms.pdf", size=1234)
    return History(ada=ada, bob=bob, copy=copy)


@pytest.fixture
def admin(admin_user: Any, client_for: Any) -> Any:
    return client_for(admin_user)


@pytest.fixture
def exported(history: History, admin: Any, django_capture_on_commit_callbacks: Any) -> DataRequest:
    """Ada's export, asked for by the admin and built."""
    return _export(admin, "contact", history.ada.pk, django_capture_on_commit_callbacks)


def _export(client: Any, kind: str, pk: int, capture: Any) -> DataRequest:
    with capture(execute=True):
        response = client.post(reverse("dataprotection:export", args=[kind, pk]))
    data_request = DataRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dataprotection:request", args=[data_request.pk])
    return data_request


def _archive(client: Any, data_request: DataRequest) -> zipfile.ZipFile:
    response = client.get(reverse("dataprotection:request_download", args=[data_request.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_archive_holds_every_section_of_the_persons_history(
    history: History, admin_user: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(admin_user)
    page = client.get(reverse("dataprotection:export", args=["contact", history.ada.pk]))
    assert page.status_code == 200
    assert "Campaign memberships" in page.content.decode()
    assert not DataRequest.objects.exists()

    data_request = _export(client, "contact", history.ada.pk, django_capture_on_commit_callbacks)

    data_request.refresh_from_db()
    assert (data_request.status, data_request.progress, data_request.error) == ("done", 100, "")
    assert data_request.expires_at == data_request.finished_at + timedelta(days=7)
    archive = _archive(client, data_request)
    assert sorted(archive.namelist()) == sorted(
        ["README.txt", "person.json", *(f"{name}.csv" for name in SECTIONS)]
    )
    data = json.loads(archive.read("person.json"))
    assert data["subject"] == f"Contact #{history.ada.pk}"
    assert {name: len(data[name]) for name in SECTIONS} == data_request.counts
    assert sorted(r["record"] for r in data["records"]) == ["contact", "individual"]
    assert any(r["has_opted_out_tracking"] for r in data["records"])
    assert [c["label"] for c in data["privacy_changes"]] == ["Don't Track"]
    # Her copy of the email and the reply she sent.
    assert sorted(e["relation_type"] for e in data["emails"]) == ["from", "to"]
    (sent,) = [e for e in data["emails"] if e["relation_type"] == "to"]
    assert (sent["subject"], sent["human_opens"], sent["address"]) == (
        "Pricing",
        1,
        "ada@example.com",
    )
    assert sent["replied_at"] is not None and "pricing" in sent["html_body"]
    opens = [e for e in data["events"] if e["log"] == "tracking"]
    assert [(e["kind"], e["label"], e["copy_id"]) for e in opens] == [
        ("open", "human", history.copy.pk)
    ]
    assert {e["kind"] for e in data["events"] if e["log"] == "delivery"} >= {"sent"}
    assert [m["campaign_name"] for m in data["campaign_memberships"]] == ["Spring launch"]
    (inbound,) = data["inbound_messages"]
    assert inbound["kind"] == "reply" and "Sounds good, call me." in inbound["raw"]
    assert sorted(t["subject"] for t in data["tasks"]) == sorted(
        ['=HYPERLINK("https://evil.example")', "Ada Lovelace replied: Re: Pricing"]
    )
    (scheduled,) = data["scheduled_emails"]
    assert (scheduled["subject"], scheduled["status"]) == ("Next week", "scheduled")
    assert [(a["name"], a["size"]) for a in data["captured_attachments"]] == [("terms.pdf", 1234)]
    assert [(s["log"], s["kind"]) for s in data["sequences"]] == [
        ("enrolment", "active"),
        ("history", "enrolled"),
    ]
    assert [(f["rule_name"], f["outcome"]) for f in data["triggered_emails"]] == [
        ("Quiet", "Enrolled")
    ]
    readme = archive.read("README.txt").decode()
    assert all(f"{name}.csv" in readme for name in SECTIONS)


def test_each_csv_has_its_header_and_one_row_per_item(admin: Any, exported: DataRequest) -> None:
    archive = _archive(admin, exported)
    data = json.loads(archive.read("person.json"))
    for name in SECTIONS:
        reader = csv.DictReader(io.StringIO(archive.read(f"{name}.csv").decode()))
        rows = list(reader)
        assert reader.fieldnames and "id" in "".join(reader.fieldnames), name
        assert len(rows) == len(data[name]), name
    tasks = list(csv.DictReader(io.StringIO(archive.read("tasks.csv").decode())))
    # A spreadsheet shows a formula-looking cell as text instead of running it.
    assert '\'=HYPERLINK("https://evil.example")' in [t["subject"] for t in tasks]
    emails = list(csv.DictReader(io.StringIO(archive.read("emails.csv").decode())))
    assert "html_body" not in emails[0] and emails[0]["is_tracked"] in ("yes", "no")


def test_the_archive_holds_nothing_of_another_person(admin: Any, exported: DataRequest) -> None:
    archive = _archive(admin, exported)
    for name in archive.namelist():
        content = archive.read(name).decode()
        for trace in ("bob@example.com", "Builder", "Call Bob", BOB_IP):
            assert trace not in content, (name, trace)


def test_an_export_from_the_individual_or_a_lead_with_her_address_reaches_the_same_person(
    history: History,
    admin_user: Any,
    client_for: Any,
    make_lead: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    lead = make_lead(first_name="Ada", last_name="Lovelace", email="ADA@example.com")
    client = client_for(admin_user)
    archive = _archive(
        client,
        _export(
            client, "individual", history.ada.individual_id, django_capture_on_commit_callbacks
        ),
    )
    data = json.loads(archive.read("person.json"))
    assert sorted((r["record"], r["id"]) for r in data["records"]) == sorted(
        [("individual", history.ada.individual_id), ("contact", history.ada.pk), ("lead", lead.pk)]
    )


@pytest.mark.parametrize("persona", ["rep", "manager"])
def test_reps_and_managers_may_not_export_or_see_requests(
    persona: str, request: Any, history: History, client_for: Any
) -> None:
    client = client_for(request.getfixturevalue(persona))
    url = reverse("dataprotection:export", args=["contact", history.ada.pk])

    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert client.get(reverse("dataprotection:requests")).status_code == 403
    assert not DataRequest.objects.exists()


def test_only_the_admin_who_asked_may_download(
    history: History,
    admin_user: Any,
    rep: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = client_for(admin_user)
    data_request = _export(client, "contact", history.ada.pk, django_capture_on_commit_callbacks)
    other_admin = client_for(_make_user("alan", Role.ADMIN))
    download = reverse("dataprotection:request_download", args=[data_request.pk])
    detail = reverse("dataprotection:request", args=[data_request.pk])

    assert other_admin.get(download).status_code == 404
    assert client_for(rep).get(download).status_code == 404
    # The other admin sees the request, not the button.
    page = other_admin.get(detail).content.decode()
    assert "Only ada, who asked for it, can download" in page and download not in page
    assert download in client.get(detail).content.decode()
    assert not AuditEntry.objects.filter(action="export_downloaded").exists()


def test_the_audit_trail_records_the_request_the_build_and_each_download(
    history: History, admin_user: Any, admin: Any, exported: DataRequest
) -> None:
    data_request = exported
    _archive(admin, data_request)

    entries = list(
        AuditEntry.objects.order_by("pk").values_list("action", "actor", "target", "note")
    )
    subject = f"Contact #{history.ada.pk}"
    note = f"Data request #{data_request.pk}"
    assert [e[:3] for e in entries if e[0] != "privacy_flag"] == [
        ("export_requested", admin_user.pk, subject),
        ("exported", None, subject),
        ("export_downloaded", admin_user.pk, subject),
    ]
    assert all(e[3].startswith(note) for e in entries if e[0] != "privacy_flag")


def test_an_export_expires_after_seven_days(admin: Any, exported: DataRequest) -> None:
    client, data_request = admin, exported
    data_request.refresh_from_db()
    path = Path(settings.EXPORT_DIR) / data_request.file_path
    download = reverse("dataprotection:request_download", args=[data_request.pk])

    with time_machine.travel(timezone.now() + timedelta(days=6, hours=23)):
        assert exports_expire() == 0
        assert client.get(download).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        assert client.get(download).status_code == 404
        assert exports_expire() == 1

    assert not path.exists()
    data_request.refresh_from_db()
    assert (data_request.status, data_request.file_path) == ("expired", "")
    assert client.get(download).status_code == 404


def test_the_file_name_is_random_and_the_job_runs_once(exported: DataRequest) -> None:
    data_request = exported
    data_request.refresh_from_db()

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.zip", data_request.file_path)
    assert export.export_build(request_id=data_request.pk) is None


def test_progress_moves_as_the_job_writes(
    history: History,
    admin_user: Any,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    seen: list[tuple[int, str]] = []
    sections = export.sections
    report = export._Progress.report

    def one_row_chunks(person: Any) -> list[export.Section]:
        return [replace(section, chunk=1) for section in sections(person)]

    def spy(self: Any, *args: Any) -> None:
        report(self, *args)
        seen.append(DataRequest.objects.values_list("progress", "step").get())

    monkeypatch.setattr(export, "sections", one_row_chunks)
    monkeypatch.setattr(export._Progress, "report", spy)
    client = client_for(admin_user)
    data_request = _export(client, "contact", history.ada.pk, django_capture_on_commit_callbacks)

    percents = [percent for percent, _ in seen]
    assert percents == sorted(percents) and len(set(percents)) > 5 and percents[-1] < 100
    assert any(step.startswith("Writing events: 1 of") for _, step in seen)
    progress = client.get(reverse("dataprotection:request_progress", args=[data_request.pk]))
    assert progress.json() == {
        "status": "done",
        "status_label": "Done",
        "progress": 100,
        "step": "Done",
        "error": "",
        "finished": True,
    }


def test_a_failed_build_says_why_and_leaves_no_file(
    history: History,
    admin_user: Any,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "_section_write", full_disk)
    client = client_for(admin_user)
    data_request = _export(client, "contact", history.ada.pk, django_capture_on_commit_callbacks)

    data_request.refresh_from_db()
    assert data_request.status == "failed"
    assert data_request.error == (
        "The archive could not be written in the export folder (No space left on device)."
    )
    assert list(Path(settings.EXPORT_DIR).iterdir()) == []
    page = client.get(reverse("dataprotection:request", args=[data_request.pk])).content.decode()
    assert "No space left on device" in page and "Download the archive" not in page
    assert not AuditEntry.objects.filter(action="exported").exists()


def test_a_forgotten_person_has_nothing_to_export(
    history: History, admin_user: Any, client_for: Any
) -> None:
    Contact.objects.filter(pk=history.ada.pk).update(forgotten_at=timezone.now())
    client = client_for(admin_user)
    url = reverse("dataprotection:export", args=["contact", history.ada.pk])

    assert "was forgotten" in client.get(url).content.decode()
    assert "was forgotten" in client.post(url).content.decode()
    assert not DataRequest.objects.exists()


def test_a_person_forgotten_before_the_job_ran_fails_in_words(
    history: History, admin_user: Any
) -> None:
    data_request = DataRequest.objects.create(
        kind="export",
        subject=f"Contact #{history.ada.pk}",
        contact=history.ada,
        requested_by=admin_user,
    )
    Contact.objects.filter(pk=history.ada.pk).update(forgotten_at=timezone.now())

    export.export_build(request_id=data_request.pk)

    data_request.refresh_from_db()
    assert (data_request.status, data_request.file_path) == ("failed", "")
    assert data_request.error == (
        f"Contact #{history.ada.pk} was forgotten: Openrate holds nothing more to export."
    )


def test_the_requests_list_shows_both_kinds_in_bounded_queries(
    admin_user: Any, client_for: Any, make_contact: Any, django_assert_num_queries: Any
) -> None:
    ada = make_contact()
    client = client_for(admin_user)
    for kinds in (("export",), ("forget", "export")):
        for kind in kinds:
            DataRequest.objects.create(
                kind=kind, subject=f"Contact #{ada.pk}", contact=ada, requested_by=admin_user
            )
        # The same queries for one row as for three: no query per row.
        with django_assert_num_queries(8):
            page = client.get(reverse("dataprotection:requests"))

    content = page.content.decode()
    assert content.count(f"Contact #{ada.pk}") == 3 and "Forget" in content


def test_record_pages_offer_the_export_to_admins_only(
    history: History, admin_user: Any, manager: Any, client_for: Any
) -> None:
    url = reverse("dataprotection:export", args=["contact", history.ada.pk])
    page = history.ada.get_absolute_url()

    assert url in client_for(admin_user).get(page).content.decode()
    assert url not in client_for(manager).get(page).content.decode()
    individual = reverse("admin:privacy_individual_change", args=[history.ada.individual_id])
    admin_page = client_for(admin_user).get(individual).content.decode()
    assert reverse("dataprotection:export", args=["individual", history.ada.individual_id]) in (
        admin_page
    )
