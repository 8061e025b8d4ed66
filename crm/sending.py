"""Sending: every email Openrate sends (single, list, automated) is composed and checked here.

email_send() checks Setup (deliverability, daily limits) and each recipient's privacy, and
records the EmailMessage with one relation row per address and the links to track; delivery
(crm.delivery, run by Celery) then renders and sends one copy per recipient. With Enhanced Email
off the send is also logged as a completed Email task, as in Salesforce.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Model, OuterRef, Q
from django.db.models.functions import Upper
from django.utils import timezone

from crm import jobs
from crm.email_events import email_events_record
from crm.models import (
    Account,
    Contact,
    DailySendCount,
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    EmailTemplate,
    Lead,
    Opportunity,
    OrgSettings,
    Task,
    TrackedLink,
    User,
)
from crm.prepared import PreparedBatch, PreparedCopy, prepared_record
from crm.suppression import suppression_lift
from mailkit.merge import field_problems, has_fields, header_address, merge, written_part
from mailkit.rewrite import find_links, html_to_text, link_bare_urls
from mailkit.stencil import stencil_of
from privacy.forgotten import forgotten_among
from privacy.policy import EmailPolicy, email_policy

Recipient = Contact | Lead | User | str
Relation = EmailMessageRelation


class SendRefused(Exception):
    """The whole send is refused (Setup or a limit); the message says why, for the user."""


_HIDDEN_REASON = "the person's privacy settings"


@dataclass
class _Address:
    address: str
    name: str
    kind: str  # EmailMessageRelation.Type
    contact: Contact | None = None
    lead: Lead | None = None
    user: User | None = None
    # A record with this address that the sender may not see: its privacy still governs the
    # send, but the email is not linked to it and its fields fill no merge field.
    hidden: Contact | Lead | None = None

    @property
    def person(self) -> Contact | Lead | None:
        """The record the email is linked to: one the sender may see."""
        return self.contact or self.lead

    @property
    def privacy_person(self) -> Contact | Lead | None:
        """Whose privacy decides the send: the linked record, else a hidden one."""
        return self.person or self.hidden


def email_send(
    *,
    sender: User,
    to: Sequence[Recipient],
    cc: Sequence[Recipient] = (),
    bcc: Sequence[Recipient] = (),
    subject: str,
    html_body: str,
    source: str = EmailMessage.Source.SINGLE,
    related_to: Account | Opportunity | None = None,
    campaign: Model | None = None,
    reply_to: EmailMessage | None = None,
    forward: bool = False,
    template: EmailTemplate | None = None,
) -> EmailMessage:
    """Record an email and queue its delivery: one tracked (where allowed) copy per recipient.

    `campaign` is a campaigns.Campaign, typed as a Model: crm does not import campaigns.
    `template` is the library template it was written from (kept on the email for reports).
    `reply_to` is the email this one answers (or forwards, with `forward`): the new one joins
    its thread, and a reply is linked to it and sent with In-Reply-To / References
    (crm.delivery), so each recipient's mail program keeps the conversation together. The
    caller checks the sender may see it (EmailMessage.objects.visible_to).
    """
    org = _sending_allowed()
    # Another tool's merge syntax (*|FNAME|*, %%FirstName%%) would reach people as written.
    problems = field_problems(f"{subject}\n{written_part(html_body)}")
    if problems:
        raise SendRefused(problems)
    html_body = link_bare_urls(html_body)
    addresses = _resolve(to, cc, bcc, sender=sender)
    if not addresses:
        raise SendRefused("Add at least one recipient.")
    is_list = source == EmailMessage.Source.LIST
    with transaction.atomic():
        decisions, suppressed = _decide(org, addresses, is_list=is_list)
        allowed = sum(decision.may_send for decision in decisions)
        _check_daily_limit(org, is_list=is_list, adding=allowed)
        draft = _draft(
            org,
            addresses,
            decisions,
            sender=sender,
            subject=subject,
            html_body=html_body,
            source=source,
            related_to=related_to,
            campaign=campaign,
            template=template,
        )
        if reply_to is not None:
            _thread(draft.email, reply_to, forward=forward)
        (email,) = _record(org, [draft], sender=sender, related_to=related_to)
        if reply_to is not None and reply_to.incoming:
            # Salesforce's Status of a received email: answered or passed on by the user.
            EmailMessage.objects.filter(pk=reply_to.pk).update(
                status=EmailMessage.Status.FORWARDED if forward else EmailMessage.Status.REPLIED
            )
        if not is_list:
            # A rep writing to a bounced address has fixed it (the composer warned them).
            for address in suppressed:
                suppression_lift(address=address)
        if allowed:
            jobs.enqueue(jobs.DELIVER_EMAIL, email.pk)
    return email


def emails_send_each(
    *,
    sender: User,
    people: Sequence[Contact | Lead],
    subject: str,
    html_body: str,
    source: str = EmailMessage.Source.LIST,
    campaign: Model | None = None,
    template: EmailTemplate | None = None,
) -> list[EmailMessage]:
    """One email per person, each as email_send makes it with that person alone in To (the same
    Setup checks, privacy policy and suppressions, merge fields filled), written in bulk: the
    daily limit is checked once for them all. The caller delivers them (emails_deliver): a list
    email's batch, which paces itself."""
    return emails_prepare_each(
        sender=sender,
        people=people,
        subject=subject,
        html_body=html_body,
        source=source,
        campaign=campaign,
        template=template,
    ).emails()


