"""Forgetting a person: their records anonymised, their email, events and inbound mail erased or
scrubbed, their addresses remembered only as hashes (privacy.forgotten).

The person is `dataprotection.people.person_from`'s: every record that is them. Everything is
read first (which copies, emails, messages are theirs), then changed set-based, one statement per
table, in one transaction per person. Records are anonymised, not deleted, and no aggregate is
touched (EmailDailyStat, LinkDailyStat's counts, ActivityMetric, campaign influence, the copies'
counters), so reports do not change. Backups are not rewritten: they age out on their own
schedule.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_plus

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models import Count, Expression, F, Q, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Left, Lower, Replace
from django.utils import timezone

from automation.enrolment import enrolments_stop
from automation.models import Enrolment, EnrolmentEvent, Firing
from campaigns.models import CampaignMember, ListEmailRecipient
from capture.models import CapturedAttachment
from crm import jobs
from crm.models import (
    Account,
    Contact,
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    Lead,
    LinkDailyStat,
    Opportunity,
    ScheduledEmail,
    Task,
    TrackedLink,
    User,
)
from dataprotection.models import DataRequest
from dataprotection.people import Person, person_from, scheduled_emails_of
from inbound.models import InboundMessage
from privacy.audit import audit_record
from privacy.forgotten import forgotten_remember
from privacy.models import AuditEntry, Individual
from tracking.models import TrackingEvent
from webhooks.events import forget_addresses

FORGET_PERSON = "dataprotection.tasks.forget_person"
FORGOTTEN = "[forgotten]"  # what replaces their name or address in text that stays
FORGOTTEN_NAME = "Forgotten person"  # an anonymised record's last name
FORGOTTEN_SUBJECT = "(forgotten)"  # the subject of an email only they were party to
BACKUPS = (
    "Backups are not rewritten: copies of this data in database backups age out on their own "
    "schedule, and a restored backup is forgotten again from the hashed list."
)
# Apps below this one that may hold a person in free text (a webhook's payload, an import's
# failed row): every text column of their models is scrubbed, so a column added later is too.
_OTHER_APPS = ("webhooks", "imports", "api")
_SQLITE_NESTING = 8  # replace() calls per statement on SQLite
_MIN_PHONE = 6  # shorter "phones" (an extension) would scrub digits from unrelated text


@dataclass(frozen=True)
class Reach:
    """The rows that hold a person, read before any of them changes."""

    person: Person
    strings: tuple[str, ...]  # what is replaced in text that stays, longest first
    relation_ids: list[int]  # their copies and their From on email they sent
    email_ids: list[int]
    solo_email_ids: list[int]  # emails with no other party than them and users
    inbound_ids: list[int]
    task_ids: list[int]

    @property
    def shared_email_ids(self) -> list[int]:
        solo = set(self.solo_email_ids)
        return [pk for pk in self.email_ids if pk not in solo]


@dataclass(frozen=True)
class Preview:
    """What a forget will erase and what it keeps, for the confirmation page."""

    records: int
    individuals: int
    emails_erased: int
    emails_scrubbed: int
    tracking_events: int
    email_events: int
    inbound_messages: int
    memberships: int
    tasks: int
    opportunity_roles: int
    scheduled_emails: int
    enrolments: int
    opens: int
    clicks: int
    already_forgotten: bool


def ids_among(ids: Collection[int]) -> RawSQL:
    """A subquery yielding these ids, as one parameter whatever their number (`pk__in=`)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [list(ids)])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(list(ids))])


def scrub_strings(person: Person, phones: Iterable[str] = ()) -> tuple[str, ...]:
    """The strings that name them, in the cases text writes them, longest first."""
    base = {*person.names, *person.addresses}
    base |= {phone.strip() for phone in phones if len(phone.strip()) >= _MIN_PHONE}
    # An anonymised record's own name is not theirs: forgetting a person again (a record added
    # later) must not scrub "Forgotten person" from everyone's text.
    base -= {FORGOTTEN_NAME, *FORGOTTEN_NAME.split()}
    variants = {
        form for text in base if text for form in (text, text.lower(), text.upper(), text.title())
    }
    return tuple(sorted(variants, key=lambda s: (-len(s), s)))


