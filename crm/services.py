"""The send pipeline: every email Openrate sends (single, list, automated) goes through here.

email_send() checks Setup and each recipient's privacy, records the EmailMessage with one
relation row per address and the links to track, and queues delivery. email_deliver() (run by
Celery) renders one MIME message per recipient, with that recipient's own tracking token, and
hands each to the mail backend.

Instrumenting uses tracking's pure modules (tokens, rewrite); crm never imports tracking's models
or services, so the apps' dependency still flows one way at the level of data.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.utils import make_msgid
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone

from crm import rollups, sql
from crm.merge import merge
from crm.models import (
    Account,
    Contact,
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    EmailSuppression,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
    PrivacyChange,
    Task,
    TrackedLink,
    User,
)
from privacy.models import Individual
from privacy.policy import EmailPolicy, email_policy
from tracking.rewrite import find_links, html_to_text, rewrite_html, rewrite_text
from tracking.tokens import make_token, signing_keys, to_verp

if TYPE_CHECKING:
    from campaigns.models import Campaign

logger = logging.getLogger(__name__)

Recipient = Contact | Lead | User | str
Relation = EmailMessageRelation
_RECIPIENT_TYPES = (Relation.Type.TO, Relation.Type.CC, Relation.Type.BCC)


class SendRefused(Exception):
    """The whole send is refused (Setup or a limit); the message says why, for the user."""


class DeliveryDeferred(Exception):
    """The mail server could not be reached; the recipients still pending are tried again."""


@dataclass
class _Address:
    address: str
    name: str
    kind: str  # EmailMessageRelation.Type
    contact: Contact | None = None
    lead: Lead | None = None
    user: User | None = None

    @property
    def person(self) -> Contact | Lead | None:
        return self.contact or self.lead


@lru_cache(maxsize=1)
def _signing_key() -> bytes:
    return signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)[0]


def pixel_url(relation_id: int) -> str:
    return f"{settings.TRACKING_BASE_URL}/t/o/{make_token(relation_id, key=_signing_key())}.gif"


def click_url(relation_id: int, link_id: int) -> str:
    token = make_token(relation_id, link_id, key=_signing_key())
    return f"{settings.TRACKING_BASE_URL}/t/c/{token}"


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
    campaign: Campaign | None = None,
) -> EmailMessage:
    """Record an email and queue its delivery: one tracked (where allowed) copy per recipient."""
    org = _sending_allowed()
    addresses = _resolve(to, cc, bcc)
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
        )
        (email,) = _record(org, [draft], sender=sender, related_to=related_to)
        if not is_list:
            # A rep writing to a bounced address has fixed it (the composer warned them).
            for address in suppressed:
                suppression_lift(address=address)
        if allowed:
            from crm.tasks import deliver_email  # the task module imports this one

            deliver_email.delay_on_commit(email.pk)  # type: ignore[attr-defined]
    return email


def emails_send_each(
    *,
    sender: User,
    people: Sequence[Contact | Lead],
    subject: str,
    html_body: str,
    source: str = EmailMessage.Source.LIST,
    campaign: Campaign | None = None,
) -> list[EmailMessage]:
    """One email per person, each as email_send makes it with that person alone in To (the same
    Setup checks, privacy policy and suppressions, merge fields filled), written in bulk: the
    daily limit is checked once for them all. The caller delivers them (emails_deliver): a list
    email's batch, which paces itself."""
    org = _sending_allowed()
    addresses = [_address_of(person, Relation.Type.TO) for person in people]
    if any(not item.address for item in addresses):
        raise SendRefused("Each person needs an email address.")
    is_list = source == EmailMessage.Source.LIST
    with transaction.atomic():
        decisions, _ = _decide(org, addresses, is_list=is_list)
        _check_daily_limit(
            org, is_list=is_list, adding=sum(decision.may_send for decision in decisions)
        )
        drafts = [
            _draft(
                org,
                [item],
                [decision],
                sender=sender,
                subject=subject,
                html_body=html_body,
                source=source,
                related_to=None,
                campaign=campaign,
            )
            for item, decision in zip(addresses, decisions, strict=True)
        ]
        return _record(org, drafts, sender=sender, related_to=None)


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
            item.person.individual if item.person else None,
            has_opted_out_of_email=bool(item.person and item.person.has_opted_out_of_email),
            is_list_email=is_list,
            enforce_privacy=org.enforce_email_privacy,
        )
        for item in addresses
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
    campaign: Campaign | None,
) -> _Draft:
    tracking_on = org.enhanced_email and org.email_tracking_enabled
    domain = sender.email.rpartition("@")[2] or "openrate.localhost"
    if len(addresses) == 1:
        # One recipient: keep the email as they read it, merge fields filled.
        only = addresses[0]
        values = _merge_values(only.person, only.name, only.address, sender)
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
        campaign=campaign,
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
    for item, decision in zip(addresses, decisions, strict=True):
        rows.append(
            Relation(
                email=email,
                relation_type=item.kind,
                address=item.address,
                name=item.name,
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
        [link for email in emails if email.is_tracked for link in _links_of(email)]
    )
    if not org.enhanced_email:
        now = timezone.now()
        for draft in drafts:
            _log_as_task(
                draft.email, draft.addresses, sender=sender, related_to=related_to, when=now
            )
    return emails


def email_deliver(*, email_id: int) -> None:
    """Send each pending recipient their own copy (see emails_deliver)."""
    emails_deliver(email_ids=[email_id])


def emails_deliver(*, email_ids: Sequence[int]) -> None:
    """Send each pending recipient of these emails their own copy over one connection; a
    recipient is claimed before it is sent. A list email's batch delivers its members' emails
    together, with one connection and one metrics refresh rather than one per person.

    Claiming with a conditional UPDATE means two workers running the same task never send a
    copy twice; a copy whose worker died mid-send stays Sending rather than going out again.
    """
    emails = {
        email.pk: email
        for email in EmailMessage.objects.select_related("sender").filter(pk__in=email_ids)
    }
    pending = list(
        Relation.objects.filter(email_id__in=emails, delivery_status=Relation.Delivery.PENDING)
        .select_related("contact__account", "lead")
        .order_by("email_id", "pk")
    )
    links: dict[int, dict[str, int]] = {pk: {} for pk in emails}
    honeypots: dict[int, int] = {}
    for link_id, link_email, url, is_honeypot in TrackedLink.objects.filter(
        email_id__in=emails
    ).values_list("pk", "email_id", "url", "is_honeypot"):
        if is_honeypot:
            honeypots[link_email] = link_id
        else:
            links[link_email][url] = link_id
    deferred = ""
    # Outcomes are stored and logged together after the loop: a few statements, not per copy.
    attempted: list[Relation] = []
    outcomes: dict[tuple[str, str], list[int]] = {}
    if pending:
        connection = get_connection()
        try:
            connection.open()
        except OSError as error:
            reason = f"The mail server could not be reached: {error}"
            email_events_record(
                kind=EmailEvent.Kind.DEFERRED,
                relation_ids=[relation.pk for relation in pending],
                detail=reason,
            )
            raise DeliveryDeferred(reason) from error
        try:
            for relation in pending:
                claimed = Relation.objects.filter(
                    pk=relation.pk, delivery_status=Relation.Delivery.PENDING
                ).update(delivery_status=Relation.Delivery.SENDING)
                if not claimed:
                    continue
                email = emails[relation.email_id]
                message = _render_copy(
                    email,
                    relation,
                    links=links[email.pk],
                    honeypot=honeypots.get(email.pk),
                )
                message.connection = connection
                status, reason = _send_one(message)
                relation.delivery_status, relation.refusal_reason = status, reason
                relation.sent_at = timezone.now() if status == Relation.Delivery.SENT else None
                attempted.append(relation)
                outcomes.setdefault((_DELIVERY_EVENT[status], reason), []).append(relation.pk)
                if status == Relation.Delivery.PENDING:
                    deferred = reason
                    break
        finally:
            connection.close()
            # Written together, as the outcomes are logged: a worker that dies before this
            # leaves its sent copies Sending, so they are never sent twice.
            Relation.objects.bulk_update(
                attempted, ["delivery_status", "refusal_reason", "sent_at"], batch_size=500
            )
            for (kind, reason), relation_ids in outcomes.items():
                email_events_record(kind=kind, relation_ids=relation_ids, detail=reason)
    _finish(list(emails))
    delivered = Relation.objects.filter(
        email_id__in=emails,
        delivery_status=Relation.Delivery.SENT,
        relation_type__in=_RECIPIENT_TYPES,
    )
    _activity_changed(
        contact_ids=_ids_of(delivered.filter(contact__isnull=False), "contact_id"),
        lead_ids=_ids_of(delivered.filter(lead__isnull=False), "lead_id"),
    )
    if deferred:
        raise DeliveryDeferred(deferred)


@transaction.atomic
def email_delivery_give_up(*, email_id: int, reason: str) -> None:
    """After the last retry: the copies still pending failed, with the reason."""
    pending = Relation.objects.filter(email_id=email_id, delivery_status=Relation.Delivery.PENDING)
    failed = list(pending.select_for_update().values_list("pk", flat=True))
    Relation.objects.filter(pk__in=failed).update(
        delivery_status=Relation.Delivery.FAILED, refusal_reason=reason[:255]
    )
    email_events_record(kind=EmailEvent.Kind.FAILED, relation_ids=failed, detail=reason)
    _finish([email_id])


def _finish(email_ids: Collection[int]) -> None:
    """Set each email's delivery status from its recipients': two aggregate queries, then one
    UPDATE per outcome (a list email's batch has hundreds of emails and a few outcomes)."""
    counts = {
        row["email_id"]: row
        for row in Relation.objects.filter(email_id__in=email_ids)
        .exclude(relation_type=Relation.Type.FROM)
        .order_by()
        .values("email_id")
        .annotate(
            pending=Count("pk", filter=Q(delivery_status__in=["pending", "sending"])),
            sent=Count("pk", filter=Q(delivery_status=Relation.Delivery.SENT)),
            failed=Count("pk", filter=Q(delivery_status=Relation.Delivery.FAILED)),
        )
    }
    failures: dict[int, list[str]] = {}
    for email_id, address, reason in Relation.objects.filter(
        email_id__in=email_ids, delivery_status=Relation.Delivery.FAILED
    ).values_list("email_id", "address", "refusal_reason"):
        failures.setdefault(email_id, []).append(f"{address}: {reason}")
    outcomes: dict[tuple[str, str, bool], list[int]] = {}
    for email_id in email_ids:
        row = counts.get(email_id, {"pending": 0, "sent": 0, "failed": 0})
        if row["pending"]:
            continue
        delivery: str
        if row["sent"] and row["failed"]:
            delivery = EmailMessage.Delivery.PARTIAL
        elif row["sent"]:
            delivery = EmailMessage.Delivery.SENT
        else:
            delivery = EmailMessage.Delivery.FAILED
        reason = "; ".join(failures.get(email_id, []))
        outcomes.setdefault((delivery, reason, bool(row["sent"])), []).append(email_id)
    now = timezone.now()
    for (delivery, reason, sent), ids in outcomes.items():
        emails = EmailMessage.objects.filter(pk__in=ids)
        if sent:
            emails.filter(message_date__isnull=True).update(message_date=now)
            emails.update(
                delivery_status=delivery, failure_reason=reason, status=EmailMessage.Status.SENT
            )
        else:
            emails.update(delivery_status=delivery, failure_reason=reason)


_DELIVERY_EVENT: dict[str, str] = {
    Relation.Delivery.SENT: EmailEvent.Kind.SENT,
    Relation.Delivery.FAILED: EmailEvent.Kind.FAILED,
    Relation.Delivery.PENDING: EmailEvent.Kind.DEFERRED,
}


def _send_one(message: EmailMultiAlternatives) -> tuple[str, str]:
    """Hand one copy to the backend: (new delivery status, reason)."""
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        code, text = next(iter(error.recipients.values()))
        return _smtp_outcome(code, text)
    except smtplib.SMTPResponseException as error:
        return _smtp_outcome(error.smtp_code, error.smtp_error)
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        return Relation.Delivery.PENDING, f"The mail server went away: {error}"
    return Relation.Delivery.SENT, ""


def _smtp_outcome(code: int, text: bytes | str) -> tuple[str, str]:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    reason = f"{code} {detail}".strip()[:255]
    # 4xx is the server's "try again later"; 5xx is final.
    if 400 <= code < 500:
        return Relation.Delivery.PENDING, reason
    return Relation.Delivery.FAILED, reason


def _render_copy(
    email: EmailMessage, relation: Relation, *, links: dict[str, int], honeypot: int | None
) -> EmailMultiAlternatives:
    values = _merge_values(
        relation.contact or relation.lead, relation.name, relation.address, email.sender
    )
    html = merge(email.html_body, values, as_html=True)
    text = merge(email.text_body, values, as_html=False)
    if relation.is_tracked:

        def url_for(destination: str) -> str | None:
            link_id = links.get(destination)
            return click_url(relation.pk, link_id) if link_id else None

        html = rewrite_html(
            html,
            url_for=url_for,
            pixel_url=pixel_url(relation.pk),
            honeypot_url=click_url(relation.pk, honeypot) if honeypot else None,
        )
        text = rewrite_text(text, url_for=url_for)
    sender = email.sender
    from_name = email.from_name or (sender.get_full_name() if sender else "")
    from_header = str(Address(display_name=from_name, addr_spec=email.from_address))
    token = make_token(relation.pk, key=_signing_key())
    headers = {
        "Message-ID": f"<{relation.message_id}>",
        "From": from_header,
        "To": email.to_addresses,
        # Bounces and complaints quote the original's headers: this names the recipient.
        "X-Openrate-Token": token,
    }
    if email.cc_addresses:
        headers["Cc"] = email.cc_addresses
    if email.source == EmailMessage.Source.LIST:
        headers |= list_unsubscribe_headers(token, from_address=email.from_address)
    message = EmailMultiAlternatives(
        subject=merge(email.subject, values, as_html=False),
        body=text,
        # The envelope sender: a VERP address names this recipient even in a vague bounce.
        from_email=verp_address(token) or from_header,
        to=[relation.address],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    # ESP backends (django-anymail) echo metadata back in their webhooks.
    message.metadata = {"openrate_token": token}  # type: ignore[attr-defined]
    return message


def unsubscribe_url(token: str) -> str:
    """The recipient's one-click unsubscribe page (RFC 8058), signed by their own token."""
    return f"{settings.TRACKING_BASE_URL}{reverse('unsubscribe', args=[token])}"


def list_unsubscribe_headers(token: str, *, from_address: str) -> dict[str, str]:
    """List-Unsubscribe (HTTPS and mailto) and List-Unsubscribe-Post, as RFC 2369 / 8058 ask.

    The mailto goes to the VERP domain when there is one (it names the recipient), else to the
    sender with the token in the subject, so a person reading it knows whom to unsubscribe.
    """
    domain = settings.INBOUND_VERP_DOMAIN
    if domain:
        mailto = f"mailto:unsubscribe+{to_verp(token)}@{domain}?subject=unsubscribe"
    else:
        mailto = f"mailto:{from_address}?subject=unsubscribe%20{token}"
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(token)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_record(*, relation: Relation) -> bool:
    """The recipient of this copy unsubscribed: Email Opt Out, shown on their timeline.

    Returns whether anything changed: a second click changes nothing, and a copy whose Contact
    or Lead has since been deleted has no one left to opt out.
    """
    person = relation.contact or relation.lead
    if person is None:
        return False
    with transaction.atomic():
        changes = privacy_update(
            person=person, by=None, source="one-click unsubscribe", email_opt_out=True
        )
        if changes:  # the email log and the dashboards count an unsubscribe once
            email_events_record(
                kind=EmailEvent.Kind.UNSUBSCRIBED,
                relation_ids=[relation.pk],
                detail="one-click unsubscribe",
            )
    return bool(changes)


def verp_address(token: str) -> str:
    """bounces+<token>@<INBOUND_VERP_DOMAIN>, or "" when no VERP domain is configured."""
    domain = settings.INBOUND_VERP_DOMAIN
    return f"bounces+{to_verp(token)}@{domain}" if domain else ""


def _merge_values(
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


def _untracked_reason(org: OrgSettings, decision: EmailPolicy) -> str:
    if not decision.may_send:
        return ""
    if not org.enhanced_email:
        return "Enhanced Email is off"
    if not org.email_tracking_enabled:
        return "Email tracking is off"
    return "" if decision.may_track else decision.reason


def _links_of(email: EmailMessage) -> list[TrackedLink]:
    """One TrackedLink per distinct destination, and the hidden honeypot link.

    The destinations are the HTML's trackable links; the text part, generated from the HTML,
    has the same ones (a link the HTML marks data-notrack stays untracked in the text too).
    """
    destinations = list(dict.fromkeys(find_links(email.html_body)))
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


def _resolve(*groups: Sequence[Recipient]) -> list[_Address]:
    """Each address once (To before Cc before Bcc), matched to its Contact, Lead or User."""
    kinds = (Relation.Type.TO, Relation.Type.CC, Relation.Type.BCC)
    seen: set[str] = set()
    result: list[_Address] = []
    plain: list[_Address] = []
    for kind, group in zip(kinds, groups, strict=True):
        for recipient in group:
            item = _address_of(recipient, kind)
            key = item.address.lower()
            if not key or key in seen:
                continue
            seen.add(key)
            result.append(item)
            if isinstance(recipient, str):
                plain.append(item)
    _match_records(plain)
    return result


def _address_of(recipient: Recipient, kind: str) -> _Address:
    if isinstance(recipient, Contact):
        return _Address(recipient.email.strip(), recipient.name, kind, contact=recipient)
    if isinstance(recipient, Lead):
        return _Address(recipient.email.strip(), recipient.name, kind, lead=recipient)
    if isinstance(recipient, User):
        return _Address(recipient.email.strip(), recipient.get_full_name(), kind, user=recipient)
    return _Address(recipient.strip(), "", kind)


def _match_records(items: list[_Address]) -> None:
    """Link plain addresses to the Contact (else Lead) with that address: two queries in all."""
    if not items:
        return
    wanted = {item.address.lower() for item in items}
    contacts: dict[str, Contact] = {}
    for contact in (
        Contact.objects.annotate(address=Upper("email"))
        .filter(address__in=[address.upper() for address in wanted])
        .select_related("individual", "account")
        .order_by("pk")
    ):
        contacts.setdefault(contact.email.lower(), contact)
    leads: dict[str, Lead] = {}
    rest = wanted - contacts.keys()
    if rest:
        for lead in (
            Lead.objects.annotate(address=Upper("email"))
            .filter(address__in=[address.upper() for address in rest])
            .select_related("individual")
            .order_by("pk")
        ):
            leads.setdefault(lead.email.lower(), lead)
    for item in items:
        key = item.address.lower()
        item.contact = contacts.get(key)
        item.lead = None if item.contact else leads.get(key)
        person = item.person
        if person is not None and not item.name:
            item.name = person.name


def _daily_used(*, is_list: bool) -> int:
    """Recipients sent to (or queued) today, list or single email: what the daily limit counts."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    list_source = Q(email__source=EmailMessage.Source.LIST)
    return (
        Relation.objects.filter(list_source if is_list else ~list_source)
        .filter(email__created_at__gte=start, email__created_at__lt=start + timedelta(days=1))
        .exclude(relation_type=Relation.Type.FROM)
        .exclude(delivery_status=Relation.Delivery.REFUSED)
        .count()
    )


def daily_list_email_left() -> int:
    """How many more list email recipients Setup's daily limit allows today."""
    return max(0, OrgSettings.load().daily_list_email_limit - _daily_used(is_list=True))


# PostgreSQL advisory lock keys (arbitrary constants) for the daily limits' count-then-insert.
_DAILY_LIMIT_LOCKS = {False: 720_401, True: 720_402}


def _check_daily_limit(org: OrgSettings, *, is_list: bool, adding: int) -> None:
    """Call inside the transaction that records the send: on PostgreSQL, concurrent sends of
    one kind then count one after the other, each seeing the rows the one before inserted."""
    limit = org.daily_list_email_limit if is_list else org.daily_single_email_limit
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DAILY_LIMIT_LOCKS[is_list]])
    used = _daily_used(is_list=is_list)
    if used + adding > limit:
        kind = "list" if is_list else "single"
        raise SendRefused(
            f"The daily {kind} email limit of {limit} recipients would be exceeded: "
            f"{used} already today, and this email has {adding}. It resets at midnight."
        )


def _header_list(items: Iterable[_Address]) -> str:
    return ", ".join(
        str(Address(display_name=item.name, addr_spec=item.address)) if item.name else item.address
        for item in items
    )


def _log_as_task(
    email: EmailMessage,
    addresses: Sequence[_Address],
    *,
    sender: User,
    related_to: Account | Opportunity | None,
    when: datetime,
) -> None:
    """Enhanced Email off: the send is logged as a completed Email task, as in Salesforce."""
    person = next((a.person for a in addresses if a.person is not None), None)
    Task.objects.create(
        subject=f"Email: {email.subject}"[:255],
        description=f"To: {email.to_addresses}\n\n{email.text_body}",
        status=Task.Status.COMPLETED,
        subtype=Task.Subtype.EMAIL,
        completed_at=when,
        due_date=timezone.localdate(),
        owner=sender,
        who_contact=person if isinstance(person, Contact) else None,
        who_lead=person if isinstance(person, Lead) else None,
        what_account=related_to if isinstance(related_to, Account) else None,
        what_opportunity=related_to if isinstance(related_to, Opportunity) else None,
    )


# The Individual's flags a record page shows and edits, in the order people read them.
PRIVACY_FLAGS = (
    "has_opted_out_tracking",
    "has_opted_out_processing",
    "has_opted_out_solicit",
    "should_forget",
)


@transaction.atomic
def privacy_update(
    *,
    person: Contact | Lead,
    by: User | None,
    source: str,
    email_opt_out: bool | None = None,
    flags: Mapping[str, bool] | None = None,
) -> list[PrivacyChange]:
    """Change a person's Email Opt Out and Individual flags; each change is kept for the timeline.

    An Individual is created for the person when a flag is first set.
    """
    owner: dict[str, Contact | Lead] = (
        {"contact": person} if isinstance(person, Contact) else {"lead": person}
    )
    changes: list[PrivacyChange] = []
    if email_opt_out is not None and email_opt_out != person.has_opted_out_of_email:
        person.has_opted_out_of_email = email_opt_out
        person.save(update_fields=["has_opted_out_of_email", "updated_at"])
        changes.append(
            PrivacyChange(
                **owner,
                field="has_opted_out_of_email",
                label="Email Opt Out",
                value=email_opt_out,
                source=source,
                changed_by=by,
            )
        )
    individual = person.individual
    wanted = {
        name: value
        for name, value in (flags or {}).items()
        if name in PRIVACY_FLAGS and value != bool(individual and getattr(individual, name))
    }
    if wanted:
        if individual is None:
            individual = Individual.objects.create(
                first_name=person.first_name, last_name=person.last_name
            )
            person.individual = individual
            person.save(update_fields=["individual", "updated_at"])
        for name, value in wanted.items():
            setattr(individual, name, value)
            changes.append(
                PrivacyChange(
                    **owner,
                    field=name,
                    label=Individual.flag_label(name),
                    value=value,
                    source=source,
                    changed_by=by,
                )
            )
        individual.save(update_fields=[*wanted, "updated_at"])
    return PrivacyChange.objects.bulk_create(changes)


def call_log(
    *, owner: User, record: Contact | Lead | Account | Opportunity, subject: str, comments: str
) -> Task:
    """Log a call that happened: a completed Task of type Call on the record."""
    now = timezone.now()
    task = Task.objects.create(
        owner=owner,
        subject=subject or "Call",
        description=comments,
        subtype=Task.Subtype.CALL,
        status=Task.Status.COMPLETED,
        completed_at=now,
        due_date=timezone.localdate(now),
        who_contact=record if isinstance(record, Contact) else None,
        who_lead=record if isinstance(record, Lead) else None,
        what_account=record if isinstance(record, Account) else None,
        what_opportunity=record if isinstance(record, Opportunity) else None,
    )
    _activity_changed(
        contact_ids=[record.pk] if isinstance(record, Contact) else [],
        lead_ids=[record.pk] if isinstance(record, Lead) else [],
        account_ids=[record.pk] if isinstance(record, Account) else [],
        opportunity_ids=[record.pk] if isinstance(record, Opportunity) else [],
    )
    return task


def _people_with(address: str) -> tuple[QuerySet[Contact], QuerySet[Lead]]:
    upper = address.strip().upper()
    return (
        Contact.objects.annotate(address=Upper("email")).filter(address=upper),
        Lead.objects.annotate(address=Upper("email")).filter(address=upper),
    )


def address_suppress(*, address: str, reason: str, detail: str, when: datetime) -> None:
    """No more list email to this address; its Contacts and Leads show the bounce alert."""
    detail = detail[:255]
    EmailSuppression.objects.update_or_create(
        address=address.strip().lower(),
        defaults={"reason": reason, "detail": detail, "created_at": when},
    )
    for people in _people_with(address):
        people.update(email_bounced_at=when, email_bounced_reason=detail)


def suppression_lift(*, address: str) -> None:
    """The rep has fixed the address (they send to it again, or change it): clear the alert."""
    EmailSuppression.objects.filter(address=address.strip().lower()).delete()
    for people in _people_with(address):
        people.filter(email_bounced_at__isnull=False).update(
            email_bounced_at=None, email_bounced_reason=""
        )


def bounce_record(
    *, relation: Relation, hard: bool, status: str, diagnostic: str, when: datetime
) -> bool:
    """A recipient's copy bounced; returns whether the address is now suppressed.

    A hard bounce suppresses at once; soft ones when Setup's limit is reached in its window.
    """
    Relation.objects.filter(pk=relation.pk).update(
        bounce_category=Relation.Bounce.HARD if hard else Relation.Bounce.SOFT,
        bounce_status=status[:16],
        bounce_diagnostic=diagnostic,
        bounced_at=when,
        delivery_status=Relation.Delivery.BOUNCED,
    )
    EmailMessage.objects.filter(pk=relation.email_id).update(is_bounced=True)
    code = f" {status}" if status else ""
    email_events_record(
        kind=EmailEvent.Kind.BOUNCED,
        relation_ids=[relation.pk],
        when=when,
        detail=f"{status} {diagnostic}".strip(),
        hard_bounce=hard,
    )
    if hard:
        address_suppress(
            address=relation.address,
            reason=EmailSuppression.Reason.HARD_BOUNCE,
            detail=f"Hard bounce{code}: {diagnostic}",
            when=when,
        )
        return True
    org = OrgSettings.load()
    window = timedelta(days=org.soft_bounce_window_days)
    soft = Relation.objects.filter(
        address__iexact=relation.address,
        bounce_category=Relation.Bounce.SOFT,
        bounced_at__gt=when - window,
        bounced_at__lte=when,
    ).count()
    if soft < org.soft_bounce_limit:
        return False
    address_suppress(
        address=relation.address,
        reason=EmailSuppression.Reason.SOFT_BOUNCES,
        detail=f"{soft} soft bounces in {org.soft_bounce_window_days} days (last{code}: "
        f"{diagnostic})",
        when=when,
    )
    return True


def complaint_record(*, relation: Relation | None, address: str, feedback_type: str) -> None:
    """A spam complaint: Email Opt Out for the person, and the address is suppressed."""
    source = f"spam complaint ({feedback_type or 'abuse'})"
    person = (relation.contact or relation.lead) if relation else None
    people = [person] if person else [*(p for q in _people_with(address) for p in q)]
    for someone in people:
        privacy_update(person=someone, by=None, source=source, email_opt_out=True)
    if relation is not None:
        email_events_record(
            kind=EmailEvent.Kind.COMPLAINED, relation_ids=[relation.pk], detail=source
        )
    address_suppress(
        address=address,
        reason=EmailSuppression.Reason.COMPLAINT,
        detail=f"Marked as spam ({feedback_type or 'abuse'})",
        when=timezone.now(),
    )


def reply_record(
    *,
    original: Relation,
    from_address: str,
    subject: str,
    html_body: str,
    text_body: str,
    message_id: str,
    received_at: datetime,
    is_auto_reply: bool,
) -> EmailMessage:
    """A person answered: an incoming email threaded to the original, on their timeline.

    A real reply also marks their copy replied and gives the sender a task to answer it; an
    automatic one (out of office) is recorded as such and never counts as a reply.
    """
    sent = original.email
    person = original.contact or original.lead
    incoming = EmailMessage.objects.create(
        subject=subject,
        html_body=html_body,
        text_body=text_body or html_to_text(html_body),
        from_address=from_address or original.address,
        from_name=person.name if person else original.name,
        to_addresses=sent.from_address,
        status=EmailMessage.Status.RECEIVED,
        incoming=True,
        is_auto_reply=is_auto_reply,
        message_identifier=message_id,
        thread_identifier=sent.thread_identifier,
        reply_to_message=sent,
        related_account=sent.related_account,
        related_opportunity=sent.related_opportunity,
        message_date=received_at,
        delivery_status="",
    )
    Relation.objects.bulk_create(
        [
            Relation(
                email=incoming,
                relation_type=Relation.Type.FROM,
                address=from_address or original.address,
                name=person.name if person else original.name,
                contact=original.contact,
                lead=original.lead,
                delivery_status=Relation.Delivery.SENT,
            ),
            Relation(
                email=incoming,
                relation_type=Relation.Type.TO,
                address=sent.from_address,
                user=sent.sender,
                delivery_status=Relation.Delivery.SENT,
            ),
        ]
    )
    _activity_changed(
        contact_ids=[original.contact_id] if original.contact_id else [],
        lead_ids=[original.lead_id] if original.lead_id else [],
    )
    if not is_auto_reply:
        first_reply = Relation.objects.filter(pk=original.pk, replied_at__isnull=True).update(
            replied_at=received_at
        )
        if first_reply:
            # Replied recipients, not reply messages: a second reply is not a new one.
            email_events_record(
                kind=EmailEvent.Kind.REPLIED,
                relation_ids=[original.pk],
                when=received_at,
                detail=subject,
            )
        if sent.sender is not None:
            who = person.name if person else original.address
            Task.objects.create(
                owner=sent.sender,
                subject=f"{who} replied: {subject}"[:255],
                description=incoming.text_body[:2000],
                subtype=Task.Subtype.EMAIL,
                priority=Task.Priority.HIGH,
                due_date=timezone.localdate(),
                who_contact=original.contact,
                who_lead=original.lead,
            )
    return incoming


# The email log and the daily rollups, for delivery events (opens and clicks: tracking.rollups).

_ROLLUP_COLUMN = {
    EmailEvent.Kind.QUEUED: "queued",
    EmailEvent.Kind.SENT: "sent",
    EmailEvent.Kind.DEFERRED: "deferred",
    EmailEvent.Kind.DELIVERED: "delivered",
    EmailEvent.Kind.FAILED: "failed",
    EmailEvent.Kind.COMPLAINED: "complained",
    EmailEvent.Kind.UNSUBSCRIBED: "unsubscribed",
    EmailEvent.Kind.REPLIED: "replied",
}


def email_events_record(
    *,
    kind: str,
    relation_ids: Collection[int],
    when: datetime | None = None,
    detail: str = "",
    hard_bounce: bool = False,
) -> None:
    """Log one delivery event for each recipient copy, and add them to the daily rollup.

    Two statements whatever the number of recipients. A bounce counts as hard or soft by
    `hard_bounce`. Call it in the transaction that makes the change it records, once per change:
    the rollup adds, it does not recount.
    """
    if not relation_ids:
        return
    when = when or timezone.now()
    bounce = ""
    if kind == EmailEvent.Kind.BOUNCED:
        bounce = Relation.Bounce.HARD if hard_bounce else Relation.Bounce.SOFT
    EmailEvent.objects.bulk_create(
        EmailEvent(relation_id=pk, kind=kind, occurred_at=when, detail=detail[:255], bounce=bounce)
        for pk in relation_ids
    )
    column = f"bounced_{bounce}" if bounce else _ROLLUP_COLUMN[EmailEvent.Kind(kind)]
    scope, params = sql.ids_in("r.id", "ids", relation_ids)
    rollups.execute(
        rollups.upsert(
            rollups.EMAIL_STATS,
            rollups.EMAIL_KEY,
            [column],
            f"""SELECT %(day)s, COALESCE(m.sender_id, 0), COALESCE(m.campaign_id, 0), COUNT(*)
            FROM crm_emailmessagerelation AS r JOIN crm_emailmessage AS m ON m.id = r.email_id
            WHERE {scope} GROUP BY 1, 2, 3""",  # noqa: S608 -- constants and placeholders only
        ),
        {**params, "day": timezone.localdate(when)},
    )


# Activity metrics, follow-ups and engagement alerts.
#
# The metrics are computed by a few set-based statements per record type (one INSERT ... SELECT
# ... ON CONFLICT DO UPDATE each, over every record or a chunk of ids), never a loop per record.
# They read tracking's events by table name: crm must not import tracking's models.

# Every statement below names at most this many ids (SQLite allows 32,766 parameters).
METRICS_CHUNK = 5_000
# An arbitrary constant: PostgreSQL's advisory lock key serialising metric recomputes, so the
# nightly full run and the incremental ones never upsert the same rows in different orders.
METRICS_LOCK = 720_302
METRICS_WINDOW = timedelta(days=30)
ALERT_WINDOW = timedelta(hours=24)

_METRIC_COLUMNS = (
    "first_email_at",
    "last_email_sent_at",
    "last_email_received_at",
    "last_activity_at",
    "emails_sent_30d",
    "emails_received_30d",
    "human_opens_30d",
    "human_clicks_30d",
    "activities_30d",
    "inactive_days",
    "computed_at",
)


@dataclass(frozen=True)
class _MetricKind:
    """Where one record type's metrics come from."""

    column: str  # its column on crm_activitymetric
    table: str
    task_column: str  # the Task column naming it
    # Rollups only: SQL listing (record_id, contact_id), the contacts whose metrics it adds up.
    people: str = ""


_CONTACT = _MetricKind("contact_id", "crm_contact", "who_contact_id")
_LEAD = _MetricKind("lead_id", "crm_lead", "who_lead_id")
_ACCOUNT = _MetricKind(
    "account_id",
    "crm_account",
    "what_account_id",
    people="SELECT account_id AS record_id, id AS contact_id FROM crm_contact "
    "WHERE account_id IS NOT NULL",
)
_OPPORTUNITY = _MetricKind(
    "opportunity_id",
    "crm_opportunity",
    "what_opportunity_id",
    people="SELECT opportunity_id AS record_id, contact_id FROM crm_opportunitycontactrole",
)


def activity_metrics_recompute(
    *,
    contact_ids: Collection[int] | None = None,
    lead_ids: Collection[int] | None = None,
    account_ids: Collection[int] | None = None,
    opportunity_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> None:
    """Recompute ActivityMetric rows: every record's when no ids are given, else just those.

    The accounts and opportunities of the given contacts are recomputed with them (they roll up
    their contacts), after them.
    """
    now = now or timezone.now()
    full = all(ids is None for ids in (contact_ids, lead_ids, account_ids, opportunity_ids))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK])
        if full:
            for kind in (_CONTACT, _LEAD, _ACCOUNT, _OPPORTUNITY):
                _metrics_upsert(kind, None, now)
            return
        contacts = set(contact_ids or ())
        accounts = set(account_ids or ())
        opportunities = set(opportunity_ids or ())
        if contacts:
            accounts |= _ids_of(
                Contact.objects.filter(pk__in=contacts, account__isnull=False), "account_id"
            )
            opportunities |= _ids_of(
                OpportunityContactRole.objects.filter(contact__in=contacts), "opportunity_id"
            )
        for kind, ids in (
            (_CONTACT, contacts),
            (_LEAD, set(lead_ids or ())),
            (_ACCOUNT, accounts),
            (_OPPORTUNITY, opportunities),
        ):
            for chunk in sql.chunks(ids, METRICS_CHUNK):
                _metrics_upsert(kind, chunk, now)