def emails_prepare_each(
    *,
    sender: User,
    people: Sequence[Contact | Lead],
    subject: str,
    html_body: str,
    source: str = EmailMessage.Source.LIST,
    campaign: Model | None = None,
    template: EmailTemplate | None = None,
) -> PreparedBatch:
    """As emails_send_each, returning the batch as written, for emails_deliver(prepared=...)
    to render without reading it back."""
    org = _sending_allowed()
    addresses = [_address_of(person, Relation.Type.TO) for person in people]
    if any(not item.address for item in addresses):
        raise SendRefused("Each person needs an email address.")
    is_list = source == EmailMessage.Source.LIST
    shared = _shared_by_all(html_body)
    with transaction.atomic():
        decisions, _ = _decide(org, addresses, is_list=is_list)
        _check_daily_limit(
            org, is_list=is_list, adding=sum(decision.may_send for decision in decisions)
        )
        tracking_on = org.enhanced_email and org.email_tracking_enabled
        domain = sender.email.rpartition("@")[2] or "openrate.localhost"
        batch = PreparedBatch(
            sender=sender,
            source=source,
            campaign_id=campaign.pk if campaign is not None else None,
            template_id=template.pk if template is not None else None,
            stencil=stencil_of(html_body),
            copies=[],
        )
        for item, decision in zip(addresses, decisions, strict=True):
            values = merge_values(item.person, item.name, item.address, sender)
            batch.copies.append(
                PreparedCopy(
                    address=item.address,
                    name=item.name,
                    contact_id=item.contact.pk if item.contact else None,
                    lead_id=item.lead.pk if item.lead else None,
                    values=values,
                    subject=merge(subject, values, as_html=False),
                    html=merge(html_body, values, as_html=True),
                    text=merge(shared.text_body, values, as_html=False),
                    to_header=_header_list([item]),
                    may_send=decision.may_send,
                    refusal_reason="" if decision.may_send else decision.reason,
                    is_tracked=tracking_on and decision.may_send and decision.may_track,
                    untracked_reason=_untracked_reason(org, decision),
                    message_id=make_msgid(domain=domain)[1:-1] if decision.may_send else "",
                    message_identifier=make_msgid(domain=domain)[1:-1],
                    destinations=shared.destinations,
                )
            )
        prepared_record(batch)
        if not org.enhanced_email:
            now = timezone.now()
            Task.objects.bulk_create(
                [
                    _task_logging(
                        sender=sender,
                        who=item.person,
                        to=copy.to_header,
                        subject=merge(copy.subject, copy.values, as_html=False),
                        text=merge(copy.text, copy.values, as_html=False),
                        related_to=None,
                        when=now,
                    )
                    for item, copy in zip(addresses, batch.copies, strict=True)
                    if copy.may_send
                ]
            )
    return batch


def _sending_allowed() -> OrgSettings:
    """Setup's deliverability level allows rep and list email, or the send is refused."""
    org = OrgSettings.load()
    if org.deliverability_access == OrgSettings.Deliverability.NO_ACCESS:
        raise SendRefused("Email is switched off: Setup's deliverability access is No access.")
    if org.deliverability_access == OrgSettings.Deliverability.SYSTEM_ONLY:
        raise SendRefused(
            "Only system email may be sent: Setup's deliverability access is System email only."
        )
    return org