def scrub_text(text: str, strings: Sequence[str]) -> str:
    """`text` with each string replaced in order, exactly as `_scrubbed` does it in SQL."""
    for string in strings:
        text = text.replace(string, FORGOTTEN)
    return text


def forget_reach(person: Person) -> Reach:
    """Read which rows hold this person (a handful of queries)."""
    phones = [
        *Contact.objects.filter(pk__in=person.contact_ids).values_list("phone", flat=True),
        *Lead.objects.filter(pk__in=person.lead_ids).values_list("phone", flat=True),
    ]
    theirs = Q(contact_id__in=person.contact_ids) | Q(lead_id__in=person.lead_ids)
    if person.addresses:
        theirs |= Q(address_lower__in=person.addresses)
    relations = EmailMessageRelation.objects.annotate(address_lower=Lower("address"))
    relation_ids = sorted(relations.filter(theirs).order_by().values_list("pk", flat=True))
    email_ids = sorted(
        set(
            EmailMessageRelation.objects.filter(pk__in=ids_among(relation_ids))
            .order_by()
            .values_list("email_id", flat=True)
        )
    )
    # Another party (not a user, not them) on the email: it keeps its body, scrubbed.
    shared = set(
        EmailMessageRelation.objects.filter(email_id__in=ids_among(email_ids), user__isnull=True)
        .exclude(pk__in=ids_among(relation_ids))
        .order_by()
        .values_list("email_id", flat=True)
    )
    tasks = Task.objects.filter(
        Q(who_contact_id__in=person.contact_ids) | Q(who_lead_id__in=person.lead_ids)
    )
    return Reach(
        person=person,
        strings=scrub_strings(person, phones),
        relation_ids=relation_ids,
        email_ids=email_ids,
        solo_email_ids=[pk for pk in email_ids if pk not in shared],
        inbound_ids=_inbound_ids(person, relation_ids, email_ids),
        task_ids=sorted(tasks.values_list("pk", flat=True)),
    )


def _inbound_ids(person: Person, relation_ids: list[int], email_ids: list[int]) -> list[int]:
    """Inbound messages that are theirs: matched to their copies, the email made of them, from
    their address, or Unmatched ones whose raw message or report names an address of theirs."""
    theirs = Q(relation_id__in=ids_among(relation_ids)) | Q(
        created_email_id__in=ids_among(email_ids)
    )
    for address in person.addresses:
        theirs |= Q(from_address__icontains=address)
    found = set(InboundMessage.objects.filter(theirs).values_list("pk", flat=True))
    if person.addresses:
        table = InboundMessage._meta.db_table
        if connection.vendor == "postgresql":
            raw, report = "lower(encode(raw, 'escape'))", "lower(report::text)"
            contains = "strpos({}, %s) > 0"
        else:
            raw, report = "lower(CAST(raw AS TEXT))", "lower(report)"
            contains = "instr({}, %s) > 0"
        names = [contains.format(column) for _ in person.addresses for column in (raw, report)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} WHERE status = %s AND ({' OR '.join(names)})",  # noqa: S608 -- no values
                [
                    InboundMessage.Status.UNMATCHED,
                    *(address for address in person.addresses for _ in (raw, report)),
                ],
            )
            found |= {row[0] for row in cursor.fetchall()}
    return sorted(found)


