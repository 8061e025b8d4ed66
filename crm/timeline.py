"""The Activity Timeline of a Contact, Lead, Account or Opportunity.

Open tasks come first ("Upcoming & Overdue"); then emails, done tasks and privacy changes, newest
first, a page at a time. Each source is read with its own indexed query, at most `limit + 1`
rows from before the cursor, and the sources are merged in Python: a page costs the same few
queries whether the record has ten emails or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm import hooks
from crm.delivery import UNCONFIRMED
from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Lead,
    Opportunity,
    PrivacyChange,
    ScheduledEmail,
    Task,
    User,
)
from crm.privacy_flags import dont_track_of

Record = Contact | Lead | Account | Opportunity
KINDS = {"all": "All", "emails": "Emails", "tasks": "Tasks"}
# Ties on time are broken by kind, then id, so the cursor names one exact place.
_RANK = {"email": 3, "task": 2, "privacy": 1, "sequence": 0}
# When each kind of entry happened, as one `when` column to sort and page by.
_EMAIL_WHEN = Coalesce("email__message_date", "email__created_at")
_OWN_WHEN = Coalesce("message_date", "created_at")
_TASK_WHEN = Coalesce("completed_at", "updated_at")
_PRIVACY_WHEN = F("changed_at")
MACHINE_LABELS = {
    "apple_mpp": "Apple Privacy",
    "image_proxy": "image proxy",
    "scanner": "link scanner",
    "bot": "bot",
}
# A person clicked a link of a copy whose open pixel never loaded (their mail program blocked
# images): they read it all the same.
OPENED_BY_CLICK = "Opened, shown by a click"
# Captured email was written in the user's own mail program: no pixel, no tracked links.
CAPTURED_UNTRACKED = "Untracked: written outside Openrate"


@dataclass
class Entry:
    kind: str  # "email" | "task" | "privacy"
    when: datetime
    pk: int
    obj: Any
    relation: EmailMessageRelation | None = None
    badges: list[tuple[str, str]] = field(default_factory=list)  # (text, Bootstrap colour)
    # What became of the opens and clicks since, e.g. under Don't Track turned on after the send.
    note: str = ""
    new_month: str = ""  # set on the first entry of each month: the heading to show above it

    @property
    def cursor(self) -> str:
        return f"{self.when.isoformat()}|{self.kind}|{self.pk}"


@dataclass
class Page:
    upcoming: list[Task]
    entries: list[Entry]
    next_cursor: str
    # Email written to go later (send later), soonest first: on the timeline once sent.
    scheduled: list[ScheduledEmail] = field(default_factory=list)


@dataclass(frozen=True)
class Cursor:
    when: datetime
    rank: int
    pk: int

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        parts = value.split("|")
        # isascii: "²".isdigit() is true, and int("²") fails.
        if (
            len(parts) != 3
            or parts[1] not in _RANK
            or not (parts[2].isascii() and parts[2].isdigit())
        ):
            return None
        try:
            when = parse_datetime(parts[0])
        except ValueError:
            return None
        if when is None or timezone.is_naive(when):
            return None
        return cls(when, _RANK[parts[1]], int(parts[2]))

    def before(self, when_field: str, kind: str) -> Q:
        """Rows of `kind` that come after this cursor in newest-first order."""
        rank = _RANK[kind]
        earlier = Q(**{f"{when_field}__lt": self.when})
        if rank < self.rank:
            return earlier | Q(**{when_field: self.when})
        if rank == self.rank:
            return earlier | Q(**{when_field: self.when, "pk__lt": self.pk})
        return earlier


def timeline(
    record: Record,
    *,
    kind: str = "all",
    start: date | None = None,
    end: date | None = None,
    cursor: str = "",
    limit: int = 20,
    previous_month: str = "",
    viewer: User | None = None,
) -> Page:
    """A page of the record's timeline; `previous_month` ("2026-11") is the last one shown.

    An account's timeline gathers its contacts' email and tasks, an opportunity's those of its
    contact roles, each with the email related to the record itself, every email once: with a
    `viewer`, only those of the contacts the viewer may see, so another rep's contact on the
    account shows nothing. The activity card counts the same emails (crm.activity).
    """
    position = Cursor.parse(cursor) if cursor else None
    window = _window(start, end)
    contacts = Contact.objects.all() if viewer is None else Contact.objects.visible_to(viewer)
    entries: list[Entry] = []
    if kind in ("all", "emails"):
        entries += _emails(record, window, position, limit, contacts)
    if kind in ("all", "tasks"):
        entries += _done_tasks(record, window, position, limit, contacts)
    if kind == "all" and isinstance(record, Contact | Lead | Account):
        entries += _privacy_changes(record, window, position, limit, contacts)
    if kind == "all" and isinstance(record, Contact | Lead):
        # Apps above crm (automation: enrolments in sequences) add entries of their own kind.
        entries += hooks.timeline_entries(
            record=record, window=window, position=position, limit=limit
        )
    entries.sort(key=lambda e: (e.when, _RANK[e.kind], e.pk), reverse=True)
    page, more = entries[:limit], len(entries) > limit
    for entry in page:
        month = timezone.localtime(entry.when).strftime("%Y-%m")
        if month != previous_month:
            entry.new_month = timezone.localtime(entry.when).strftime("%B %Y")
            previous_month = month
    upcoming = [] if position or kind == "emails" else list(_open_tasks(record, contacts)[:50])
    scheduled = [] if position or kind == "tasks" else list(_waiting_emails(record, contacts)[:50])
    _name_automated_origins(page)
    return Page(
        upcoming=upcoming,
        entries=page,
        next_cursor=page[-1].cursor if more else "",
        scheduled=scheduled,
    )


def _name_automated_origins(entries: list[Entry]) -> None:
    """Badge each automated email with what sent it (its sequence step or rule), read through
    the hook from the app that sent it; no query when the page has no automated email."""
    automated = [
        e for e in entries if e.kind == "email" and e.obj.source == EmailMessage.Source.AUTOMATION
    ]
    if not automated:
        return
    origins = hooks.email_origins(email_ids=[e.obj.pk for e in automated])
    for entry in automated:
        if entry.obj.pk in origins:
            entry.badges.insert(0, (origins[entry.obj.pk], "info"))


def _window(start: date | None, end: date | None) -> Q:
    """A filter on `when` for the date range (whole days in the org's time zone)."""
    tz = timezone.get_current_timezone()
    condition = Q()
    if start:
        condition &= Q(when__gte=datetime.combine(start, time.min, tzinfo=tz))
    if end:
        condition &= Q(when__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz))
    return condition


