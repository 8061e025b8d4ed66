"""Capturing a batch of a user's messages: who is on each, which are stored, and how.

One batch is one transaction: the ledger (CapturedMessage, unique per user and Message-ID), the
emails, their relations and attachments commit together, so a sync that dies after a batch
resumes after it and nothing is stored twice. The rules, in order, for each message:

1. Seen before (the ledger), or Openrate's own email (its Message-ID is an EmailMessage's or a
   recipient copy's): not stored again.
2. Its other parties are the addresses on it less the user's own and Setup's internal ones;
   none left (internal mail), or any of them among Setup's excluded addresses or domains: not
   captured.
3. Matched: the parties that are a Contact or (unconverted) Lead the user may see. None: not
   stored. Any matched person the privacy policy refuses (Don't Process, Forget): not captured.
4. A reply from the recipient of one of Openrate's copies (its In-Reply-To / References name
   that copy's Message-ID) goes through inbound's reply effect (inbound.effects.reply_record,
   as a reply that came back to Openrate would), then is marked captured.
5. Anything else becomes one EmailMessage (source "captured", untracked), threaded by its
   Message-IDs, with a relation per matched person and one for the user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Case, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from capture.models import CapturedAttachment, CapturedMessage, Mailbox
from capture.reading import Mail
from crm import hooks, jobs
from crm.internal import InternalRules, parse_addresses
from crm.models import Contact, EmailMessage, EmailMessageRelation, Lead, OrgSettings, User
from inbound.effects import reply_record
from inbound.parsing import classify_message
from mailkit.rewrite import html_to_text
from privacy.policy import email_policy

logger = logging.getLogger(__name__)

REFRESH_ACTIVITY = "capture.tasks.refresh_activity"
# The copies' untracked_reason: no pixel was ever in mail written in the user's own program.
UNTRACKED = "From the mailbox: no tracking"
Relation = EmailMessageRelation


@dataclass(frozen=True)
class Item:
    mail: Mail
    raw: bytes
    # True: the user sent it (their Bcc address, or it is from one of their addresses).
    outgoing: bool = False


@dataclass
class Result:
    captured: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    email_ids: list[int] = field(default_factory=list)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


@dataclass(frozen=True)
class Rules:
    """Who "us" is for one user, and what Setup keeps out."""

    own: frozenset[str]
    internal: InternalRules
    excluded: InternalRules
    enforce_privacy: bool
    keep_contents: bool
    max_attachment: int

    @classmethod
    def for_user(cls, user: User, mailbox: Mailbox | None = None) -> Rules:
        org = OrgSettings.load()
        own = {user.email.lower()} if user.email else set()
        if mailbox is not None:
            if "@" in mailbox.username:
                own.add(mailbox.username.lower())
            own |= parse_addresses(mailbox.other_addresses)[0]
        addresses, domains, _ = parse_addresses(org.capture_excluded_addresses)
        return cls(
            own=frozenset(own),
            internal=InternalRules.from_setup(org.internal_addresses, "", full_ip=True),
            excluded=InternalRules(frozenset(addresses), frozenset(domains)),
            enforce_privacy=org.enforce_email_privacy,
            keep_contents=org.capture_attachment_contents,
            max_attachment=org.capture_attachment_max_kb * 1024,
        )

    def others(self, mail: Mail) -> list[str]:
        return [
            a
            for a in mail.parties
            if a not in self.own and not self.internal.address_is_internal(a)
        ]


def mails_capture(
    *, user: User, items: list[Item], rules: Rules, now: datetime | None = None
) -> Result:
    """Capture one batch of the user's messages in one transaction (see the module's rules)."""
    now = now or timezone.now()
    result = Result()
    with transaction.atomic():
        todo = _unseen(user, items, result)
        parties = {a for item in todo for a in rules.others(item.mail)}
        people, refused = _people(user, parties, rules)
        copies = _copies({i for item in todo for i in item.mail.references})
        threads = _threads(
            {i for item in todo for i in (*item.mail.references, item.mail.message_id)}
        )
        ledger: list[CapturedMessage] = []
        new: list[tuple[EmailMessage, list[Relation], Mail]] = []
        contact_ids: set[int] = set()
        lead_ids: set[int] = set()
        for item in todo:
            mail = item.mail
            others = rules.others(mail)
            if not others:
                result.skip("internal only")
                continue
            if any(rules.excluded.address_is_internal(a) for a in others):
                result.skip("excluded by Setup")
                continue
            if any(a in refused for a in others):
                result.skip("Don't Process")
                continue
            matched = {a: people[a] for a in others if a in people}
            if not matched:
                result.skip("no contact or lead")
                continue
            outgoing = item.outgoing or mail.from_address in rules.own
            email = _reply_to_ours(item, matched, copies) if not outgoing else None
            if email is not None:
                EmailMessage.objects.filter(pk=email.pk).update(
                    source=EmailMessage.Source.CAPTURED, captured_for=user
                )
                _attachments_store([(email, mail)], rules)
            else:
                email, relations = _email_new(user, mail, matched, outgoing, threads, rules, now)
                new.append((email, relations, mail))
            threads.setdefault(mail.message_id, (email.thread_identifier, email.pk))
            ledger.append(
                CapturedMessage(
                    user=user,
                    message_id=mail.message_id,
                    outcome=CapturedMessage.Outcome.CAPTURED,
                    email=email,
                )
            )
            contact_ids |= {p.pk for p in matched.values() if isinstance(p, Contact)}
            lead_ids |= {p.pk for p in matched.values() if isinstance(p, Lead)}
            result.captured += 1
        # One INSERT for the batch's emails, one for their relations (PostgreSQL and SQLite
        # both return the new ids).
        EmailMessage.objects.bulk_create([email for email, _, _ in new])
        rows: list[Relation] = []
        for email, relations, _ in new:
            for relation in relations:
                relation.email = email
            rows += relations
        Relation.objects.bulk_create(rows)
        _attachments_store([(email, mail) for email, _, mail in new], rules)
        for entry in ledger:
            entry.email_id = entry.email.pk if entry.email else None
        result.email_ids = [entry.email_id for entry in ledger if entry.email_id]
        CapturedMessage.objects.bulk_create(ledger)
        if contact_ids or lead_ids:
            jobs.enqueue(
                REFRESH_ACTIVITY, contact_ids=sorted(contact_ids), lead_ids=sorted(lead_ids)
            )
    return result


def _unseen(user: User, items: list[Item], result: Result) -> list[Item]:
    """The items not seen before: not in the ledger, not Openrate's own email, once each."""
    ids = {item.mail.message_id for item in items}
    seen = set(
        CapturedMessage.objects.filter(user=user, message_id__in=ids).values_list(
            "message_id", flat=True
        )
    )
    stored = dict(
        EmailMessage.objects.filter(message_identifier__in=ids - seen).values_list(
            "message_identifier", "pk"
        )
    )
    copies = dict(
        Relation.objects.filter(message_id__in=ids - seen - set(stored)).values_list(
            "message_id", "email_id"
        )
    )
    already = {**stored, **copies}
    CapturedMessage.objects.bulk_create(
        [
            CapturedMessage(
                user=user,
                message_id=message_id,
                outcome=CapturedMessage.Outcome.STORED,
                email_id=email_id,
            )
            for message_id, email_id in already.items()
        ]
    )
    todo: list[Item] = []
    for item in items:
        message_id = item.mail.message_id
        if message_id in seen or message_id in already:
            result.skip("already stored")
            continue
        seen.add(message_id)
        todo.append(item)
    return todo