def forget_preview(person: Person) -> Preview:
    """The counts the confirmation page shows."""
    reach = forget_reach(person)
    relations = EmailMessageRelation.objects.filter(pk__in=ids_among(reach.relation_ids))
    engagement = relations.aggregate(
        opens=Sum("human_opens", default=0), clicks=Sum("human_clicks", default=0)
    )
    records = [
        *Contact.objects.filter(pk__in=person.contact_ids).values_list("forgotten_at", flat=True),
        *Lead.objects.filter(pk__in=person.lead_ids).values_list("forgotten_at", flat=True),
    ]
    individuals = list(
        Individual.objects.filter(pk__in=person.individual_ids).values_list(
            "forgotten_at", flat=True
        )
    )
    memberships = CampaignMember.objects.filter(
        Q(contact_id__in=person.contact_ids) | Q(lead_id__in=person.lead_ids)
    ).aggregate(n=Count("pk"))["n"]
    return Preview(
        records=len(records),
        individuals=len(person.individual_ids),
        emails_erased=len(reach.solo_email_ids),
        emails_scrubbed=len(reach.shared_email_ids),
        tracking_events=TrackingEvent.objects.filter(
            relation_id__in=ids_among(reach.relation_ids)
        ).count(),
        email_events=EmailEvent.objects.filter(
            relation_id__in=ids_among(reach.relation_ids)
        ).count(),
        inbound_messages=len(reach.inbound_ids),
        memberships=memberships,
        tasks=len(reach.task_ids),
        opportunity_roles=Opportunity.objects.filter(
            roles__contact_id__in=person.contact_ids
        ).count(),
        scheduled_emails=ScheduledEmail.objects.filter(scheduled_emails_of(person)).count(),
        enrolments=Enrolment.objects.filter(_of_record(person)).count(),
        opens=engagement["opens"],
        clicks=engagement["clicks"],
        already_forgotten=all(at is not None for at in [*records, *individuals]),
    )


def forget_request(*, actor: User, kind: str, pk: int) -> DataRequest:
    """An admin asks to forget the person of this Individual, Contact or Lead: recorded,
    audited, and the job queued after commit."""
    person = person_from(kind, pk)
    with transaction.atomic():
        request = DataRequest.objects.create(
            kind=DataRequest.Kind.FORGET,
            subject=person.label,
            requested_by=actor,
            **{f"{kind}_id": pk},
        )
        audit_record(actor=actor, action=AuditEntry.Action.FORGET_REQUESTED, target=person.label)
        jobs.enqueue(FORGET_PERSON, request.pk)
    return request


def forget_request_run(*, request_id: int) -> DataRequest | None:
    """Carry out a queued forget request (the Celery job); None if another run claimed it.

    The request is marked running, then done or failed, outside the transaction that erases, so
    a failure is visible with its error and nothing of the person is half-erased.
    """
    claimed = DataRequest.objects.filter(
        pk=request_id, kind=DataRequest.Kind.FORGET, status=DataRequest.Status.QUEUED
    ).update(status=DataRequest.Status.RUNNING, started_at=timezone.now(), step="Erasing")
    if not claimed:
        return None
    request = DataRequest.objects.get(pk=request_id)
    strings: tuple[str, ...] = ()
    try:
        person = _person_of(request)
        strings = scrub_strings(person)
        with transaction.atomic():
            counts = person_forget(person=person, actor=request.requested_by)
    except Exception as error:  # any failure is reported on the request, in words
        request.status = DataRequest.Status.FAILED
        request.error = scrub_text(f"{type(error).__name__}: {error}", strings)
        request.step = ""
        request.finished_at = timezone.now()
        request.save(update_fields=["status", "error", "step", "finished_at"])
        raise
    request.status = DataRequest.Status.DONE
    request.counts = counts
    request.progress = 100
    request.step = ""
    request.finished_at = timezone.now()
    request.save(update_fields=["status", "counts", "progress", "step", "finished_at"])
    return request


def _person_of(request: DataRequest) -> Person:
    for kind in ("individual", "contact", "lead"):
        pk = getattr(request, f"{kind}_id")
        if pk is not None:
            return person_from(kind, pk)
    raise ValueError("The record this request names was deleted before the job ran.")


def person_forget(*, person: Person, actor: User | None = None) -> dict[str, int]:
    """Erase this person everywhere; returns what changed, by kind. Call inside a transaction."""
    reach = forget_reach(person)
    now = timezone.now()
    counts = {
        **_emails_forget(reach, now=now),
        **_mail_around_forget(reach),
        **_work_forget(reach),
        **_automated_forget(reach),
        **_records_forget(person, now=now),
    }
    counts["addresses_remembered"] = forgotten_remember(person.addresses)
    audit_record(
        actor=actor,
        action=AuditEntry.Action.FORGOTTEN,
        target=person.label,
        note=", ".join(f"{name} {n}" for name, n in counts.items()),
    )
    return counts