def _decide(
    org: OrgSettings, addresses: Sequence[_Address], *, is_list: bool
) -> tuple[list[EmailPolicy], dict[str, str]]:
    """Each address's privacy decision, and the suppressed ones among them (one query)."""
    decisions = [
        email_policy(
            item.privacy_person.individual if item.privacy_person else None,
            has_opted_out_of_email=bool(
                item.privacy_person and item.privacy_person.has_opted_out_of_email
            ),
            is_list_email=is_list,
            enforce_privacy=org.enforce_email_privacy,
        )
        for item in addresses
    ]
    # A record the sender may not see decides in silence: its flags are not named to them.
    decisions = [
        dataclasses.replace(decision, reason=_HIDDEN_REASON)
        if item.person is None and item.hidden is not None and decision.reason
        else decision
        for item, decision in zip(addresses, decisions, strict=True)
    ]
    # A forgotten person's address (kept only as a hash) is never written to again.
    forgotten = forgotten_among(item.address for item in addresses)
    decisions = [
        EmailPolicy.refuse("Forgotten person") if item.address in forgotten else decision
        for item, decision in zip(addresses, decisions, strict=True)
    ]
    suppressed = dict(
        EmailSuppression.objects.filter(
            address__in=[item.address.lower() for item in addresses]
        ).values_list("address", "reason")
    )
    if is_list:
        # List email skips addresses that bounced hard, soft too often, or complained.
        decisions = [
            EmailPolicy.refuse(
                f"Suppressed: {EmailSuppression.Reason(suppressed[item.address.lower()]).label}"
            )
            if item.address.lower() in suppressed and decision.may_send
            else decision
            for item, decision in zip(addresses, decisions, strict=True)
        ]
    return decisions, suppressed


@dataclass(frozen=True)
class _Shared:
    """What the emails made from one body share, worked out once from the body as written
    (its merge fields unfilled): the text part, filled for each person as the subject is, and
    the tracked links' destinations (None when a link holds a merge field: each email then
    finds its own)."""

    text_body: str
    destinations: list[str] | None


def _shared_by_all(html_body: str) -> _Shared:
    links = find_links(html_body)
    return _Shared(
        text_body=html_to_text(html_body),
        destinations=None if any(has_fields(url) for url in links) else links,
    )


@dataclass
class _Draft:
    """An email and its relation rows, built but not yet written."""

    email: EmailMessage
    rows: list[Relation]
    addresses: Sequence[_Address]


def _draft(
    org: OrgSettings,
    addresses: Sequence[_Address],
    decisions: Sequence[EmailPolicy],
    *,
    sender: User,
    subject: str,
    html_body: str,
    source: str,
    related_to: Account | Opportunity | None,
    campaign: Model | None,
    template: EmailTemplate | None = None,
) -> _Draft:
    """The email and its rows."""
    tracking_on = org.enhanced_email and org.email_tracking_enabled
    domain = sender.email.rpartition("@")[2] or "openrate.localhost"
    if len(addresses) == 1:
        # One recipient: keep the email as they read it, merge fields filled.
        only = addresses[0]
        values = merge_values(only.person, only.name, only.address, sender)
        subject = merge(subject, values, as_html=False)
        html_body = merge(html_body, values, as_html=True)
    message_identifier = make_msgid(domain=domain)[1:-1]
    email = EmailMessage(
        subject=subject,
        html_body=html_body,
        text_body=html_to_text(html_body),
        from_address=sender.email,
        from_name=sender.get_full_name(),
        to_addresses=_header_list(a for a in addresses if a.kind == Relation.Type.TO),
        cc_addresses=_header_list(a for a in addresses if a.kind == Relation.Type.CC),
        bcc_addresses=_header_list(a for a in addresses if a.kind == Relation.Type.BCC),
        status=EmailMessage.Status.DRAFT,
        delivery_status=EmailMessage.Delivery.QUEUED,
        source=source,
        message_identifier=message_identifier,
        thread_identifier=message_identifier,
        related_account=related_to if isinstance(related_to, Account) else None,
        related_opportunity=related_to if isinstance(related_to, Opportunity) else None,
        sender=sender,
        campaign_id=campaign.pk if campaign is not None else None,
        template=template,
    )
    rows = [
        Relation(
            email=email,
            relation_type=Relation.Type.FROM,
            address=sender.email,
            name=sender.get_full_name(),
            user=sender,
            delivery_status=Relation.Delivery.SENT,
        )
    ]
    # An email to several people keeps its merge fields; each copy keeps the values it is
    # filled with, so it can be shown as sent after the person's record changes.
    keep_values = has_fields(f"{subject}\n{html_body}")
    for item, decision in zip(addresses, decisions, strict=True):
        rows.append(
            Relation(
                email=email,
                relation_type=item.kind,
                address=item.address,
                name=item.name,
                merge_values=(
                    merge_values(item.person, item.name, item.address, sender)
                    if keep_values
                    else {}
                ),
                contact=item.contact,
                lead=item.lead,
                user=item.user,
                delivery_status=(
                    Relation.Delivery.PENDING if decision.may_send else Relation.Delivery.REFUSED
                ),
                refusal_reason="" if decision.may_send else decision.reason,
                is_tracked=tracking_on and decision.may_send and decision.may_track,
                untracked_reason=_untracked_reason(org, decision),
                message_id=make_msgid(domain=domain)[1:-1] if decision.may_send else "",
            )
        )
    email.is_tracked = any(row.is_tracked for row in rows)
    if not any(decision.may_send for decision in decisions):
        email.delivery_status = EmailMessage.Delivery.FAILED
        email.failure_reason = "No recipient may receive this email: " + "; ".join(
            f"{a.address} ({d.reason})" for a, d in zip(addresses, decisions, strict=True)
        )
    return _Draft(email, rows, addresses)


