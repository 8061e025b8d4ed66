"""Delivery: each recipient's own copy of an email, rendered and handed to the mail backend.

emails_deliver() (run by Celery's deliver_email, and by a list email's batch) claims each pending
recipient, renders their copy (merge fields, their own token in the pixel, the rewritten links,
List-Unsubscribe and the VERP return path) and sends it; the SMTP outcome sets the recipient's
and then the email's delivery status, and is logged (crm.email_events).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Collection, Sequence
from email.headerregistry import Address
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Case, Count, Q, Value, When
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from crm.activity import activity_changed
from crm.email_events import email_events_record
from crm.models import EmailEvent, EmailMessage, EmailMessageRelation, TrackedLink
from crm.sending import merge_values
from crm.sql import ids_in, ids_of, rows_update
from crm.tokens import token_for
from mailkit.merge import merge
from mailkit.rewrite import rewrite_html, rewrite_text
from mailkit.tokens import Purpose, to_verp

Relation = EmailMessageRelation
_RECIPIENT_TYPES = (Relation.Type.TO, Relation.Type.CC, Relation.Type.BCC)


class DeliveryDeferred(Exception):
    """The mail server could not be reached; the recipients still pending are tried again."""


def pixel_url(relation_id: int) -> str:
    return f"{settings.TRACKING_BASE_URL}/t/o/{token_for(relation_id, Purpose.TRACK)}.gif"


def click_url(relation_id: int, link_id: int) -> str:
    return f"{settings.TRACKING_BASE_URL}/t/c/{token_for(relation_id, Purpose.TRACK, link_id)}"


def email_deliver(*, email_id: int) -> None:
    """Send each pending recipient their own copy (see emails_deliver)."""
    emails_deliver(email_ids=[email_id])


def emails_deliver(*, email_ids: Sequence[int], claim_together: bool = False) -> None:
    """Send each pending recipient of these emails their own copy over one connection; a
    recipient is claimed before it is sent. A list email's batch delivers its members' emails
    together, with one connection and one metrics refresh rather than one per person.

    Claiming with a conditional UPDATE means two workers running the same task never send a
    copy twice; a copy whose worker died mid-send stays Sending rather than going out again.
    By default each copy is claimed just before it is sent, so a worker killed mid-email leaves
    the copies it had not reached Pending, for the task's retry. With `claim_together` (a
    batch that no other run can hold: a list email's or a sequence's, under their leases) all
    are claimed in one UPDATE; those not attempted when the loop stops (the server deferred,
    an error) go back to Pending, and only a worker killed outright leaves them Sending.
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
    threading = _thread_headers(emails, pending)
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
        held = _claim_all(pending) if claim_together else set()
        try:
            for relation in pending:
                if claim_together:
                    if relation.pk not in held:
                        continue
                elif not Relation.objects.filter(
                    pk=relation.pk, delivery_status=Relation.Delivery.PENDING
                ).update(delivery_status=Relation.Delivery.SENDING):
                    continue
                email = emails[relation.email_id]
                message = _render_copy(
                    email,
                    relation,
                    links=links[email.pk],
                    honeypot=honeypots.get(email.pk),
                    thread_headers=threading.get(relation.pk),
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
            rows_update(
                Relation,
                ["delivery_status", "refusal_reason", "sent_at"],
                [(r.pk, r.delivery_status, r.refusal_reason, r.sent_at) for r in attempted],
            )
            if claim_together:
                _release(held - {relation.pk for relation in attempted})
            for (kind, reason), relation_ids in outcomes.items():
                email_events_record(kind=kind, relation_ids=relation_ids, detail=reason)
    _finish(list(emails))
    delivered = Relation.objects.filter(
        email_id__in=emails,
        delivery_status=Relation.Delivery.SENT,
        relation_type__in=_RECIPIENT_TYPES,
    )
    activity_changed(
        contact_ids=ids_of(delivered.filter(contact__isnull=False), "contact_id"),
        lead_ids=ids_of(delivered.filter(lead__isnull=False), "lead_id"),
    )
    if deferred:
        raise DeliveryDeferred(deferred)


def _claim_all(pending: Sequence[Relation]) -> set[int]:
    """Claim these pending copies in one UPDATE; the ids of those this run now holds."""
    if not pending:
        return set()
    inside, params = ids_in("id", "ids", [relation.pk for relation in pending])
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE crm_emailmessagerelation SET delivery_status = %(sending)s "  # noqa: S608
            f"WHERE delivery_status = %(pending)s AND {inside} RETURNING id",
            {**params, "sending": Relation.Delivery.SENDING, "pending": Relation.Delivery.PENDING},
        )
        return {row[0] for row in cursor.fetchall()}


def _release(relation_ids: Collection[int]) -> None:
    """Copies claimed together but never handed over: Pending again, for the next try."""
    if relation_ids:
        Relation.objects.filter(
            pk__in=relation_ids, delivery_status=Relation.Delivery.SENDING
        ).update(delivery_status=Relation.Delivery.PENDING)


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
                delivery_status=delivery,
                failure_reason=reason,
                # A reply may already have come back on a copy sent before a retried one.
                status=Case(
                    When(
                        status=EmailMessage.Status.REPLIED,
                        then=Value(EmailMessage.Status.REPLIED),
                    ),
                    default=Value(EmailMessage.Status.SENT),
                ),
            )
        else:
            emails.update(delivery_status=delivery, failure_reason=reason)