_ADDRESSING = (
    "to_addresses",
    "cc_addresses",
    "bcc_addresses",
    "from_name",
    "from_address",
    "failure_reason",
)


def _emails_forget(reach: Reach, *, now: datetime) -> dict[str, int]:
    """What they sent us loses its sender; what only they got loses its content; what others
    got too keeps it, without their name, address or phone."""
    from_them = Q(pk__in=[])
    for address in reach.person.addresses:
        from_them |= Q(from_address__iexact=address)
    emails = EmailMessage.objects.filter(pk__in=ids_among(reach.email_ids))
    emails.filter(from_them).update(from_address="", from_name="")
    solo = EmailMessage.objects.filter(pk__in=ids_among(reach.solo_email_ids))
    _scrub(
        solo,
        _ADDRESSING,
        reach.strings,
        subject=FORGOTTEN_SUBJECT,
        html_body="",
        text_body="",
        body_removed_at=now,
    )
    shared = EmailMessage.objects.filter(pk__in=ids_among(reach.shared_email_ids))
    _scrub(shared, (*_ADDRESSING, "subject", "html_body", "text_body"), reach.strings)
    copies = EmailMessageRelation.objects.filter(pk__in=ids_among(reach.relation_ids))
    _scrub(
        copies,
        ("bounce_diagnostic", "refusal_reason"),
        reach.strings,
        address="",
        name="",
        merge_values={},
    )
    return {
        "emails_erased": len(reach.solo_email_ids),
        "emails_scrubbed": len(reach.shared_email_ids),
        "copies": len(reach.relation_ids),
    }


def _mail_around_forget(reach: Reach) -> dict[str, int]:
    """Their copies' events, links, inbound mail and suppressions."""
    strings = reach.strings
    url_strings = _url_strings(strings)
    links = TrackedLink.objects.filter(email_id__in=ids_among(reach.email_ids))
    return {
        "email_events": _scrub(
            EmailEvent.objects.filter(relation_id__in=ids_among(reach.relation_ids)),
            ("detail",),
            strings,
        ),
        # Only rows still holding something: each row rewritten costs its five index entries.
        "tracking_events": TrackingEvent.objects.filter(
            Q(ip__isnull=False) | ~Q(user_agent=""),
            relation_id__in=ids_among(reach.relation_ids),
        ).update(ip=None, user_agent=""),
        "links": _scrub(links, ("url",), url_strings),
        "link_stats": _link_stats_scrub(url_strings),
        "inbound_messages": InboundMessage.objects.filter(
            pk__in=ids_among(reach.inbound_ids)
        ).delete()[0],
        "suppressions": EmailSuppression.objects.filter(
            address__in=reach.person.addresses
        ).delete()[0],
    }


def _work_forget(reach: Reach) -> dict[str, int]:
    """The work and history around them keeps its shape, without their words."""
    person, strings = reach.person, reach.strings
    tasks = Task.objects.filter(pk__in=ids_among(reach.task_ids))
    _scrub(tasks, ("subject",), strings, description="")
    _scrub(
        ListEmailRecipient.objects.filter(
            Q(contact_id__in=person.contact_ids) | Q(lead_id__in=person.lead_ids)
        ),
        ("reason",),
        strings,
    )
    _scrub(Opportunity.objects.filter(roles__contact_id__in=person.contact_ids), ("name",), strings)
    accounts = Account.objects.filter(contacts__in=person.contact_ids)
    accounts.filter(is_person_account=True).update(
        name=FORGOTTEN_NAME,
        website="",
        phone="",
        billing_city="",
        billing_country="",
        description="",
    )
    _scrub(accounts.filter(is_person_account=False), ("name", "description"), strings)
    _log_entries_forget(person)
    # Webhook deliveries about them are deleted, so a pending one never goes out; what other
    # apps keep in free text is scrubbed.
    webhook_deliveries = forget_addresses(person.addresses)
    _other_apps_scrub(strings)
    return {"tasks": len(reach.task_ids), "webhook_deliveries": webhook_deliveries}


NOT_SENT_FORGOTTEN = "Not sent: a recipient was forgotten."


def _of_record(person: Person) -> Q:
    return Q(contact_id__in=person.contact_ids) | Q(lead_id__in=person.lead_ids)