def _thread(email: EmailMessage, original: EmailMessage, *, forward: bool) -> None:
    """Put a draft in the original's conversation; a reply (not a forward) also names it."""
    email.thread_identifier = (
        original.thread_identifier or original.message_identifier or email.thread_identifier
    )
    if not forward:
        email.reply_to_message = original


def _record(
    org: OrgSettings,
    drafts: Sequence[_Draft],
    *,
    sender: User,
    related_to: Account | Opportunity | None,
) -> list[EmailMessage]:
    """Write the drafts: one INSERT each for the emails, their relations and their links."""
    emails = EmailMessage.objects.bulk_create([draft.email for draft in drafts])
    rows = Relation.objects.bulk_create([row for draft in drafts for row in draft.rows])
    email_events_record(
        kind=EmailEvent.Kind.QUEUED,
        relation_ids=[row.pk for row in rows if row.delivery_status == Relation.Delivery.PENDING],
    )
    TrackedLink.objects.bulk_create(
        [link for draft in drafts if draft.email.is_tracked for link in _links_of(draft)]
    )
    if not org.enhanced_email:
        now = timezone.now()
        Task.objects.bulk_create(
            [
                task
                for draft in drafts
                for task in _tasks_logging(draft, sender=sender, related_to=related_to, when=now)
            ]
        )
    return emails


def merge_values(
    person: Contact | Lead | None, name: str, address: str, sender: User | None
) -> dict[str, str]:
    if isinstance(person, Contact):
        company = person.account.name if person.account else ""
    else:
        company = person.company if person else ""
    first, _, last = name.partition(" ")
    return {
        "first_name": person.first_name if person else first,
        "last_name": person.last_name if person else last,
        "name": person.name if person else name,
        "company": company,
        "title": person.title if person else "",
        "email": address,
        "sender_name": sender.get_full_name() if sender else "",
        "sender_email": sender.email if sender else "",
    }


def _values_of(row: Relation, sender: User | None) -> dict[str, str]:
    """A recipient's merge values, as delivery (crm.delivery) fills their copy: those kept at
    send time, else (copies sent before they were kept) read from the record now."""
    return row.merge_values or merge_values(row.contact or row.lead, row.name, row.address, sender)


def _untracked_reason(org: OrgSettings, decision: EmailPolicy) -> str:
    if not decision.may_send:
        return ""
    if not org.enhanced_email:
        return Relation.LOGGED_AS_TASK
    if not org.email_tracking_enabled:
        return "Email tracking is off"
    return "" if decision.may_track else decision.reason