def counters_recount_enqueue() -> None:
    """Queue the recount of every email's opens and clicks (tracking's task, named, as crm does
    not import tracking's services), once the change that calls for it commits."""
    transaction.on_commit(lambda: current_app.send_task("tracking.tasks.recount_counters"))


def activity_refresh_enqueue(*, relation_ids: Collection[int]) -> None:
    """After ingestion stored opens or clicks on these recipients' copies: once the batch is
    committed, recompute their people's metrics and raise any engagement alert (a Celery task).
    """
    if relation_ids:
        from crm.tasks import refresh_activity  # the task module imports this one

        refresh_activity.delay_on_commit(sorted(relation_ids))  # type: ignore[attr-defined]


def activity_refresh(*, relation_ids: Collection[int], now: datetime | None = None) -> None:
    """Recompute the metrics of the people on these relations and check their engagement."""
    people = EmailMessageRelation.objects.filter(pk__in=relation_ids)
    contact_ids = _ids_of(people.filter(contact__isnull=False), "contact_id")
    lead_ids = _ids_of(people.filter(lead__isnull=False), "lead_id")
    if not (contact_ids or lead_ids):
        return
    activity_metrics_recompute(contact_ids=contact_ids, lead_ids=lead_ids, now=now)
    engagement_alerts_create(contact_ids=contact_ids, lead_ids=lead_ids, now=now)