def _automated_forget(reach: Reach) -> dict[str, int]:
    """Sends still waiting for them are cancelled and scrubbed, their sequences stopped, and
    the attachments of captured email about them lose their contents (and, when only they
    were on it, themselves)."""
    person, strings = reach.person, reach.strings
    of_record = _of_record(person)
    scheduled_ids = list(
        ScheduledEmail.objects.filter(scheduled_emails_of(person)).values_list("pk", flat=True)
    )
    waiting = ScheduledEmail.objects.filter(
        pk__in=scheduled_ids, status=ScheduledEmail.Status.SCHEDULED
    )
    cancelled = waiting.update(
        status=ScheduledEmail.Status.CANCELLED, failure_reason=NOT_SENT_FORGOTTEN
    )
    _scrub(
        ScheduledEmail.objects.filter(pk__in=scheduled_ids),
        ("to_addresses", "cc_addresses", "bcc_addresses", "subject", "html_body", "failure_reason"),
        strings,
    )
    enrolments = list(Enrolment.objects.filter(of_record).values_list("pk", flat=True))
    stopped = enrolments_stop(ids=enrolments, reason="Forgotten") if enrolments else 0
    _scrub(Enrolment.objects.filter(pk__in=enrolments), ("stop_reason",), strings)
    _scrub(EnrolmentEvent.objects.filter(enrolment_id__in=enrolments), ("detail",), strings)
    _scrub(Firing.objects.filter(of_record), ("outcome", "event_key"), strings)
    attachments = CapturedAttachment.objects.filter(email_id__in=ids_among(reach.email_ids))
    removed = attachments.filter(email_id__in=ids_among(reach.solo_email_ids)).delete()[0]
    _scrub(attachments, ("name",), strings, content=None)
    return {
        "scheduled_emails": len(scheduled_ids),
        "scheduled_cancelled": cancelled,
        "enrolments_stopped": stopped,
        "attachments_removed": removed,
    }


def _records_forget(person: Person, *, now: datetime) -> dict[str, int]:
    """The records stay (influence, memberships and counts hang on them), anonymised."""
    anonymous = {
        "first_name": "",
        "last_name": FORGOTTEN_NAME,
        "title": "",
        "email": "",
        "phone": "",
        "email_bounced_reason": "",
        "forgotten_at": now,
    }
    leads = Lead.objects.filter(pk__in=person.lead_ids)
    _scrub(leads, ("company",), scrub_strings(person))
    return {
        "contacts": Contact.objects.filter(pk__in=person.contact_ids).update(
            **anonymous, mailing_city="", mailing_country=""
        ),
        "leads": leads.update(**anonymous),
        "individuals": Individual.objects.filter(pk__in=person.individual_ids).update(
            first_name="",
            last_name=FORGOTTEN_NAME,
            birth_date=None,
            should_forget=True,
            forgotten_at=now,
        ),
    }


def _scrub(
    queryset: models.QuerySet[Any],
    columns: Sequence[str],
    strings: Sequence[str],
    **values: Any,
) -> int:
    """Replace the strings by FORGOTTEN in these columns and set `values`, in as few UPDATEs
    as the database allows (each rewrites every row); returns the rows updated.

    One UPDATE on PostgreSQL; on SQLite one per few strings, as its parser nests only so deep.
    """
    step = max(len(strings), 1) if connection.vendor == "postgresql" else _SQLITE_NESTING
    chunks = [strings[start : start + step] for start in range(0, len(strings), step)] or [()]
    updated = 0
    for chunk in chunks:
        scrubbed = {column: _scrubbed(queryset.model, column, chunk) for column in columns}
        # Rows holding none of the strings are not rewritten (each costs its index entries).
        rows = queryset if values else queryset.filter(_containing(columns, chunk))
        updated += rows.update(**scrubbed, **values)
        values = {}
    return updated


def _scrubbed(model: type[models.Model], column: str, strings: Sequence[str]) -> Expression:
    """The column with each string replaced by FORGOTTEN, cut to the column's length."""
    expression: Any = F(column)
    for string in strings:
        expression = Replace(expression, Value(string), Value(FORGOTTEN))
    length = model._meta.get_field(column).max_length  # type: ignore[union-attr]
    return Left(expression, length) if length else expression


