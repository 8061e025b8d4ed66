"""Delivery: each recipient's own copy of an email, rendered and handed to the mail backend.

emails_deliver() (run by Celery's deliver_email, and by a list email's batch) claims each pending
recipient, renders their copy (merge fields, their own token in the pixel, the rewritten links,
List-Unsubscribe and the VERP return path) and sends it; the SMTP outcome sets the recipient's
and then the email's delivery status, and is logged (crm.email_events).
"""

from __future__ import annotations

import functools
import logging
import re
import smtplib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from crm.activity import activity_changed
from crm.email_events import email_events_record
from crm.models import EmailEvent, EmailMessage, EmailMessageRelation, TrackedLink
from crm.prepared import PreparedBatch, PreparedCopy
from crm.sending import merge_values
from crm.sql import ids_in, ids_of, rows_update
from crm.tokens import token_for, token_maker
from mailkit.merge import has_fields, header_address, merge, one_line
from mailkit.rewrite import rewrite_html, rewrite_text
from mailkit.tokens import Purpose, to_verp

logger = logging.getLogger(__name__)

Relation = EmailMessageRelation
_RECIPIENT_TYPES = (Relation.Type.TO, Relation.Type.CC, Relation.Type.BCC)


# The reason a copy left Sending by a worker that stopped mid-send carries: it may or may not
# have reached the mail server, so it is never sent again (that could send it twice).
UNCONFIRMED = "Unconfirmed: the worker stopped while sending it; it may or may not have gone out"


class DeliveryDeferred(Exception):
    """The mail server could not be reached; the recipients still pending are tried again."""


def pixel_url(relation_id: int) -> str:
    return f"{settings.TRACKING_BASE_URL}/t/o/{token_for(relation_id, Purpose.TRACK)}.gif"


def click_url(relation_id: int, link_id: int) -> str:
    return f"{settings.TRACKING_BASE_URL}/t/c/{token_for(relation_id, Purpose.TRACK, link_id)}"


def email_deliver(*, email_id: int) -> None:
    """Send each pending recipient their own copy (see emails_deliver)."""
    emails_deliver(email_ids=[email_id])


# A batch delivered together (`claim_together`) is claimed, sent and recorded this many copies
# at a time: a worker killed mid-batch leaves at most one group Sending (those may or may not
# have gone out) and the groups after it Pending, for the run that resumes the batch. Smaller
# groups leave fewer copies unconfirmed, and cost a transaction of five statements each: a list
# email's batch (200 then) took 5% longer in groups of 50 than in one, 14% in groups of 25.
CLAIM_GROUP = 50


def emails_deliver(
    *,
    email_ids: Sequence[int],
    claim_together: bool = False,
    prepared: PreparedBatch | None = None,
) -> None:
    """Send each pending recipient of these emails their own copy over one connection; a
    recipient is claimed before it is sent. A list email's batch delivers its members' emails
    together, with one connection and one metrics refresh rather than one per person.

    Claiming with a conditional UPDATE means two workers running the same task never send a
    copy twice; a copy whose worker died mid-send stays Sending rather than going out again.
    By default each copy is claimed just before it is sent and its outcome committed as soon as
    it has been, so a worker killed mid-email leaves at most the copy in hand Sending and those
    it had not reached Pending, for the task's retry. With `claim_together` (a
    batch that no other run can hold: a list email's or a sequence's, under their leases) the
    copies are claimed CLAIM_GROUP at a time in one UPDATE, and each group's outcomes are
    committed before the next group is claimed: a worker killed outright leaves at most one
    group Sending and the rest Pending. Those of a group not attempted when the loop stops (the
    server deferred, an error) go back to Pending, and later groups are never claimed.

    `prepared` is the batch emails_prepare_each wrote these emails from, committed and not yet
    delivered: its copies are rendered from it (the body read once, `Stencil`) instead of
    being read back, and each copy's outcome is set on it too.
    """
    copies: list[_Copy]
    if prepared is not None:
        signing = _Signing.now()
        wanted = set(email_ids)
        copies = [
            _Copy(
                copy.relation_id,
                copy.email_id,
                functools.partial(_render_prepared, prepared, copy, signing),
            )
            for copy in prepared.pending
            if copy.email_id in wanted
        ]
    else:
        copies = _pending_copies(email_ids)
    deferred = ""
    if copies:
        connection = get_connection()
        try:
            connection.open()
        except OSError as error:
            reason = f"The mail server could not be reached: {error}"
            email_events_record(
                kind=EmailEvent.Kind.DEFERRED,
                relation_ids=[copy.relation_id for copy in copies],
                detail=reason,
            )
            raise DeliveryDeferred(reason) from error
        reached = _Reached()
        try:
            if claim_together:
                deferred = _groups_deliver(copies, connection, prepared=prepared, reached=reached)
            else:
                for copy in copies:  # each a group of its own, recorded once it is sent
                    held = _claim_all([copy.relation_id])
                    if not held:  # another run has it
                        continue
                    deferred, _ = _group_deliver(
                        [copy], connection, held=held, prepared=prepared, reached=reached
                    )
                    if deferred:
                        break
        finally:
            connection.close()
            activity_changed(contact_ids=reached.contacts, lead_ids=reached.leads)
    if prepared is not None:
        return _deferred_or_done(deferred)
    _finish(list(dict.fromkeys(email_ids)))
    delivered = Relation.objects.filter(
        email_id__in=email_ids,
        delivery_status=Relation.Delivery.SENT,
        relation_type__in=_RECIPIENT_TYPES,
    )
    activity_changed(
        contact_ids=ids_of(delivered.filter(contact__isnull=False), "contact_id"),
        lead_ids=ids_of(delivered.filter(lead__isnull=False), "lead_id"),
    )
    return _deferred_or_done(deferred)