def _activity_changed(
    *,
    contact_ids: Collection[int] = (),
    lead_ids: Collection[int] = (),
    account_ids: Collection[int] = (),
    opportunity_ids: Collection[int] = (),
) -> None:
    """Recompute these records' metrics in the background, once the change is committed."""
    if not (contact_ids or lead_ids or account_ids or opportunity_ids):
        return
    from crm.tasks import recompute_activity_metrics  # the task module imports this one

    recompute_activity_metrics.delay_on_commit(  # type: ignore[attr-defined]
        contact_ids=sorted(contact_ids),
        lead_ids=sorted(lead_ids),
        account_ids=sorted(account_ids),
        opportunity_ids=sorted(opportunity_ids),
    )


def _ids_of(queryset: QuerySet, field: str) -> set[int]:
    return set(queryset.values_list(field, flat=True).distinct())


def _metrics_upsert(kind: _MetricKind, ids: list[int] | None, now: datetime) -> None:
    """Compute the figures of `ids` of `kind` (all when None) and upsert their rows.

    The figures go through a temporary table first: PostgreSQL plans no parallel workers for
    the SELECT inside an INSERT, but does for CREATE TABLE AS, which halves a full recompute.
    """
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {"now": adapt(now), "since": adapt(now - METRICS_WINDOW)}
    if ids is not None:
        params |= {f"id{index}": pk for index, pk in enumerate(ids)}
    scope = ", ".join(f"%(id{index})s" for index in range(len(ids or ())))

    def only(column: str) -> str:
        return f"AND {column} IN ({scope})" if ids is not None else ""

    facts = _rollup_facts(kind, only) if kind.people else _person_facts(kind, only)
    columns = ", ".join(_METRIC_COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _METRIC_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS activity_facts")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE activity_facts AS
            {facts}
            SELECT record_id, first_email_at, last_email_sent_at, last_email_received_at,
                last_activity_at, emails_sent_30d, emails_received_30d, human_opens_30d,
                human_clicks_30d, activities_30d,
                {_whole_days_since("COALESCE(last_activity_at, created_at)")} AS inactive_days,
                %(now)s AS computed_at
            FROM facts
            """,  # noqa: S608 -- only constants and placeholders are interpolated
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO crm_activitymetric ({kind.column}, {columns})
            SELECT record_id, {columns} FROM activity_facts
            WHERE TRUE
            ON CONFLICT ({kind.column}) DO UPDATE SET {updates}
            """  # noqa: S608 -- only constants are interpolated
        )
        cursor.execute("DROP TABLE activity_facts")