def _emails(
    record: Record, window: Q, position: Cursor | None, limit: int, contacts: QuerySet[Contact]
) -> list[Entry]:
    if isinstance(record, Contact | Lead):
        person: dict[str, Contact | Lead] = (
            {"contact": record} if isinstance(record, Contact) else {"lead": record}
        )
        relations: QuerySet[EmailMessageRelation] = (
            EmailMessageRelation.objects.filter(**person)
            # Enhanced Email off: the send shows once, as its completed Email task.
            .exclude(untracked_reason=EmailMessageRelation.LOGGED_AS_TASK)
            .annotate(when=_EMAIL_WHEN)
            .filter(window)
            .select_related("email__sender", "last_clicked_link")
            .defer("email__html_body", "email__text_body")
            .order_by("-when", "-pk")
        )
        if position:
            relations = relations.filter(position.before("when", "email"))
        rows = list(relations[: limit + 1])
        # Don't Track turned on since these copies went out: their later opens and clicks are
        # kept from this record (tracking.ingestion), and the entries say so.
        dont_track = (
            dont_track_of([record]).get(("contact" if "contact" in person else "lead", record.pk))
            if any(row.is_tracked for row in rows)
            else None
        )
        return [
            Entry(
                "email",
                row.when,  # type: ignore[attr-defined]
                row.pk,
                row.email,
                row,
                _relation_badges(row),
                note=dont_track.note
                if dont_track and row.is_tracked and dont_track.covers(row.sent_at)
                else "",
            )
            for row in rows
        ]
    related = (
        Q(related_account=record) if isinstance(record, Account) else Q(related_opportunity=record)
    )
    # One row per email however many of the record's people it went to: a subquery, not a
    # join, so nothing is repeated.
    people = EmailMessageRelation.objects.filter(contact__in=_people(record, contacts))
    emails = EmailMessage.objects.filter(related | Q(pk__in=people.values("email")))
    logged_as_task = EmailMessageRelation.objects.filter(
        email=OuterRef("pk"), untracked_reason=EmailMessageRelation.LOGGED_AS_TASK
    )
    emails = (
        emails.exclude(Exists(logged_as_task))
        .annotate(when=_OWN_WHEN)
        .filter(window)
        .select_related("sender")
        .defer("html_body", "text_body")
        .order_by("-when", "-pk")
    )
    if position:
        emails = emails.filter(position.before("when", "email"))
    return [
        Entry("email", email.when, email.pk, email, None, _email_badges(email))
        for email in emails[: limit + 1]
    ]