@dataclass(slots=True)
class _Reached:
    """The people a prepared batch's copies reached, for one metrics refresh after it."""

    contacts: set[int] = field(default_factory=set)
    leads: set[int] = field(default_factory=set)


def _groups_deliver(
    copies: Sequence[_Copy],
    connection: BaseEmailBackend,
    *,
    prepared: PreparedBatch | None,
    reached: _Reached,
) -> str:
    """Copies claimed together, CLAIM_GROUP at a time: the first group's claim is one
    statement, each later group's is made in the transaction that records the group before
    it (one commit per group). Returns the reason the server deferred, if it did."""
    groups = [copies[i : i + CLAIM_GROUP] for i in range(0, len(copies), CLAIM_GROUP)]
    held = _claim_all([copy.relation_id for copy in groups[0]])
    for index, group in enumerate(groups):
        following = groups[index + 1] if index + 1 < len(groups) else []
        deferred, held = _group_deliver(
            group,
            connection,
            held=held,
            following=following,
            prepared=prepared,
            reached=reached,
        )
        if deferred:
            return deferred
    return ""


def _group_deliver(
    group: Sequence[_Copy],
    connection: BaseEmailBackend,
    *,
    held: set[int],
    following: Sequence[_Copy] = (),
    prepared: PreparedBatch | None,
    reached: _Reached,
) -> tuple[str, set[int]]:
    """Send the copies of a group this run `held` (claimed); returns the reason the server
    deferred, if it did, and the `following` copies now held.

    The outcomes are stored and logged together after the loop, in one transaction (one
    commit to wait for): a worker that dies before it leaves the group's sent copies Sending,
    so they are never sent twice. The same transaction puts the held copies not attempted
    back to Pending and, when the group went through (no deferral, no error), claims the
    following group.
    """
    attempted: list[tuple[int, str, str, datetime | None]] = []
    outcomes: dict[tuple[str, str], list[int]] = {}
    deferred = ""
    through = False
    try:
        for copy in group:
            if copy.relation_id not in held:
                continue
            try:
                message = copy.render()
                message.connection = connection
                status, reason = _send_one(message)
            except ValueError as error:  # UnicodeError too
                # This copy's own data cannot make a message (a line break in its address, a
                # header that will not encode): it fails alone, and the batch goes on.
                logger.warning("Copy %d could not be built: %s", copy.relation_id, error)
                status = Relation.Delivery.FAILED
                reason = f"This copy could not be built: {error}"[:255]
            sent_at = timezone.now() if status == Relation.Delivery.SENT else None
            attempted.append((copy.relation_id, status, reason, sent_at))
            outcomes.setdefault((_DELIVERY_EVENT[status], reason), []).append(copy.relation_id)
            if status == Relation.Delivery.PENDING:
                deferred = reason
                break
        through = not deferred
    finally:
        with transaction.atomic():
            rows_update(Relation, ["delivery_status", "refusal_reason", "sent_at"], attempted)
            if held:
                _release(held - {relation_id for relation_id, *_ in attempted})
            for (kind, reason), relation_ids in outcomes.items():
                email_events_record(kind=kind, relation_ids=relation_ids, detail=reason)
            if prepared is not None:
                _finish_prepared(prepared, {row[0]: row[1:] for row in attempted}, reached)
            claimed = _claim_all([copy.relation_id for copy in following]) if through else set()
    return deferred, claimed


