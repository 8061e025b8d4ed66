"""Exporting a person's data: one ZIP archive, JSON for machines and CSV for people.

A request (`export_request`) is built by a Celery job (`export_build`): each section of what
Openrate holds about the person is read in chunks (`values().iterator(chunk_size=...)`), each row
written to its CSV member in the archive and to `person.json`. A ZIP takes one member at a time,
so the JSON is written to a temporary file first and copied in at the end: memory stays bounded
however long the person's history. The archive is kept `EXPORT_DAYS` under a random name in
EXPORT_DIR, downloadable only by the admin who asked (`export_file`), then removed
(`exports_expire`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F, Model, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone

from automation.models import Enrolment, EnrolmentEvent, Firing
from campaigns.models import CampaignMember
from capture.models import CapturedAttachment
from crm.jobs import enqueue
from crm.models import (
    Contact,
    EmailEvent,
    EmailMessageRelation,
    Lead,
    PrivacyChange,
    ScheduledEmail,
    Task,
)
from dataprotection.models import DataRequest
from dataprotection.people import Person, person_from, scheduled_emails_of
from inbound.models import InboundMessage
from privacy.audit import audit_record
from privacy.models import AuditEntry, Individual
from tracking.models import TrackingEvent

logger = logging.getLogger(__name__)

EXPORT_TASK = "dataprotection.tasks.export_person"
EXPORT_DAYS = 7
CHUNK = 2000
# An inbound message keeps its raw bytes (up to 2 MB): a few at a time keeps memory bounded.
RAW_CHUNK = 10
FORMAT = "openrate-export/1"


class NothingToExport(Exception):
    """The person was forgotten: Openrate holds nothing about them any more."""


@dataclass(frozen=True)
class Section:
    """One kind of data: a list in person.json and a CSV file, read from one or more queries."""

    name: str
    title: str
    about: str
    queries: tuple[QuerySet[Any, dict[str, Any]], ...]
    columns: tuple[str, ...]
    csv_columns: tuple[str, ...]
    chunk: int = CHUNK

    def count(self) -> int:
        return sum(query.count() for query in self.queries)


def _values(queryset: QuerySet[Any], columns: dict[str, Any]) -> QuerySet[Any, dict[str, Any]]:
    """`values()` naming each column: a string is a field path, anything else an expression."""
    fields = [name for name, source in columns.items() if source == name]
    expressions = {
        name: F(source) if isinstance(source, str) else source
        for name, source in columns.items()
        if source != name
    }
    return queryset.values(*fields, **expressions)


def _same(names: str) -> dict[str, str]:
    """Columns named as their fields: "id subject" -> {"id": "id", "subject": "subject"}."""
    return {name: name for name in names.split()}


def _fields(model: type[Model]) -> dict[str, str]:
    return {f.attname: f.attname for f in model._meta.concrete_fields}


def copies_of(person: Person) -> QuerySet[EmailMessageRelation]:
    """Every copy of an email the person is on (from, to, cc, bcc): by record or by address."""
    return EmailMessageRelation.objects.annotate(address_lower=Lower("address")).filter(
        Q(contact__in=sorted(person.contact_ids))
        | Q(lead__in=sorted(person.lead_ids))
        | Q(address_lower__in=sorted(person.addresses))
    )


def _of_record(prefix: str, person: Person) -> Q:
    return Q(**{f"{prefix}contact__in": sorted(person.contact_ids)}) | Q(
        **{f"{prefix}lead__in": sorted(person.lead_ids)}
    )


def sections(person: Person) -> list[Section]:
    """What Openrate holds about the person, section by section, as queries not yet run."""
    copies = copies_of(person)
    copy_ids = copies.values("pk")
    records = tuple(
        _values(
            model.objects.filter(pk__in=sorted(ids)).order_by("pk"),
            {"record": Value(kind), **_fields(model)},
        )
        for model, kind, ids in (
            (Individual, "individual", person.individual_ids),
            (Contact, "contact", person.contact_ids),
            (Lead, "lead", person.lead_ids),
        )
    )
    record_columns: dict[str, None] = {}
    for query in records:
        record_columns.update(dict.fromkeys(_names(query)))
    email_columns = {
        "copy_id": "id",
        **_same("email_id relation_type address name contact_id lead_id"),
        "subject": "email__subject",
        "from_address": "email__from_address",
        "from_name": "email__from_name",
        "message_date": "email__message_date",
        "incoming": "email__incoming",
        "email_status": "email__status",
        **_same(
            "delivery_status refusal_reason message_id sent_at is_tracked untracked_reason "
            "first_opened_at last_opened_at human_opens machine_opens human_clicks "
            "machine_clicks last_clicked_at"
        ),
        "last_clicked_url": "last_clicked_link__url",
        **_same(
            "machine_open_label bounce_category bounce_status bounce_diagnostic bounced_at "
            "replied_at"
        ),
        "body_removed_at": "email__body_removed_at",
        "text_body": "email__text_body",
        "html_body": "email__html_body",
        "merge_values": "merge_values",
    }
    tracking_columns = {
        "log": Value("tracking"),
        "copy_id": "relation_id",
        "email_id": "relation__email_id",
        **_same("kind occurred_at label reason"),
        "link_url": "link__url",
        **_same("ip user_agent method device client os internal"),
    }
    delivery_columns = {
        "log": Value("delivery"),
        "copy_id": "relation_id",
        "email_id": "relation__email_id",
        **_same("kind occurred_at detail bounce"),
    }
    events = (
        _values(
            TrackingEvent.objects.filter(relation__in=copy_ids).order_by("occurred_at", "pk"),
            tracking_columns,
        ),
        _values(
            EmailEvent.objects.filter(relation__in=copy_ids).order_by("occurred_at", "pk"),
            delivery_columns,
        ),
    )
    privacy_columns = _same("id contact_id lead_id changed_at label field value source")
    member_columns = {
        **_same("id campaign_id"),
        "campaign_name": "campaign__name",
        "member_status": "status__label",
        **_same("contact_id lead_id has_responded first_responded_at"),
        "member_since": "created_at",
        "updated_at": "updated_at",
    }
    inbound_columns = {
        **_same("id received_at source kind status note message_id from_address subject"),
        "copy_id": "relation_id",
        "reply_email_id": "created_email_id",
        **_same("report applied_at raw"),
    }
    task_columns = _same(
        "id subject description status priority subtype kind due_date completed_at created_at "
        "who_contact_id who_lead_id"
    )
    scheduled = scheduled_emails_of(person)
    scheduled_columns = _same(
        "id status send_at to_addresses cc_addresses bcc_addresses subject html_body "
        "failure_reason email_id contact_id lead_id created_at"
    )
    attachment_columns = _same("id email_id name content_type size")
    enrolments = Enrolment.objects.filter(_of_record("", person))
    enrolment_columns = {
        "log": Value("enrolment"),
        "enrolment_id": "id",
        **_same("sequence_id"),
        "sequence_name": "sequence__name",
        "kind": "status",
        "at": "created_at",
        "detail": "stop_reason",
        **_same("contact_id lead_id next_due_at"),
    }
    history_columns = {
        "log": Value("history"),
        **_same("enrolment_id"),
        "sequence_id": "enrolment__sequence_id",
        "sequence_name": "enrolment__sequence__name",
        **_same("kind at detail"),
        "step_position": "step__position",
    }
    firing_columns = {
        **_same("id rule_id"),
        "rule_name": "rule__name",
        **_same("event_key contact_id lead_id email_id enrolment_id outcome fired_at"),
    }
    inbound = InboundMessage.objects.filter(
        Q(relation__in=copy_ids) | Q(created_email__in=copies.values("email_id"))
    ).order_by("received_at", "pk")
    return [
        Section(
            "records",
            "records",
            "The Individual (privacy choices), Contact and Lead records that are this person, "
            "every field, one row each; `record` says which kind. The privacy flags are the "
            "has_opted_out_* fields.",
            records,
            tuple(record_columns),
            tuple(record_columns),
        ),
        Section(
            "privacy_changes",
            "privacy changes",
            "The history of their privacy flags: each change, when, to what, and where it was "
            "made.",
            (
                _values(
                    PrivacyChange.objects.filter(_of_record("", person)).order_by(
                        "changed_at", "pk"
                    ),
                    privacy_columns,
                ),
            ),
            tuple(privacy_columns),
            tuple(privacy_columns),
        ),
        Section(
            "emails",
            "emails",
            "Every email they were on (sent to them or received from them), one row per copy: "
            "their address, the subject and body, delivery, opens, clicks, bounce and reply. "
            "The CSV leaves out the HTML body and merge values (in person.json).",
            (_values(copies.order_by("email_id", "pk"), email_columns),),
            tuple(email_columns),
            tuple(c for c in email_columns if c not in ("html_body", "merge_values")),
        ),
        Section(
            "events",
            "events",
            "Every event on their copies: opens and clicks as tracked (`log` tracking, with the "
            "human or machine label, IP and user agent as stored) and delivery events (`log` "
            "delivery: queued, sent, bounced, ...).",
            events,
            tuple({**tracking_columns, **delivery_columns}),
            tuple({**tracking_columns, **delivery_columns}),
        ),
        Section(
            "campaign_memberships",
            "campaign memberships",
            "The campaigns they are a member of, with their status.",
            (_values(CampaignMember.objects.filter(_of_record("", person)), member_columns),),
            tuple(member_columns),
            tuple(member_columns),
        ),
        Section(
            "inbound_messages",
            "inbound messages",
            "Mail that came back about their copies (bounces, complaints, auto-replies, "
            "replies). person.json holds each raw message as text; the CSV, what was read "
            "from it.",
            (_values(inbound, inbound_columns),),
            tuple(inbound_columns),
            tuple(c for c in inbound_columns if c != "raw"),
            chunk=RAW_CHUNK,
        ),
        Section(
            "scheduled_emails",
            "scheduled emails",
            "Email written to them to go out later: when, to whom, the subject and body, and "
            "whether it went (email_id names the email it became). The CSV leaves out the body.",
            (_values(ScheduledEmail.objects.filter(scheduled).order_by("pk"), scheduled_columns),),
            tuple(scheduled_columns),
            tuple(c for c in scheduled_columns if c != "html_body"),
        ),
        Section(
            "captured_attachments",
            "captured attachments",
            "Attachments of email captured from a user's mailbox that they were on: name, type "
            "and size (their contents are not exported).",
            (
                _values(
                    CapturedAttachment.objects.filter(email__in=copies.values("email_id")).order_by(
                        "pk"
                    ),
                    attachment_columns,
                ),
            ),
            tuple(attachment_columns),
            tuple(attachment_columns),
        ),
        Section(
            "sequences",
            "sequences",
            "The email sequences they were enrolled in (`log` enrolment: its status, and why "
            "it stopped) and each step of their way through them (`log` history).",
            (
                _values(enrolments.order_by("pk"), enrolment_columns),
                _values(
                    EnrolmentEvent.objects.filter(enrolment__in=enrolments.values("pk")).order_by(
                        "enrolment_id", "at", "pk"
                    ),
                    history_columns,
                ),
            ),
            tuple({**enrolment_columns, **history_columns}),
            tuple({**enrolment_columns, **history_columns}),
        ),
        Section(
            "triggered_emails",
            "triggered emails",
            "Each time an automation rule acted on them (an email sent, a sequence joined).",
            (
                _values(
                    Firing.objects.filter(_of_record("", person)).order_by("fired_at", "pk"),
                    firing_columns,
                ),
            ),
            tuple(firing_columns),
            tuple(firing_columns),
        ),
        Section(
            "tasks",
            "tasks",
            "Tasks about them (calls, follow-ups, replies to answer).",
            (
                _values(
                    Task.objects.filter(_of_record("who_", person)).order_by("pk"), task_columns
                ),
            ),
            tuple(task_columns),
            tuple(task_columns),
        ),
    ]


def _names(query: QuerySet[Any, dict[str, Any]]) -> list[str]:
    """The keys of the dicts a values() query yields, in order."""
    q = query.query
    return [*q.extra_select, *q.values_select, *q.annotation_select]


_MODELS: dict[str, type[Individual] | type[Contact] | type[Lead]] = {
    "individual": Individual,
    "contact": Contact,
    "lead": Lead,
}


def _record(kind: str, pk: int) -> Individual | Contact | Lead:
    found = _MODELS[kind].objects.filter(pk=pk).first()
    if found is None:
        raise Http404(f"No {kind} #{pk}")
    return found


def export_summary(*, kind: str, pk: int) -> dict[str, int]:
    """How many rows each section of an export would hold (the confirmation page)."""
    if _record(kind, pk).forgotten_at is not None:
        raise NothingToExport(f"{kind.capitalize()} #{pk} was forgotten.")
    return {section.name: section.count() for section in sections(person_from(kind, pk))}


def export_request(*, actor: Any, kind: str, pk: int) -> DataRequest:
    """An admin asks for a person's data: the request is recorded, audited and queued."""
    record = _record(kind, pk)
    if record.forgotten_at is not None:
        raise NothingToExport(f"{kind.capitalize()} #{pk} was forgotten.")
    subject = f"{kind.capitalize()} #{pk}"
    request = DataRequest.objects.create(
        kind=DataRequest.Kind.EXPORT, subject=subject, requested_by=actor, **{kind: record}
    )
    audit_record(
        actor=actor,
        action=AuditEntry.Action.EXPORT_REQUESTED,
        target=subject,
        note=f"Data request #{request.pk}",
    )
    enqueue(EXPORT_TASK, request.pk)
    return request