def _links_of(draft: _Draft) -> list[TrackedLink]:
    """One TrackedLink per distinct destination as the recipients get it, and the hidden
    honeypot link.

    A link holding a merge field ("?email={{email}}") leads somewhere else for each recipient,
    so it gets a row per distinct filled-in URL: delivery fills each copy's fields before it
    rewrites the links and finds that copy's row by its URL, and a click token still names one
    fixed URL, which the fast path redirects to from its cache (no template, no recipient read).
    The destinations are the HTML's trackable links; the text part, generated from the HTML,
    has the same ones (a link the HTML marks data-notrack stays untracked in the text too).
    """
    email = draft.email
    bodies = [email.html_body]
    if has_fields(email.html_body):
        bodies = [
            merge(email.html_body, _values_of(row, email.sender), as_html=True)
            for row in draft.rows
            if row.is_tracked
        ]
    destinations = list(dict.fromkeys(url for body in bodies for url in find_links(body)))
    rows = [
        TrackedLink(email=email, url=url, position=position)
        for position, url in enumerate(destinations)
    ]
    # The honeypot leads somewhere harmless of ours: only a machine ever follows it.
    rows.append(
        TrackedLink(
            email=email,
            url=f"{settings.TRACKING_BASE_URL}/",
            position=len(destinations),
            is_honeypot=True,
        )
    )
    return rows


def _resolve(
    to: Sequence[Recipient], cc: Sequence[Recipient], bcc: Sequence[Recipient], *, sender: User
) -> list[_Address]:
    """Each address once (To before Cc before Bcc), matched to its Contact, Lead or User."""
    kinds = (Relation.Type.TO, Relation.Type.CC, Relation.Type.BCC)
    seen: set[str] = set()
    result: list[_Address] = []
    plain: list[_Address] = []
    for kind, group in zip(kinds, (to, cc, bcc), strict=True):
        for recipient in group:
            item = _address_of(recipient, kind)
            key = item.address.lower()
            if not key or key in seen:
                continue
            seen.add(key)
            result.append(item)
            if isinstance(recipient, str):
                plain.append(item)
    _match_records(plain, sender=sender)
    return result


def _address_of(recipient: Recipient, kind: str) -> _Address:
    if isinstance(recipient, Contact):
        return _Address(recipient.email.strip(), recipient.name, kind, contact=recipient)
    if isinstance(recipient, Lead):
        return _Address(recipient.email.strip(), recipient.name, kind, lead=recipient)
    if isinstance(recipient, User):
        return _Address(recipient.email.strip(), recipient.get_full_name(), kind, user=recipient)
    return _Address(recipient.strip(), "", kind)


def _match_records(items: list[_Address], *, sender: User) -> None:
    """Link plain addresses to the Contact (else Lead) with that address that the sender may
    see (`visible_to`, the one access rule). A record the sender may not see is not linked and
    fills no merge field: the address is sent to as a plain one, under that record's privacy.
    Two queries in all."""
    if not items:
        return
    wanted = {item.address.lower() for item in items}
    contacts = _records_by_address(Contact, wanted, sender, "individual", "account")
    leads = _records_by_address(Lead, wanted, sender, "individual")
    for item in items:
        key = item.address.lower()
        visible = [r for r in (*contacts.get(key, ()), *leads.get(key, ())) if r.visible]
        chosen = visible[0] if visible else None
        item.contact = chosen if isinstance(chosen, Contact) else None
        item.lead = chosen if isinstance(chosen, Lead) else None
        # Privacy follows the first record with the address, seen or not (Contacts first).
        first = next(iter((*contacts.get(key, ()), *leads.get(key, ()))), None)
        item.hidden = first if chosen is None else None
        if chosen is not None and not item.name:
            item.name = chosen.name


def _records_by_address(
    model: type[Contact] | type[Lead], wanted: set[str], sender: User, *related: str
) -> dict[str, list[Any]]:
    """The records of `model` with one of the addresses, each annotated `visible` (the sender
    may see it), by lower-cased address, oldest first."""
    found: dict[str, list[Any]] = {}
    rows = (
        model.objects.annotate(
            address=Upper("email"),
            visible=Exists(model.objects.visible_to(sender).filter(pk=OuterRef("pk"))),
        )
        .filter(address__in=[address.upper() for address in wanted])
        .select_related(*related)
        .order_by("pk")
    )
    for record in rows:
        found.setdefault(record.email.lower(), []).append(record)
    return found


def _today() -> tuple[date, datetime]:
    """The site's day and its first instant (the user's page may show another zone: the limit
    is the org's)."""
    start = timezone.localtime(timezone=timezone.get_default_timezone()).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return start.date(), start