def _people(
    user: User, addresses: Iterable[str], rules: Rules
) -> tuple[dict[str, Contact | Lead], set[str]]:
    """The Contact (else unconverted Lead) the user may see at each address, the user's own
    record first when several share it; and the addresses of anyone, seen by the user or not,
    whom the privacy policy keeps out (Don't Process, Forget)."""
    addresses = sorted(set(addresses))
    found: dict[str, Contact | Lead] = {}
    refused: set[str] = set()
    if not addresses:
        return found, refused
    leads = Lead.objects.exclude(status=Lead.Status.CONVERTED)
    for queryset in (Contact.objects.all(), leads):
        rows = (
            queryset.filter(forgotten_at__isnull=True)
            .annotate(
                address=Lower("email"),
                mine=Case(When(owner=user, then=Value(0)), default=Value(1)),
            )
            .filter(address__in=addresses)
            .select_related("individual")
            .order_by("mine", "pk")
        )
        visible = set(
            queryset.visible_to(user).values_list("pk", flat=True).filter(pk__in=rows.values("pk"))
        )
        for person in rows:
            address = person.address
            if not _may_process(person, rules):
                refused.add(address)
            elif person.pk in visible:
                found.setdefault(address, person)
    return found, refused


def _may_process(person: Contact | Lead, rules: Rules) -> bool:
    """The privacy policy's answer for any use of the person's data (privacy.policy)."""
    policy = email_policy(
        person.individual,
        has_opted_out_of_email=person.has_opted_out_of_email,
        is_list_email=False,
        enforce_privacy=rules.enforce_privacy,
    )
    return policy.may_send


def _threads(ids: set[str]) -> dict[str, tuple[str, int]]:
    """Each known Message-ID (an email's, or a recipient copy's) -> (thread, email id)."""
    if not ids:
        return {}
    known: dict[str, tuple[str, int]] = {}
    for message_id, thread, pk in EmailMessage.objects.filter(
        message_identifier__in=ids
    ).values_list("message_identifier", "thread_identifier", "pk"):
        known[message_id] = (thread or message_id, pk)
    for message_id, thread, own, pk in Relation.objects.filter(message_id__in=ids).values_list(
        "message_id", "email__thread_identifier", "email__message_identifier", "email_id"
    ):
        known.setdefault(message_id, (thread or own, pk))
    return known