def _containing(columns: Sequence[str], strings: Sequence[str]) -> Q:
    """Rows where one of these columns holds one of the strings."""
    found = Q(pk__in=[])
    for column in columns:
        for string in strings:
            found |= Q(**{f"{column}__contains": string})
    return found


def _url_strings(strings: Sequence[str]) -> tuple[str, ...]:
    """The strings, and the forms a link's query string writes them in."""
    forms = {form for s in strings for form in (s, quote(s, safe=""), quote_plus(s))}
    return tuple(sorted(forms, key=lambda s: (-len(s), s)))


def _link_stats_scrub(strings: Sequence[str]) -> int:
    """Scrub the top-links rollup's URLs, keeping its counts: rows whose scrubbed URL meets
    another row's are merged into it (a few rows: the days their links were clicked)."""
    if not strings:
        return 0
    rows = list(LinkDailyStat.objects.filter(_containing(["url"], strings)))
    if not rows:
        return 0
    merged: dict[tuple[Any, int, int, str], LinkDailyStat] = {}
    for row in rows:
        key = (row.day, row.sender_key, row.campaign_key, scrub_text(row.url, strings)[:500])
        into = merged.setdefault(
            key,
            LinkDailyStat(
                day=key[0],
                sender_key=key[1],
                campaign_key=key[2],
                url=key[3],
                clicks_human=0,
                clicks_machine=0,
            ),
        )
        into.clicks_human += row.clicks_human
        into.clicks_machine += row.clicks_machine
    LinkDailyStat.objects.filter(pk__in=[row.pk for row in rows]).delete()
    existing = LinkDailyStat.objects.filter(
        url__in={key[3] for key in merged}, day__in={key[0] for key in merged}
    )
    updated = []
    for row in existing:
        key = (row.day, row.sender_key, row.campaign_key, row.url)
        if key in merged:
            extra = merged.pop(key)
            row.clicks_human += extra.clicks_human
            row.clicks_machine += extra.clicks_machine
            updated.append(row)
    LinkDailyStat.objects.bulk_update(updated, ["clicks_human", "clicks_machine"])
    LinkDailyStat.objects.bulk_create(merged.values())
    return len(rows)


def _log_entries_forget(person: Person) -> None:
    """The admin's history of their records names them in object_repr."""
    for model, ids in (
        (Contact, person.contact_ids),
        (Lead, person.lead_ids),
        (Individual, person.individual_ids),
    ):
        if ids:
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model),
                object_id__in=[str(pk) for pk in ids],
            ).update(object_repr=FORGOTTEN_NAME)


def _other_apps_scrub(strings: Sequence[str]) -> None:
    """Apps above crm that keep free text (a webhook's payload, an import's failed row): each
    text column of theirs holding one of the strings is scrubbed, JSON as its text."""
    if not strings:
        return
    for app_label in _OTHER_APPS:
        try:
            config = apps.get_app_config(app_label)
        except LookupError:
            continue
        for model in config.get_models():
            rows = model._default_manager.all()
            for field in model._meta.concrete_fields:
                if isinstance(field, models.JSONField):
                    _json_scrub(rows, field.attname, strings)
                elif isinstance(field, models.CharField | models.TextField) and not field.choices:
                    _scrub(rows, [field.attname], strings)


def _json_scrub(rows: models.QuerySet[Any], column: str, strings: Sequence[str]) -> None:
    """Replace the strings in a JSON column's text (FORGOTTEN needs no escaping in JSON)."""
    text = f"{column}_as_text"
    rows = rows.annotate(**{text: Cast(column, models.TextField())})
    step = len(strings) if connection.vendor == "postgresql" else _SQLITE_NESTING
    for start in range(0, len(strings), step):
        chunk = strings[start : start + step]
        expression: Any = Cast(column, models.TextField())
        for string in chunk:
            expression = Replace(expression, Value(string), Value(FORGOTTEN))
        rows.filter(_containing([text], chunk)).update(
            **{column: Cast(expression, models.JSONField())}
        )