def _deferred_or_done(deferred: str) -> None:
    if deferred:
        raise DeliveryDeferred(deferred)


@dataclass(frozen=True, slots=True)
class _Copy:
    """A pending recipient's copy to claim, render and send."""

    relation_id: int
    email_id: int
    render: Callable[[], EmailMultiAlternatives]


def _pending_copies(email_ids: Sequence[int]) -> list[_Copy]:
    """The pending copies of these emails read from the database (four queries), each with
    what it takes to render it."""
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

    def render(relation: Relation) -> EmailMultiAlternatives:
        email = emails[relation.email_id]
        return _render_copy(
            email,
            relation,
            links=links[email.pk],
            honeypot=honeypots.get(email.pk),
            thread_headers=threading.get(relation.pk),
        )

    return [
        _Copy(relation.pk, relation.email_id, functools.partial(render, relation))
        for relation in pending
    ]


def _finish_prepared(
    batch: PreparedBatch,
    outcomes: dict[int, tuple[str, str, datetime | None]],
    reached: _Reached,
) -> None:
    """What _finish does, from the outcomes in hand: each of these emails has one recipient,
    whose copy this run held, so its outcome is the email's. Written with the copies'
    outcomes, in their transaction; the people reached are added to `reached`."""
    by_outcome: dict[tuple[str, str, bool], list[int]] = {}
    for copy in batch.pending:
        if copy.relation_id not in outcomes:
            continue
        status, reason, _ = outcomes[copy.relation_id]
        copy.delivery_status = status
        if status == Relation.Delivery.SENT:
            by_outcome.setdefault((EmailMessage.Delivery.SENT, "", True), []).append(copy.email_id)
            if copy.contact_id:
                reached.contacts.add(copy.contact_id)
            if copy.lead_id:
                reached.leads.add(copy.lead_id)
        elif status == Relation.Delivery.FAILED:
            by_outcome.setdefault(
                (EmailMessage.Delivery.FAILED, f"{copy.address}: {reason}", False), []
            ).append(copy.email_id)
    _emails_update(by_outcome)


def _claim_all(relation_ids: Sequence[int]) -> set[int]:
    """Claim these pending copies in one UPDATE; the ids of those this run now holds."""
    if not relation_ids:
        return set()
    inside, params = ids_in("id", "ids", relation_ids)
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