def _people(record: Account | Opportunity, contacts: QuerySet[Contact]) -> QuerySet[Contact]:
    """The contacts whose story is part of the record's: an account's own contacts, an
    opportunity's contact roles (of those `contacts` the viewer may see)."""
    if isinstance(record, Account):
        return contacts.filter(account=record)
    return contacts.filter(roles__opportunity=record)


def _task_filter(record: Record, contacts: QuerySet[Contact]) -> Q:
    if isinstance(record, Contact):
        return Q(who_contact=record)
    if isinstance(record, Lead):
        return Q(who_lead=record)
    if isinstance(record, Account):
        return Q(what_account=record) | Q(who_contact__in=_people(record, contacts))
    return Q(what_opportunity=record) | Q(who_contact__in=_people(record, contacts))


def _waiting_emails(record: Record, contacts: QuerySet[Contact]) -> QuerySet[ScheduledEmail]:
    """Scheduled emails still waiting, written from this record's page or about it (an
    Account's: to its contacts the viewer may see, as its other lists)."""
    if isinstance(record, Contact):
        about = Q(contact=record)
    elif isinstance(record, Lead):
        about = Q(lead=record)
    elif isinstance(record, Account):
        about = Q(related_account=record) | Q(contact__in=contacts.filter(account=record))
    else:
        about = Q(related_opportunity=record)
    return (
        ScheduledEmail.objects.waiting()
        .filter(about)
        .select_related("sender")
        .order_by("send_at", "pk")
    )


def _open_tasks(record: Record, contacts: QuerySet[Contact]) -> QuerySet[Task]:
    return (
        Task.objects.filter(_task_filter(record, contacts))
        .open()
        .select_related("owner")
        .order_by("due_date", "pk")
    )


def _done_tasks(
    record: Record, window: Q, position: Cursor | None, limit: int, contacts: QuerySet[Contact]
) -> list[Entry]:
    tasks = (
        Task.objects.filter(_task_filter(record, contacts), status=Task.Status.COMPLETED)
        .annotate(when=_TASK_WHEN)
        .filter(window)
        .select_related("owner")
        .order_by("-when", "-pk")
    )
    if position:
        tasks = tasks.filter(position.before("when", "task"))
    return [Entry("task", task.when, task.pk, task) for task in tasks[: limit + 1]]


def _privacy_changes(
    record: Contact | Lead | Account,
    window: Q,
    position: Cursor | None,
    limit: int,
    contacts: QuerySet[Contact],
) -> list[Entry]:
    if isinstance(record, Account):
        changes = PrivacyChange.objects.filter(contact__in=contacts.filter(account=record))
    elif isinstance(record, Contact):
        changes = PrivacyChange.objects.filter(contact=record)
    else:
        changes = PrivacyChange.objects.filter(lead=record)
    changes = (
        changes.annotate(when=_PRIVACY_WHEN)
        .filter(window)
        .select_related("changed_by")
        .order_by("-when", "-pk")
    )
    if position:
        changes = changes.filter(position.before("when", "privacy"))
    return [Entry("privacy", change.when, change.pk, change) for change in changes[: limit + 1]]