def _recorded_today(start: datetime, *, is_list: bool) -> int:
    """Recipients of the emails recorded since `start`, list or single email, as the daily limit
    counts them (not the sender, not those refused): a counter's starting value."""
    list_source = Q(email__source=EmailMessage.Source.LIST)
    return (
        Relation.objects.filter(list_source if is_list else ~list_source)
        .filter(email__created_at__gte=start, email__created_at__lt=start + timedelta(days=1))
        .exclude(relation_type=Relation.Type.FROM)
        .exclude(delivery_status=Relation.Delivery.REFUSED)
        .count()
    )


def _daily_count(*, is_list: bool) -> DailySendCount:
    """Today's counter of one kind, made from what is recorded today when there is none yet."""
    day, start = _today()
    found = DailySendCount.objects.filter(day=day, is_list=is_list).first()
    if found is not None:
        return found
    used = _recorded_today(start, is_list=is_list)
    count, _ = DailySendCount.objects.get_or_create(
        day=day, is_list=is_list, defaults={"used": used}
    )
    return count


def daily_list_email_left() -> int:
    """How many more list email recipients Setup's daily limit allows today."""
    used = _daily_count(is_list=True).used
    return max(0, OrgSettings.load().daily_list_email_limit - used)


def _check_daily_limit(org: OrgSettings, *, is_list: bool, adding: int) -> None:
    """Call inside the transaction that records the send: today's counter is locked, checked
    and added to, so concurrent sends of one kind count one after the other."""
    limit = org.daily_list_email_limit if is_list else org.daily_single_email_limit
    count = _daily_count(is_list=is_list)
    used = (
        DailySendCount.objects.select_for_update().values_list("used", flat=True).get(pk=count.pk)
    )
    if used + adding > limit:
        kind = "list" if is_list else "single"
        raise SendRefused(
            f"The daily {kind} email limit of {limit} recipients would be exceeded: "
            f"{used} already today, and this email has {adding}. It resets at midnight."
        )
    if adding:
        DailySendCount.objects.filter(pk=count.pk).update(used=F("used") + adding)


def _header_list(items: Iterable[_Address]) -> str:
    return ", ".join(header_address(item.name, item.address) for item in items)


def _tasks_logging(
    draft: _Draft,
    *,
    sender: User,
    related_to: Account | Opportunity | None,
    when: datetime,
) -> list[Task]:
    """Enhanced Email off: the send is logged as a completed Email task, as in Salesforce.

    A task per Contact or Lead it goes to, showing what that person got (merge fields filled),
    or one with no one named when it goes to plain addresses only; none when nobody may receive
    it. The task is the send's one activity record: the copies (kept for delivery, bounces and
    replies, marked Relation.LOGGED_AS_TASK) are left out of activity and the timeline.
    """
    email = draft.email
    sent = [
        row
        for row in draft.rows
        if row.relation_type != Relation.Type.FROM
        and row.delivery_status == Relation.Delivery.PENDING
    ]
    people = [row for row in sent if row.contact or row.lead] or sent[:1]
    tasks = []
    for row in people:
        values = _values_of(row, sender) if row.contact or row.lead else {}
        tasks.append(
            _task_logging(
                sender=sender,
                who=row.contact or row.lead,
                to=email.to_addresses,
                subject=merge(email.subject, values, as_html=False) if values else email.subject,
                text=merge(email.text_body, values, as_html=False) if values else email.text_body,
                related_to=related_to,
                when=when,
            )
        )
    return tasks


def _task_logging(
    *,
    sender: User,
    who: Contact | Lead | None,
    to: str,
    subject: str,
    text: str,
    related_to: Account | Opportunity | None,
    when: datetime,
) -> Task:
    """The completed Email task that logs what one person got."""
    return Task(
        subject=f"Email: {subject}"[:255],
        description=f"To: {to}\n\n{text}",
        status=Task.Status.COMPLETED,
        subtype=Task.Subtype.EMAIL,
        completed_at=when,
        due_date=timezone.localdate(),
        owner=sender,
        who_contact=who if isinstance(who, Contact) else None,
        who_lead=who if isinstance(who, Lead) else None,
        what_account=related_to if isinstance(related_to, Account) else None,
        what_opportunity=related_to if isinstance(related_to, Opportunity) else None,
    )