def copies_unconfirm(*, email_ids: Collection[int] | QuerySet[Any]) -> int:
    """Mark these emails' copies still Sending as unconfirmed, when the worker that claimed
    them is known to have stopped; returns how many. Their emails then have a delivery status
    (`_finish`: Unconfirmed, or Partly sent beside a sent copy) instead of staying Queued. A
    worker still sending one writes its outcome, and its email's, over the mark (outcomes are
    written whatever the reason was)."""
    left = list(
        Relation.objects.filter(
            email_id__in=email_ids,
            relation_type__in=_RECIPIENT_TYPES,
            delivery_status=Relation.Delivery.SENDING,
        )
        .exclude(refusal_reason=UNCONFIRMED)
        .values_list("pk", "email_id")
    )
    if not left:
        return 0
    marked = Relation.objects.filter(
        pk__in=[pk for pk, _ in left], delivery_status=Relation.Delivery.SENDING
    ).update(refusal_reason=UNCONFIRMED)
    _finish(sorted({email_id for _, email_id in left}))
    return marked


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
    UPDATE per outcome (a list email's batch has hundreds of emails and a few outcomes).

    A copy marked unconfirmed (left Sending by a stopped worker) is final here: the email is
    Unconfirmed when none of its copies was sent, Partly sent beside one that was, and the
    reason names each such copy as it names a failed one."""
    unsure = Q(delivery_status=Relation.Delivery.SENDING, refusal_reason=UNCONFIRMED)
    counts = {
        row["email_id"]: row
        for row in Relation.objects.filter(email_id__in=email_ids)
        .exclude(relation_type=Relation.Type.FROM)
        .order_by()
        .values("email_id")
        .annotate(
            pending=Count("pk", filter=Q(delivery_status__in=["pending", "sending"]) & ~unsure),
            sent=Count("pk", filter=Q(delivery_status=Relation.Delivery.SENT)),
            failed=Count("pk", filter=Q(delivery_status=Relation.Delivery.FAILED)),
            unconfirmed=Count("pk", filter=unsure),
        )
    }
    failures: dict[int, list[str]] = {}
    for email_id, address, reason in Relation.objects.filter(
        Q(delivery_status=Relation.Delivery.FAILED) | unsure, email_id__in=email_ids
    ).values_list("email_id", "address", "refusal_reason"):
        failures.setdefault(email_id, []).append(f"{address}: {reason}")
    outcomes: dict[tuple[str, str, bool], list[int]] = {}
    for email_id in email_ids:
        row = counts.get(email_id, {"pending": 0, "sent": 0, "failed": 0, "unconfirmed": 0})
        if row["pending"]:
            continue
        delivery: str
        if row["sent"] and (row["failed"] or row["unconfirmed"]):
            delivery = EmailMessage.Delivery.PARTIAL
        elif row["sent"]:
            delivery = EmailMessage.Delivery.SENT
        elif row["unconfirmed"]:
            delivery = EmailMessage.Delivery.UNCONFIRMED
        else:
            delivery = EmailMessage.Delivery.FAILED
        reason = "; ".join(failures.get(email_id, []))
        outcomes.setdefault((delivery, reason, bool(row["sent"])), []).append(email_id)
    _emails_update(outcomes)


def _emails_update(outcomes: dict[tuple[str, str, bool], list[int]]) -> None:
    """Set the emails' delivery status and reason, one UPDATE per (status, reason, any copy
    sent); a sent one also gets its date (kept if it had one) and the status Sent, unless a
    reply already came back on a copy sent before a retried one."""
    now = timezone.now()
    for (delivery, reason, sent), ids in outcomes.items():
        inside, params = ids_in("id", "ids", ids)
        sent_sql = (
            ", message_date = COALESCE(message_date, %(now)s), status = CASE "
            "WHEN status = %(replied)s THEN %(replied)s ELSE %(sent)s END"
            if sent
            else ""
        )
        with db_connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crm_emailmessage SET delivery_status = %(delivery)s, "  # noqa: S608 -- constants only
                f"failure_reason = %(reason)s{sent_sql} WHERE {inside}",
                {
                    **params,
                    "delivery": delivery,
                    "reason": reason,
                    "now": db_connection.ops.adapt_datetimefield_value(now),
                    "replied": EmailMessage.Status.REPLIED,
                    "sent": EmailMessage.Status.SENT,
                },
            )


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
        url_for = _urls_for(relation.pk, links)
        html = rewrite_html(
            html,
            url_for=url_for,
            pixel_url=pixel_url(relation.pk),
            honeypot_url=click_url(relation.pk, honeypot) if honeypot else None,
        )
        text = rewrite_text(text, url_for=url_for)
    sender = email.sender
    from_name = email.from_name or (sender.get_full_name() if sender else "")
    return _message(
        address=relation.address,
        message_id=relation.message_id,
        content=(subject, html, text),
        from_header=header_address(from_name, email.from_address),
        to_header=email.to_addresses,
        cc_header=email.cc_addresses,
        return_token=token_for(relation.pk, Purpose.RETURN),
        list_headers=(
            list_unsubscribe_headers(
                token_for(relation.pk, Purpose.UNSUBSCRIBE), from_address=email.from_address
            )
            if email.source == EmailMessage.Source.LIST
            else None
        ),
        thread_headers=thread_headers,
    )


@dataclass(frozen=True, slots=True)
class _Signing:
    """What every copy of a batch signs its tokens and URLs with, looked up once."""

    track: Callable[[int, int], str]
    unsubscribe: Callable[[int, int], str]
    returned: Callable[[int, int], str]
    unsubscribe_path: tuple[str, str]  # the page's path around the token

    @classmethod
    def now(cls) -> _Signing:
        before, _, after = reverse("unsubscribe", args=["TOKEN"]).partition("TOKEN")
        return cls(
            token_maker(Purpose.TRACK),
            token_maker(Purpose.UNSUBSCRIBE),
            token_maker(Purpose.RETURN),
            (before, after),
        )


def _render_prepared(
    batch: PreparedBatch, copy: PreparedCopy, signing: _Signing
) -> EmailMultiAlternatives:
    """A copy of a prepared batch, as _render_copy makes it from the rows read back: its
    subject and text filled again (as copy_content does), its HTML filled from the body read
    once when the values hold nothing that looks like a merge field (a second fill changes
    nothing then), else made as copy_content and rewrite_html make it."""
    values = copy.values
    subject = merge(copy.subject, values, as_html=False)
    text = merge(copy.text, values, as_html=False)
    stencil = batch.stencil
    if stencil is not None and any(has_fields(value) for value in values.values()):
        stencil = None
    relation_id = copy.relation_id
    base = settings.TRACKING_BASE_URL
    url_for = _urls_for(relation_id, copy.links, signing.track) if copy.is_tracked else None
    pixel = f"{base}/t/o/{signing.track(relation_id, 0)}.gif"
    honeypot = f"{base}/t/c/{signing.track(relation_id, copy.honeypot)}" if copy.honeypot else None
    if stencil is not None:
        html = stencil.fill(values, url_for=url_for, pixel_url=pixel, honeypot_url=honeypot)
    else:
        html = merge(copy.html, values, as_html=True)
        if url_for is not None:
            html = rewrite_html(html, url_for=url_for, pixel_url=pixel, honeypot_url=honeypot)
    if url_for is not None:
        text = rewrite_text(text, url_for=url_for)
    list_headers = None
    if batch.source == EmailMessage.Source.LIST:
        before, after = signing.unsubscribe_path
        token = signing.unsubscribe(relation_id, 0)
        list_headers = list_unsubscribe_headers(
            token, from_address=batch.sender.email, url=f"{base}{before}{token}{after}"
        )
    return _message(
        address=copy.address,
        message_id=copy.message_id,
        content=(subject, html, text),
        from_header=batch.from_header,
        to_header=copy.to_header,
        cc_header="",
        return_token=signing.returned(relation_id, 0),
        list_headers=list_headers,
        thread_headers=None,
    )


def _urls_for(
    relation_id: int, links: dict[str, int], track: Callable[[int, int], str] | None = None
) -> Callable[[str], str | None]:
    """A copy's click URL for each destination with a TrackedLink (each signed once)."""
    made: dict[str, str | None] = {}

    def url_for(destination: str) -> str | None:
        if destination not in made:
            link_id = links.get(destination)
            if not link_id:
                made[destination] = None
            elif track is None:
                made[destination] = click_url(relation_id, link_id)
            else:
                made[destination] = (
                    f"{settings.TRACKING_BASE_URL}/t/c/{track(relation_id, link_id)}"
                )
        return made[destination]

    return url_for