def _relation_badges(row: EmailMessageRelation) -> list[tuple[str, str]]:
    """This person's copy at a glance: delivery, opens, clicks, bounce, reply."""
    if row.email.source == EmailMessage.Source.CAPTURED:
        return _captured_badges(row.email, replied=row.replied_at is not None)
    if row.relation_type == EmailMessageRelation.Type.FROM and row.email.incoming:
        return [("Auto-reply", "secondary") if row.email.is_auto_reply else ("Received", "info")]
    badges: list[tuple[str, str]] = []
    status = row.delivery_status
    if status == EmailMessageRelation.Delivery.REFUSED:
        return [(f"Not sent ({row.refusal_reason})", "warning")]
    if status == EmailMessageRelation.Delivery.FAILED:
        return [(f"Failed: {row.refusal_reason}", "danger")]
    if status == EmailMessageRelation.Delivery.SENDING and row.refusal_reason == UNCONFIRMED:
        return [("Unconfirmed: may or may not have gone out", "info")]
    if status in (EmailMessageRelation.Delivery.PENDING, EmailMessageRelation.Delivery.SENDING):
        return [("Queued", "info")]
    if row.bounce_category:
        badges.append((f"Bounced ({row.get_bounce_category_display().lower()})", "danger"))
    if row.replied_at:
        badges.append(("Replied", "success"))
    if not row.is_tracked:
        reason = f" ({row.untracked_reason})" if row.untracked_reason else ""
        badges.append((f"Not tracked{reason}", "light"))
        return badges
    if row.human_opens:
        times = "once" if row.human_opens == 1 else f"{row.human_opens} times"
        badges.append((f"Opened {times}", "success"))
    elif row.opened_by_click:
        badges.append((OPENED_BY_CLICK, "success"))
    elif row.machine_opens:
        label = MACHINE_LABELS.get(row.machine_open_label, "machine")
        badges.append((f"Machine open only ({label})", "secondary"))
    elif not row.bounce_category:
        badges.append(("Not opened yet", "light"))
    if row.last_clicked_link_id and row.last_clicked_link:
        badges.append((f"Clicked {link_name(row.last_clicked_link.url)}", "primary"))
    return badges


def _email_badges(email: EmailMessage) -> list[tuple[str, str]]:
    """An email's engagement across its recipients (Account and Opportunity timelines)."""
    if email.source == EmailMessage.Source.CAPTURED:
        return _captured_badges(email, replied=email.status == EmailMessage.Status.REPLIED)
    if email.incoming:
        return [("Auto-reply", "secondary") if email.is_auto_reply else ("Received", "info")]
    if email.delivery_status in (EmailMessage.Delivery.QUEUED, EmailMessage.Delivery.SENDING):
        return [("Queued", "info")]
    if email.delivery_status == EmailMessage.Delivery.FAILED:
        return [("Failed", "danger")]
    if email.delivery_status == EmailMessage.Delivery.UNCONFIRMED:
        return [("Unconfirmed: may or may not have gone out", "info")]
    badges: list[tuple[str, str]] = []
    if email.is_bounced:
        badges.append(("Bounced", "danger"))
    if not email.is_tracked:
        return [*badges, ("Not tracked", "light")]
    if email.times_opened:
        times = "once" if email.times_opened == 1 else f"{email.times_opened} times"
        badges.append((f"Opened {times}", "success"))
    elif email.is_opened:
        badges.append((OPENED_BY_CLICK, "success"))
    if email.times_clicked:
        badges.append(
            (f"{email.times_clicked} click{'s' if email.times_clicked > 1 else ''}", "primary")
        )
    return badges or [("Not opened yet", "light")]


def _captured_badges(email: EmailMessage, *, replied: bool) -> list[tuple[str, str]]:
    """Email captured from a user's mailbox (the capture app): no pixel was ever in it."""
    if email.incoming:
        kind = ("Auto-reply", "secondary") if email.is_auto_reply else ("Received", "info")
    else:
        kind = ("Sent", "info")
    badges = [kind, ("From mailbox", "dark")]
    if replied:
        badges.append(("Replied", "success"))
    return [*badges, (CAPTURED_UNTRACKED, "light")]


def link_name(url: str) -> str:
    """A link as people say it: the host and the last part of the path."""
    parts = urlsplit(url)
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{parts.hostname or url}{'/' + tail if tail else ''}"