def _thread_of(mail: Mail, threads: dict[str, tuple[str, int]]) -> tuple[str, int | None]:
    for message_id in mail.references:
        if message_id in threads:
            return threads[message_id][0], threads[message_id][1]
    # Not known yet: the first Message-ID of the conversation, which its other messages
    # (stored before or after this one) name too.
    return mail.thread_root, None


def _copies(ids: set[str]) -> dict[tuple[str, str], int]:
    """Openrate's recipient copies among these Message-IDs: (Message-ID, address) -> copy id."""
    if not ids:
        return {}
    rows = (
        Relation.objects.filter(message_id__in=ids, email__incoming=False)
        .exclude(relation_type=Relation.Type.FROM)
        .values_list("message_id", "address", "pk")
    )
    return {(message_id, address.lower()): pk for message_id, address, pk in rows}


def _reply_to_ours(
    item: Item, matched: dict[str, Contact | Lead], copies: dict[tuple[str, str], int]
) -> EmailMessage | None:
    """A reply to one of Openrate's copies, recorded as inbound records one (one code path):
    proof is its In-Reply-To / References naming the copy, from the copy's own recipient."""
    mail = item.mail
    if mail.from_address not in matched:
        return None
    copy_id = next(
        (copies[key] for i in mail.references if (key := (i, mail.from_address)) in copies), None
    )
    if copy_id is None:
        return None
    original = Relation.objects.select_related("email__sender", "contact", "lead").get(pk=copy_id)
    kind = classify_message(item.raw).kind
    email = reply_record(
        original=original,
        from_address=mail.from_address,
        subject=mail.subject,
        html_body=mail.html,
        text_body=mail.text,
        message_id=mail.message_id,
        received_at=mail.date or timezone.now(),
        is_auto_reply=kind == "auto_reply",
    )
    hooks.engagement_counted(relation_ids=[original.pk])
    return email


def _email_new(
    user: User,
    mail: Mail,
    matched: dict[str, Contact | Lead],
    outgoing: bool,
    threads: dict[str, tuple[str, int]],
    rules: Rules,
    now: datetime,
) -> tuple[EmailMessage, list[Relation]]:
    """The email (not yet saved) and its relations: each matched person, and the user."""
    thread, parent = _thread_of(mail, threads)
    when = mail.date or now
    email = EmailMessage(
        subject=mail.subject,
        html_body=mail.html,
        text_body=mail.text or html_to_text(mail.html),
        from_address=mail.from_address,
        from_name=mail.from_name,
        to_addresses=mail.to_header,
        cc_addresses=mail.cc_header,
        status=EmailMessage.Status.SENT if outgoing else EmailMessage.Status.RECEIVED,
        delivery_status=EmailMessage.Delivery.SENT if outgoing else "",
        source=EmailMessage.Source.CAPTURED,
        incoming=not outgoing,
        is_tracked=False,
        message_identifier=mail.message_id,
        thread_identifier=thread[:255],
        reply_to_message_id=parent,
        sender=user if outgoing else None,
        captured_for=user,
        message_date=when,
    )
    names = {mail.from_address: mail.from_name, **{a: n for n, a in (*mail.to, *mail.cc)}}
    kinds = {a: Relation.Type.CC for _, a in mail.cc}
    kinds |= {a: Relation.Type.TO for _, a in mail.to}
    kinds[mail.from_address] = Relation.Type.FROM
    relations = [
        Relation(
            relation_type=kinds.get(address, Relation.Type.BCC),
            address=address,
            name=names.get(address, "")[:255] or person.name,
            contact=person if isinstance(person, Contact) else None,
            lead=person if isinstance(person, Lead) else None,
            delivery_status=Relation.Delivery.SENT,
            sent_at=when,
            untracked_reason=UNTRACKED,
        )
        for address, person in matched.items()
    ]
    if outgoing:
        own = mail.from_address
    else:
        own = next((a for _, a in (*mail.to, *mail.cc) if a in rules.own), user.email)
    relations.append(
        Relation(
            relation_type=kinds.get(own, Relation.Type.TO),
            address=own or user.email,
            name=user.display_name[:255],
            user=user,
            delivery_status=Relation.Delivery.SENT,
            sent_at=when,
            untracked_reason=UNTRACKED,
        )
    )
    return email, relations


def _attachments_store(emails: list[tuple[EmailMessage, Mail]], rules: Rules) -> None:
    """Names and sizes; contents only when Setup keeps them and they are small enough."""
    CapturedAttachment.objects.bulk_create(
        [
            CapturedAttachment(
                email=email,
                name=a.name,
                content_type=a.content_type,
                size=a.size,
                content=a.content
                if rules.keep_contents and a.size <= rules.max_attachment
                else None,
            )
            for email, mail in emails
            for a in mail.attachments
        ]
    )