def _person_facts(kind: _MetricKind, only: Callable[[str], str]) -> str:
    """The CTEs computing a Contact's or Lead's figures from its emails, events and tasks.

    An email to the person is a To/Cc/Bcc copy of an outgoing email that was sent (a bounced
    copy was sent too); an email from them is the From of an incoming one, auto-replies
    included: they are not replies, but the person's mailbox did answer.
    """
    person = f"r.{kind.column}"
    when = "COALESCE(r.sent_at, e.message_date, e.created_at)"
    return f"""
        WITH emails AS (
            SELECT {person} AS record_id,
                MIN({when}) AS first_email_at,
                MAX({when}) FILTER (WHERE NOT e.incoming) AS last_sent_at,
                MAX({when}) FILTER (WHERE e.incoming) AS last_received_at,
                COUNT(*) FILTER (WHERE NOT e.incoming AND {when} >= %(since)s) AS sent_30d,
                COUNT(*) FILTER (WHERE e.incoming AND {when} >= %(since)s) AS received_30d
            FROM crm_emailmessagerelation AS r
            JOIN crm_emailmessage AS e ON e.id = r.email_id
            WHERE {person} IS NOT NULL {only(person)}
                AND ((NOT e.incoming AND r.relation_type IN ('to', 'cc', 'bcc')
                        AND r.delivery_status IN ('sent', 'bounced'))
                    OR (e.incoming AND r.relation_type = 'from'))
            GROUP BY {person}
        ),
        events AS (
            SELECT {person} AS record_id,
                MAX(t.occurred_at) AS last_engaged_at,
                COUNT(*) FILTER (WHERE t.kind = 'open' AND t.occurred_at >= %(since)s)
                    AS opens_30d,
                COUNT(*) FILTER (WHERE t.kind = 'click' AND t.occurred_at >= %(since)s)
                    AS clicks_30d
            FROM tracking_trackingevent AS t
            JOIN crm_emailmessagerelation AS r ON r.id = t.relation_id
            WHERE t.label = 'human' AND {person} IS NOT NULL {only(person)}
            GROUP BY {person}
        ),
        {_task_facts(kind, only)},
        facts AS (
            SELECT x.id AS record_id, x.created_at,
                m.first_email_at,
                m.last_sent_at AS last_email_sent_at,
                m.last_received_at AS last_email_received_at,
                {
        _greatest("m.last_sent_at", "m.last_received_at", "v.last_engaged_at", "k.last_task_at")
    } AS last_activity_at,
                COALESCE(m.sent_30d, 0) AS emails_sent_30d,
                COALESCE(m.received_30d, 0) AS emails_received_30d,
                COALESCE(v.opens_30d, 0) AS human_opens_30d,
                COALESCE(v.clicks_30d, 0) AS human_clicks_30d,
                COALESCE(m.sent_30d, 0) + COALESCE(m.received_30d, 0) + COALESCE(v.opens_30d, 0)
                    + COALESCE(v.clicks_30d, 0) + COALESCE(k.tasks_30d, 0) AS activities_30d
            FROM {kind.table} AS x
            LEFT JOIN emails AS m ON m.record_id = x.id
            LEFT JOIN events AS v ON v.record_id = x.id
            LEFT JOIN tasks AS k ON k.record_id = x.id
            WHERE TRUE {only("x.id")}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _rollup_facts(kind: _MetricKind, only: Callable[[str], str]) -> str:
    """The CTEs adding up an Account's or Opportunity's contacts' metrics and its own tasks."""
    return f"""
        WITH people AS (
            SELECT p.record_id,
                MIN(a.first_email_at) AS first_email_at,
                MAX(a.last_email_sent_at) AS last_email_sent_at,
                MAX(a.last_email_received_at) AS last_email_received_at,
                MAX(a.last_activity_at) AS last_activity_at,
                SUM(a.emails_sent_30d) AS emails_sent_30d,
                SUM(a.emails_received_30d) AS emails_received_30d,
                SUM(a.human_opens_30d) AS human_opens_30d,
                SUM(a.human_clicks_30d) AS human_clicks_30d,
                SUM(a.activities_30d) AS activities_30d
            FROM ({kind.people}) AS p
            JOIN crm_activitymetric AS a ON a.contact_id = p.contact_id
            WHERE TRUE {only("p.record_id")}
            GROUP BY p.record_id
        ),
        {_task_facts(kind, only)},
        facts AS (
            SELECT x.id AS record_id, x.created_at,
                m.first_email_at, m.last_email_sent_at, m.last_email_received_at,
                {_greatest("m.last_activity_at", "k.last_task_at")} AS last_activity_at,
                COALESCE(m.emails_sent_30d, 0) AS emails_sent_30d,
                COALESCE(m.emails_received_30d, 0) AS emails_received_30d,
                COALESCE(m.human_opens_30d, 0) AS human_opens_30d,
                COALESCE(m.human_clicks_30d, 0) AS human_clicks_30d,
                COALESCE(m.activities_30d, 0) + COALESCE(k.tasks_30d, 0) AS activities_30d
            FROM {kind.table} AS x
            LEFT JOIN people AS m ON m.record_id = x.id
            LEFT JOIN tasks AS k ON k.record_id = x.id
            WHERE TRUE {only("x.id")}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _task_facts(kind: _MetricKind, only: Callable[[str], str]) -> str:
    """A CTE `tasks`: the record's done tasks and calls (an open task is a plan, not activity)."""
    return f"""
        tasks AS (
            SELECT {kind.task_column} AS record_id,
                MAX(completed_at) AS last_task_at,
                COUNT(*) FILTER (WHERE completed_at >= %(since)s) AS tasks_30d
            FROM crm_task
            WHERE status = 'completed' AND completed_at IS NOT NULL
                AND {kind.task_column} IS NOT NULL {only(kind.task_column)}
            GROUP BY {kind.task_column}
        )
    """  # noqa: S608 -- only constants and placeholders are interpolated