def _message(
    *,
    address: str,
    message_id: str,
    content: tuple[str, str, str],
    from_header: str,
    to_header: str,
    cc_header: str,
    return_token: str,
    list_headers: dict[str, str] | None,
    thread_headers: dict[str, str] | None,
) -> EmailMultiAlternatives:
    """The MIME message of one copy: its headers, tokens and both parts.

    The return token names this copy in what comes back (bounces, complaints, ESP events); it
    cannot unsubscribe, and the unsubscribe token (in `list_headers`) cannot record an open.
    """
    subject, html, text = content
    token = return_token
    headers = {
        "Message-ID": f"<{message_id}>",
        "From": from_header,
        "To": to_header,
        # Bounces and complaints quote the original's headers: this names the recipient.
        "X-Openrate-Token": token,
    }
    if cc_header:
        headers["Cc"] = cc_header
    headers |= thread_headers or {}
    headers |= list_headers or {}
    message = EmailMultiAlternatives(
        subject=one_line(subject),
        body=text,
        # The envelope sender: a VERP address names this recipient even in a vague bounce.
        from_email=verp_address(token) or from_header,
        to=[address],
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


def list_unsubscribe_headers(
    token: str, *, from_address: str, url: str | None = None
) -> dict[str, str]:
    """List-Unsubscribe (HTTPS and mailto) and List-Unsubscribe-Post, as RFC 2369 / 8058 ask.

    The mailto goes to the VERP domain when there is one (it names the recipient), else to the
    sender with the token in the subject, so a person reading it knows whom to unsubscribe.
    `url` is the unsubscribe page's, when the caller made it already (a batch reverses it once).
    """
    domain = settings.INBOUND_VERP_DOMAIN
    if domain:
        mailto = f"mailto:unsubscribe+{to_verp(token)}@{domain}?subject=unsubscribe"
    else:
        mailto = f"mailto:{from_address}?subject=unsubscribe%20{token}"
    return {
        "List-Unsubscribe": f"<{url or unsubscribe_url(token)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def verp_address(token: str) -> str:
    """bounces+<token>@<INBOUND_VERP_DOMAIN>, or "" when no VERP domain is configured."""
    domain = settings.INBOUND_VERP_DOMAIN
    return f"bounces+{to_verp(token)}@{domain}" if domain else ""