def export_build(*, request_id: int) -> DataRequest | None:
    """Build the archive of a queued export request (the job); None if another run has it."""
    now = timezone.now()
    claimed = DataRequest.objects.filter(
        pk=request_id, kind=DataRequest.Kind.EXPORT, status=DataRequest.Status.QUEUED
    ).update(status=DataRequest.Status.RUNNING, started_at=now, step="Starting", progress=0)
    if not claimed:
        return None
    request = DataRequest.objects.get(pk=request_id)
    directory = Path(settings.EXPORT_DIR)
    path = directory / f"{secrets.token_urlsafe(32)}.zip"
    try:
        person = _person_of(request)
        directory.mkdir(parents=True, exist_ok=True)
        counts = _archive_write(path, person=person, request_id=request_id)
    except Exception as error:
        path.unlink(missing_ok=True)
        logger.exception("Export for data request #%s failed", request_id)
        DataRequest.objects.filter(pk=request_id).update(
            status=DataRequest.Status.FAILED,
            finished_at=timezone.now(),
            step="",
            error=_in_words(error),
        )
        request.refresh_from_db()
        return request
    finished = timezone.now()
    size = path.stat().st_size
    DataRequest.objects.filter(pk=request_id).update(
        status=DataRequest.Status.DONE,
        finished_at=finished,
        progress=100,
        step="Done",
        counts=counts,
        file_path=path.name,
        file_size=size,
        expires_at=finished + timedelta(days=EXPORT_DAYS),
    )
    audit_record(
        actor=None,
        action=AuditEntry.Action.EXPORTED,
        target=request.subject,
        note=f"Data request #{request_id}: {sum(counts.values())} rows, {size} bytes",
    )
    request.refresh_from_db()
    return request