def _greatest(*columns: str) -> str:
    """The latest of these times, ignoring NULLs (NULL when all are)."""
    if connection.vendor == "postgresql":
        return f"GREATEST({', '.join(columns)})"
    # SQLite's many-argument MAX() is NULL if any argument is; times are stored as ISO text, so
    # '' sorts below every one of them.
    return f"NULLIF(MAX({', '.join(f'COALESCE({c}, {chr(39) * 2})' for c in columns)}), '')"


def _whole_days_since(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (%(now)s - {column})) / 86400))::integer"
    return f"MAX(0, CAST(julianday(%(now)s) - julianday({column}) AS INTEGER))"


def _processing_allowed(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Leave out people under Don't Process or Forget: Openrate makes no work from their data."""
    return queryset.exclude(individual__has_opted_out_processing=True).exclude(
        individual__should_forget=True
    )


def follow_ups_create(*, now: datetime | None = None) -> int:
    """A follow-up Task for each Contact, Lead and open Opportunity quiet for Setup's days.

    Quiet means no activity (or, with none ever, no existence) for `no_activity_days`. The
    candidates are read from the stored metrics, which can only be older than the truth (they
    under-state activity), then recomputed, so a call logged since the last recompute counts.
    The insert relies on the one-open-follow-up-per-record unique indexes: however many runs
    race, a record gets one. Returns how many records were found due.
    """
    now = now or timezone.now()
    days = OrgSettings.load().no_activity_days
    cutoff = now - timedelta(days=days)
    quiet = Q(created_at__lte=cutoff) & (
        Q(activity__last_activity_at__isnull=True) | Q(activity__last_activity_at__lte=cutoff)
    )
    open_follow_up = Q(tasks__kind=Task.Kind.FOLLOW_UP) & ~Q(tasks__status=Task.Status.COMPLETED)
    people = {
        Contact: _processing_allowed(Contact.objects.filter(quiet)),
        Lead: _processing_allowed(Lead.objects.filter(quiet).exclude(status=Lead.Status.CONVERTED)),
        Opportunity: Opportunity.objects.open().filter(quiet),
    }
    candidates = {
        model: _ids_of(queryset.exclude(pk__in=queryset.filter(open_follow_up)), "pk")
        for model, queryset in people.items()
    }
    if not any(candidates.values()):
        return 0
    activity_metrics_recompute(
        contact_ids=candidates[Contact],
        lead_ids=candidates[Lead],
        account_ids=(),
        opportunity_ids=candidates[Opportunity],
        now=now,
    )
    today = timezone.localdate(now)
    tasks: list[Task] = []
    for model, queryset in people.items():
        names = ("name",) if model is Opportunity else ("first_name", "last_name")
        due = queryset.filter(pk__in=candidates[model]).values_list(
            "pk", "owner_id", "created_at", "activity__last_activity_at", *names
        )
        record_field = (
            "who_contact_id"
            if model is Contact
            else "who_lead_id"
            if model is Lead
            else "what_opportunity_id"
        )
        for pk, owner_id, created_at, last_activity_at, *name in due.iterator():
            quiet_since = last_activity_at or created_at
            if quiet_since > cutoff:
                continue  # the recompute found activity the stored metrics had not seen
            quiet_days = (now - quiet_since).days
            about = "on" if model is Opportunity else "with"
            tasks.append(
                Task(
                    owner_id=owner_id,
                    subject=f"No activity for {quiet_days} days: follow up {about} "
                    f"{' '.join(filter(None, name))}"[:255],
                    description=f"Nothing has happened on this record for {quiet_days} days "
                    f"(Setup asks for a follow-up after {days}).",
                    kind=Task.Kind.FOLLOW_UP,
                    due_date=today,
                    **{record_field: pk},
                )
            )
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def engagement_alerts_create(
    *,
    contact_ids: Collection[int] | None = None,
    lead_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> int:
    """A Task for the owner of each person with Setup's number of human opens and clicks
    within 24 hours: once per person per day (a unique index, not a check). Every person's
    when no ids are given, else just those; returns how many were due.
    """
    now = now or timezone.now()
    threshold = OrgSettings.load().engagement_alert_threshold
    full = contact_ids is None and lead_ids is None
    today = timezone.localdate(now)
    tasks: list[Task] = []
    for model, column, ids in (
        (Contact, "contact_id", contact_ids),
        (Lead, "lead_id", lead_ids),
    ):
        counts: dict[int, tuple[int, int]] = {}
        for chunk in [None] if full else sql.chunks(ids or (), METRICS_CHUNK):
            counts |= _engagement_counts(column, chunk, now=now, threshold=threshold)
        if not counts:
            continue
        people = _processing_allowed(model.objects.filter(pk__in=counts))
        if model is Lead:
            people = people.exclude(status=Lead.Status.CONVERTED)
        for person in people.only("pk", "owner_id", "first_name", "last_name"):
            opens, clicks = counts[person.pk]
            tasks.append(
                Task(
                    owner_id=person.owner_id,
                    subject=_alert_subject(person.name, opens, clicks)[:255],
                    description=f"{opens} human opens and {clicks} clicks in the 24 hours to "
                    f"{timezone.localtime(now):%Y-%m-%d %H:%M}: a good moment to get in touch.",
                    kind=Task.Kind.ENGAGEMENT_ALERT,
                    alert_date=today,
                    due_date=today,
                    priority=Task.Priority.HIGH,
                    who_contact=person if model is Contact else None,
                    who_lead=person if model is Lead else None,
                )
            )
    Task.objects.bulk_create(tasks, ignore_conflicts=True)
    return len(tasks)


def _engagement_counts(
    column: str, ids: list[int] | None, *, now: datetime, threshold: int
) -> dict[int, tuple[int, int]]:
    """(human opens, human clicks) in the last 24 hours of each person over the threshold."""
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "now": adapt(now),
        "since": adapt(now - ALERT_WINDOW),
        "threshold": threshold,
    }
    scope = ""
    if ids is not None:
        params |= {f"id{index}": pk for index, pk in enumerate(ids)}
        scope = f"AND r.{column} IN ({', '.join(f'%(id{i})s' for i in range(len(ids)))})"
    query = f"""
        SELECT r.{column},
            COUNT(*) FILTER (WHERE t.kind = 'open'),
            COUNT(*) FILTER (WHERE t.kind = 'click')
        FROM tracking_trackingevent AS t
        JOIN crm_emailmessagerelation AS r ON r.id = t.relation_id
        WHERE t.label = 'human' AND t.occurred_at > %(since)s AND t.occurred_at <= %(now)s
            AND r.{column} IS NOT NULL {scope}
        GROUP BY r.{column}
        HAVING COUNT(*) >= %(threshold)s
    """  # noqa: S608 -- only constants and placeholders are interpolated
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {pk: (opens, clicks) for pk, opens, clicks in cursor.fetchall()}


def _alert_subject(name: str, opens: int, clicks: int) -> str:
    def times(count: int) -> str:
        return "once" if count == 1 else f"{count} times"

    if not clicks:
        return f"{name} opened your email {times(opens)} today"
    if not opens:
        return f"{name} clicked a link in your email {times(clicks)} today"
    return f"{name} opened your email {times(opens)} and clicked {times(clicks)} today"