_DELIVERY_EVENT: dict[str, str] = {
    Relation.Delivery.SENT: EmailEvent.Kind.SENT,
    Relation.Delivery.FAILED: EmailEvent.Kind.FAILED,
    Relation.Delivery.PENDING: EmailEvent.Kind.DEFERRED,
}


_MESSAGE_ID = re.compile(r"[^\s<>]{1,250}")


def _thread_headers(
    emails: dict[int, EmailMessage], pending: Sequence[Relation]
) -> dict[int, dict[str, str]]:
    """In-Reply-To and References for each pending copy of a reply, by relation id.

    Each names the Message-IDs this recipient's mail program holds: a received email's own, or
    for one we sent, the id of that recipient's copy (each copy has its own), else the email's.
    References gives the thread's first email and the one answered, which is what mail
    programs thread on. Two queries for the whole batch.
    """
    replies = [relation for relation in pending if emails[relation.email_id].reply_to_message_id]
    if not replies:
        return {}
    answered = {emails[r.email_id].reply_to_message_id for r in replies}
    threads = {emails[r.email_id].thread_identifier for r in replies} - {""}
    known = {
        row["pk"]: row
        for row in EmailMessage.objects.filter(
            Q(pk__in=answered) | Q(message_identifier__in=threads)
        ).values("pk", "incoming", "message_identifier")
    }
    roots = {row["message_identifier"]: row for row in sorted(known.values(), key=_pk_desc)}
    copies = {
        (email_id, address.lower()): message_id
        for email_id, address, message_id in Relation.objects.annotate(lower=Lower("address"))
        .filter(
            email_id__in=known,
            lower__in={r.address.lower() for r in replies},
            relation_type__in=_RECIPIENT_TYPES,
        )
        .exclude(message_id="")
        .values_list("email_id", "address", "message_id")
    }

    def id_held(row: dict[str, Any] | None, address: str) -> str:
        if row is None:
            return ""
        held = row["message_identifier"]
        if not row["incoming"]:
            held = copies.get((row["pk"], address.lower()), held)
        return held if _MESSAGE_ID.fullmatch(held) else ""

    result: dict[int, dict[str, str]] = {}
    for relation in replies:
        email = emails[relation.email_id]
        parent = id_held(known.get(email.reply_to_message_id or 0), relation.address)
        if not parent:
            continue
        root = id_held(roots.get(email.thread_identifier), relation.address)
        chain = dict.fromkeys(i for i in (root, parent) if i)
        result[relation.pk] = {
            "In-Reply-To": f"<{parent}>",
            "References": " ".join(f"<{i}>" for i in chain),
        }
    return result


def _pk_desc(row: dict[str, Any]) -> int:
    # Two emails with one Message-ID (a message received twice): the first one is the root.
    return -row["pk"]


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


def copy_content(email: EmailMessage, relation: Relation) -> tuple[str, str, str]:
    """One recipient's subject, HTML and text as they read them: merge fields filled, links
    not yet rewritten.

    An email to one person is stored filled; one to several keeps its merge fields, and each
    copy is made again from it with the values kept on its relation at send time
    (`merge_values`), so it reads exactly as sent even after the person's record changes.
    Copies sent before the values were kept are filled from the record as it is now.
    """
    values = relation.merge_values or merge_values(
        relation.contact or relation.lead, relation.name, relation.address, email.sender
    )
    return (
        merge(email.subject, values, as_html=False),
        merge(email.html_body, values, as_html=True),
        merge(email.text_body, values, as_html=False),
    )


def _render_copy(
    email: EmailMessage,
    relation: Relation,
    *,
    links: dict[str, int],
    honeypot: int | None,
    thread_headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    subject, html, text = copy_content(email, relation)
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
    # The return token names this copy in what comes back (bounces, complaints, ESP events);
    # it cannot unsubscribe, and the unsubscribe token cannot record an open.
    token = token_for(relation.pk, Purpose.RETURN)
    headers = {
        "Message-ID": f"<{relation.message_id}>",
        "From": from_header,
        "To": email.to_addresses,
        # Bounces and complaints quote the original's headers: this names the recipient.
        "X-Openrate-Token": token,
    }
    if email.cc_addresses:
        headers["Cc"] = email.cc_addresses
    headers |= thread_headers or {}
    if email.source == EmailMessage.Source.LIST:
        headers |= list_unsubscribe_headers(
            token_for(relation.pk, Purpose.UNSUBSCRIBE), from_address=email.from_address
        )
    message = EmailMultiAlternatives(
        subject=subject,
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
    """The recipient's one-click unsubscribe page (RFC 8058), signed by their own
    unsubscribe token."""
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


def verp_address(token: str) -> str:
    """bounces+<token>@<INBOUND_VERP_DOMAIN>, or "" when no VERP domain is configured."""
    domain = settings.INBOUND_VERP_DOMAIN
    return f"bounces+{to_verp(token)}@{domain}" if domain else ""