def _person_of(request: DataRequest) -> Person:
    for kind in ("individual", "contact", "lead"):
        pk = getattr(request, f"{kind}_id")
        if pk is not None:
            if _record(kind, pk).forgotten_at is not None:
                raise NothingToExport(
                    f"{request.subject} was forgotten: Openrate holds nothing more to export."
                )
            return person_from(kind, pk)
    raise NothingToExport(f"{request.subject} was deleted before the export ran.")


def _in_words(error: Exception) -> str:
    if isinstance(error, NothingToExport):
        return str(error)
    if isinstance(error, Http404):
        return "The record was deleted before the export ran."
    if isinstance(error, OSError):
        return f"The archive could not be written in the export folder ({error.strerror})."
    return f"The export stopped on an unexpected error ({type(error).__name__}); see the log."


@dataclass
class _Progress:
    """Percent done, written with a plain UPDATE (committed at once) so the page sees it move."""

    request_id: int
    total: int
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def report(self, section: Section, written: int, of: int) -> None:
        percent = min(99, (self.done + written) * 100 // max(self.total, 1))
        DataRequest.objects.filter(pk=self.request_id).update(
            progress=percent, step=f"Writing {section.title}: {written:,} of {of:,}"
        )


def _archive_write(path: Path, *, person: Person, request_id: int) -> dict[str, int]:
    every = sections(person)
    totals = {section.name: section.count() for section in every}
    progress = _Progress(request_id, total=sum(totals.values()))
    with (
        tempfile.TemporaryFile(dir=path.parent) as json_file,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr("README.txt", readme(person, every))
        json_file.write(_json_head(person))
        for section in every:
            json_file.write(f',\n"{section.name}": ['.encode())
            with archive.open(f"{section.name}.csv", "w", force_zip64=True) as member:
                written = _section_write(
                    section, json_file, member, progress=progress, of=totals[section.name]
                )
            json_file.write(b"]")
            progress.done += written
            progress.counts[section.name] = written
        json_file.write(b"\n}\n")
        json_file.seek(0)
        with archive.open("person.json", "w", force_zip64=True) as member:
            shutil.copyfileobj(json_file, member, length=1 << 20)
    return progress.counts


def _section_write(
    section: Section, json_file: IO[bytes], member: IO[bytes], *, progress: _Progress, of: int
) -> int:
    text = io.TextIOWrapper(member, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(section.csv_columns)
    in_csv = [section.columns.index(column) for column in section.csv_columns]
    written = 0
    progress.report(section, 0, of)
    for query in section.queries:
        names = [column for column in section.columns if column in _names(query)]
        missing = [None] * len(section.columns)
        for row in query.iterator(chunk_size=section.chunk):
            values = dict(zip(section.columns, missing, strict=True))
            for name in names:
                values[name] = _plain(row[name])
            json_file.write(b"," if written else b"")
            json_file.write(json.dumps(values, ensure_ascii=False).encode())
            cells = list(values.values())
            writer.writerow([_cell(cells[index]) for index in in_csv])
            written += 1
            if written % section.chunk == 0:
                progress.report(section, written, of)
    text.flush()
    text.detach()
    return written


def _plain(value: Any) -> Any:
    """A value as JSON holds it: times as ISO 8601 text, raw bytes as text."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict | list | float):
        return value
    return str(value)  # Decimal, UUID, IP address


# A cell a spreadsheet would run as a formula ("=HYPERLINK(...)" in a subject) is shown as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is None:
        return ""
    if kind is bool:
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_head(person: Person) -> bytes:
    head = {"format": FORMAT, "subject": person.label, "exported_at": timezone.now()}
    return json.dumps(head, cls=DjangoJSONEncoder).removesuffix("}").encode()


def readme(person: Person, every: list[Section]) -> str:
    lines = [
        f"Openrate: the data held about {person.label}, exported "
        f"{timezone.now():%Y-%m-%d %H:%M} UTC.",
        "",
        "person.json holds everything, one list per section, for programs to read (format "
        f"{FORMAT}; times in UTC, ISO 8601). Each section is also a CSV file (UTF-8, a header "
        "row) to open in a spreadsheet. Ids link the files: an event's copy_id is an email "
        "copy's copy_id in emails.csv; contact_id and lead_id name rows of records.csv.",
        "",
    ]
    for section in every:
        lines += [f"{section.name}.csv", f"    {section.about}", ""]
    return "\n".join(lines)


def export_file(*, request_id: int, user: Any) -> tuple[DataRequest, Path]:
    """The archive of a done, unexpired export, for the admin who asked for it only (404)."""
    request = DataRequest.objects.filter(
        pk=request_id,
        kind=DataRequest.Kind.EXPORT,
        status=DataRequest.Status.DONE,
        requested_by=user,
        expires_at__gt=timezone.now(),
    ).first()
    if request is None or not request.file_path:
        raise Http404("No such export")
    path = Path(settings.EXPORT_DIR) / Path(request.file_path).name
    if not path.is_file():
        raise Http404("The export's file is gone")
    audit_record(
        actor=user,
        action=AuditEntry.Action.EXPORT_DOWNLOADED,
        target=request.subject,
        note=f"Data request #{request.pk}",
    )
    return request, path


def exports_expire() -> int:
    """Remove the archives of exports past their expiry (nightly); returns how many."""
    due = DataRequest.objects.filter(
        kind=DataRequest.Kind.EXPORT,
        status=DataRequest.Status.DONE,
        expires_at__lte=timezone.now(),
    )
    expired = list(due.values_list("pk", "file_path"))
    for _, name in expired:
        if name:
            (Path(settings.EXPORT_DIR) / Path(name).name).unlink(missing_ok=True)
    return DataRequest.objects.filter(
        pk__in=[pk for pk, _ in expired], status=DataRequest.Status.DONE
    ).update(status=DataRequest.Status.EXPIRED, file_path="", file_size=0)
