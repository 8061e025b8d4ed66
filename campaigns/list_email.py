"""List email: a campaign's email to its members, sent by Celery in batches through crm's
sending and delivery, within Setup's daily limit and rate, with its progress for the page."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from campaigns.members import members_advance
from campaigns.models import (
    Campaign,
    CampaignMember,
    ListEmail,
    ListEmailRecipient,
)
from crm import jobs
from crm.delivery import UNCONFIRMED, DeliveryDeferred, copies_unconfirm, emails_deliver
from crm.models import (
    Contact,
    EmailMessage,
    EmailMessageRelation,
    EmailTemplate,
    Lead,
    OrgSettings,
    User,
)
from crm.prepared import PreparedBatch
from crm.sending import SendRefused, daily_list_email_left, emails_prepare_each
from crm.sql import rows_update
from mailkit.rewrite import link_bare_urls

Relation = EmailMessageRelation
Recipient = ListEmailRecipient

# Members prepared and handed to the mail backend per batch: small enough that the progress
# bar moves (a batch takes about two seconds) and a crash redoes little, large enough that a
# batch's fixed cost is small: measured with bench/listemail.py (10,000 members), batches of
# 1,000 took 17-18 s where batches of 200 took 23 s, and 2,000 no less than 1,000. Setup's
# per-minute rate and the day's limit make a batch smaller when they allow fewer.
BATCH_SIZE = 1000
# How long a batch may run before another run may take its list email over.
BATCH_LEASE = timedelta(minutes=10)
# Nothing left to claim but copies still Pending (a deferral's retries under way): beat looks
# at the list email again after this long, and completes it once none is left.
UNDELIVERED_RECHECK = timedelta(minutes=5)
SEND_LIST_EMAIL_BATCH = "campaigns.tasks.send_list_email_batch"


def list_email_create(
    *,
    campaign: Campaign,
    sender: User,
    subject: str,
    html_body: str,
    members: QuerySet[CampaignMember],
    template: EmailTemplate | None = None,
    send_at: datetime | None = None,
) -> ListEmail:
    """Queue a list email to these members; Celery sends it in batches. With `send_at` the
    first batch waits for that time (beat's resume finds it due then)."""
    # Bare URLs become links once, here, so the click map shows them as the copies have them.
    html_body = link_bare_urls(html_body)
    with transaction.atomic():
        list_email = ListEmail.objects.create(
            campaign=campaign,
            sender=sender,
            subject=subject,
            html_body=html_body,
            template=template,
            send_at=send_at,
            next_batch_at=send_at,
            status=ListEmail.Status.SCHEDULED if send_at else ListEmail.Status.QUEUED,
        )
        Recipient.objects.bulk_create(
            (
                Recipient(list_email=list_email, contact_id=contact_id, lead_id=lead_id)
                for contact_id, lead_id in members.order_by("pk").values_list(
                    "contact_id", "lead_id"
                )
            ),
            batch_size=1000,
        )
        if send_at is None:
            jobs.enqueue(SEND_LIST_EMAIL_BATCH, list_email.pk)
    return list_email


def _still_waiting(list_email: ListEmail) -> QuerySet[ListEmail]:
    """The list email, if it is scheduled and its first batch has not taken its lease (which
    moves next_batch_at off send_at): only then may it be changed or cancelled. The batch's
    lease and these conditional UPDATEs take the same row lock, so one of them wins."""
    return ListEmail.objects.filter(
        pk=list_email.pk,
        status=ListEmail.Status.SCHEDULED,
        send_at__isnull=False,
        next_batch_at=F("send_at"),
    )


def list_email_reschedule(
    *, list_email: ListEmail, subject: str, html_body: str, send_at: datetime
) -> bool:
    """Change a scheduled list email before it starts; False when it has started."""
    return bool(
        _still_waiting(list_email).update(
            subject=subject,
            html_body=link_bare_urls(html_body),
            send_at=send_at,
            next_batch_at=send_at,
        )
    )


def list_email_cancel(*, list_email: ListEmail, now: datetime | None = None) -> bool:
    """Cancel a scheduled list email before it starts: its members are skipped with the reason.
    False when it has started."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _still_waiting(list_email).update(
            status=ListEmail.Status.CANCELLED, next_batch_at=None, finished_at=now
        ):
            return False
        list_email.recipients.filter(state=Recipient.State.QUEUED).update(
            state=Recipient.State.SKIPPED, reason="Cancelled before it was sent"
        )
    return True


def _next_midnight(now: datetime) -> datetime:
    local = timezone.localtime(now)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight


def list_email_batch_send(*, list_email_id: int, now: datetime | None = None) -> datetime | None:
    """Send the next batch of a list email; returns when the one after it is due, or None when
    there is nothing to do now (done, not due yet, or waiting for the daily limit to reset).

    Each member goes through `email_send` (list email policy: opt-outs, Don't Market, Don't
    Process and suppressed addresses are refused with their reason) and gets their own copy.
    Recipients are claimed with a conditional UPDATE, so two runs never send one twice.

    A batch whose worker stopped while delivering it (the list email still names it in
    `delivering_batch` when the next run takes the lease) is resumed first: its copies left
    Sending are marked unconfirmed and never sent again (they may have gone out), those still
    Pending are delivered, each once (crm.delivery claims every copy before it is sent).
    """
    now = now or timezone.now()
    list_email = ListEmail.objects.select_related("campaign", "sender").get(pk=list_email_id)
    if list_email.status in (ListEmail.Status.COMPLETED, ListEmail.Status.CANCELLED):
        return None
    # The batch takes a lease (a conditional UPDATE): a beat resume and a queued batch arriving
    # together send one batch, not two, so the per-minute rate holds.
    leased = (
        ListEmail.objects.filter(pk=list_email.pk)
        .exclude(status=ListEmail.Status.CANCELLED)
        .filter(Q(next_batch_at__isnull=True) | Q(next_batch_at__lte=now))
        .update(next_batch_at=now + BATCH_LEASE)
    )
    if not leased:
        return None
    # Recipients still Sending belong to a run that died before its batch committed (the lease
    # lets one run at a time, and _prepare hands a batch over in one transaction): none of
    # them reached the send pipeline, so they go back in the queue.
    list_email.recipients.filter(state=Recipient.State.SENDING).update(
        state=Recipient.State.QUEUED, batch=None
    )
    reached, resent = _stopped_batch_resume(list_email) if list_email.delivering_batch else ([], 0)
    org = OrgSettings.load()
    rate = org.list_email_per_minute
    if rate and resent >= rate:
        # The stopped batch's copies sent just now took this minute's places (and more).
        due = now + timedelta(seconds=60 * resent / rate)
        with transaction.atomic():
            members_advance(relation_ids=reached)
            ListEmail.objects.filter(pk=list_email.pk).update(next_batch_at=due)
        return due
    left = daily_list_email_left()
    size = min(BATCH_SIZE, rate - resent if rate else BATCH_SIZE, left)
    queued = list_email.recipients.filter(state=Recipient.State.QUEUED)
    ids = list(queued.order_by("pk").values_list("pk", flat=True)[:size]) if size else []
    if not ids:
        if size == 0 and queued.exists():
            # Over the daily limit: not refused, the rest goes out when it resets.
            with transaction.atomic():
                members_advance(relation_ids=reached)
                ListEmail.objects.filter(pk=list_email.pk).update(
                    status=ListEmail.Status.SCHEDULED,
                    next_batch_at=_next_midnight(now),
                    delivering_batch=None,
                )
            return None
        _list_email_end(list_email, now, reached)
        return None
    batch = uuid.uuid4()
    with transaction.atomic():  # one commit for both
        Recipient.objects.filter(pk__in=ids, state=Recipient.State.QUEUED).update(
            state=Recipient.State.SENDING, batch=batch
        )
        ListEmail.objects.filter(pk=list_email.pk).update(
            status=ListEmail.Status.SENDING, delivering_batch=batch
        )
    claimed = list(
        Recipient.objects.filter(batch=batch).select_related(
            "contact__account", "contact__individual", "lead__individual"
        )
    )
    with transaction.atomic():  # the emails and the recipients' outcomes, or neither
        handed, prepared = _prepare(list_email, claimed)
    _hand_over(handed, prepared)
    # Each handed email's one copy, with the outcome delivery set on it.
    sent_relations = [
        copy.relation_id
        for copy in (prepared.pending if prepared else [])
        if copy.delivery_status == Relation.Delivery.SENT
    ]
    with transaction.atomic():  # one commit for the funnel and the next batch's time
        members_advance(relation_ids=[*reached, *sent_relations])
        if _finish_if_done(list_email, now):
            return None
        # Paced so that no more than `rate` go out in any minute, a stopped batch's copies
        # resumed in this run counted with the new ones.
        due = now + timedelta(seconds=60 * (len(claimed) + resent) / rate) if rate else now
        ListEmail.objects.filter(pk=list_email.pk).update(next_batch_at=due, delivering_batch=None)
    return due


def _hand_over(email_ids: list[int], prepared: PreparedBatch | None = None) -> None:
    """Deliver these emails' pending copies, claimed together (crm.delivery)."""
    try:
        emails_deliver(email_ids=email_ids, claim_together=True, prepared=prepared)
    except DeliveryDeferred:
        # The mail server is away: the pipeline's own task retries each with its backoff.
        for email_id in Relation.objects.filter(
            email_id__in=email_ids, delivery_status=Relation.Delivery.PENDING
        ).values_list("email_id", flat=True):
            jobs.enqueue(jobs.DELIVER_EMAIL, email_id, countdown=30)


def _stopped_batch_resume(list_email: ListEmail) -> tuple[list[int], int]:
    """The batch a worker stopped delivering: its copies still Sending are marked unconfirmed,
    those still Pending are delivered now; returns all its copies, for the funnel (it may
    have recorded some before it stopped), and how many were Pending (handed over now: Setup's
    per-minute rate counts them with this run's new batch).

    The list email stops naming the batch before its copies go out: a run that stops in here
    too leaves them Pending for the list email's end (_list_email_end) rather than to every
    run after it, so a copy that cannot be sent does not hold the rest of the list back.
    """
    handed = list_email.recipients.filter(
        batch=list_email.delivering_batch, state=Recipient.State.HANDED
    )
    email_ids = list(handed.values_list("email_id", flat=True))
    with transaction.atomic():
        copies_unconfirm(email_ids=email_ids)
        ListEmail.objects.filter(pk=list_email.pk).update(delivering_batch=None)
    copies = Relation.objects.filter(email_id__in=email_ids, relation_type=Relation.Type.TO)
    resent = copies.filter(delivery_status=Relation.Delivery.PENDING).count()
    _hand_over(email_ids)
    return list(copies.values_list("pk", flat=True)), resent


def _list_email_end(list_email: ListEmail, now: datetime, reached: list[int]) -> None:
    """No member is left to claim: the copies of handed members still Pending (a deferral's,
    whose retries may race this, or a stopped worker's) are delivered now, each once; then the
    list email completes, or beat looks at it again after UNDELIVERED_RECHECK."""
    undelivered = list(_undelivered(list_email).values_list("email_id", flat=True))
    if undelivered:
        with contextlib.suppress(DeliveryDeferred):  # still Pending: looked at again later
            emails_deliver(email_ids=undelivered, claim_together=True)
        reached = [
            *reached,
            *Relation.objects.filter(
                email_id__in=undelivered, relation_type=Relation.Type.TO
            ).values_list("pk", flat=True),
        ]
    with transaction.atomic():
        members_advance(relation_ids=reached)
        if not _finish_if_done(list_email, now):
            ListEmail.objects.filter(pk=list_email.pk).update(
                next_batch_at=now + UNDELIVERED_RECHECK, delivering_batch=None
            )


def _undelivered(list_email: ListEmail) -> QuerySet[EmailMessageRelation]:
    """The copies of its handed members still Pending: one query, whatever their number."""
    return Relation.objects.filter(
        email_id__in=list_email.recipients.filter(state=Recipient.State.HANDED).values("email_id"),
        relation_type=Relation.Type.TO,
        delivery_status=Relation.Delivery.PENDING,
    )


def _prepare(
    list_email: ListEmail, claimed: list[ListEmailRecipient]
) -> tuple[list[int], PreparedBatch | None]:
    """Hand the claimed recipients to the send pipeline; returns the emails to deliver and the
    batch they were written from.

    A recipient the pipeline refused (Email Opt Out, Don't Market, Don't Process, a suppressed
    address) is skipped with the pipeline's reason.
    """
    sendable: list[ListEmailRecipient] = []
    for recipient in claimed:
        person: Contact | Lead | None = recipient.contact or recipient.lead
        if person is None or not person.email.strip():
            recipient.state, recipient.reason = Recipient.State.SKIPPED, "No email address"
        else:
            sendable.append(recipient)
    handed: dict[int, ListEmailRecipient] = {}
    prepared = None
    if sendable:
        try:
            prepared = emails_prepare_each(
                sender=list_email.sender,
                people=[r.contact or r.lead for r in sendable],  # type: ignore[misc]
                subject=list_email.subject,
                html_body=list_email.html_body,
                source=EmailMessage.Source.LIST,
                campaign=list_email.campaign,
                template=list_email.template,
            )
        except SendRefused as error:
            # Another send took today's last places since the quota was read: wait for
            # tomorrow. Anything else (email switched off in Setup) fails with the reason.
            retry = daily_list_email_left() < len(sendable)
            for recipient in sendable:
                if retry:
                    recipient.state, recipient.batch = Recipient.State.QUEUED, None
                else:
                    recipient.state, recipient.reason = Recipient.State.FAILED, str(error)[:255]
        for recipient, copy in zip(sendable, prepared.copies if prepared else [], strict=False):
            recipient.email_id = copy.email_id
            if copy.may_send:
                recipient.state = Recipient.State.HANDED
                handed[copy.email_id] = recipient
            else:
                recipient.state, recipient.reason = Recipient.State.SKIPPED, copy.refusal_reason
    _save_outcomes(claimed)
    return list(handed), prepared


def _save_outcomes(recipients: list[ListEmailRecipient]) -> None:
    """Write each recipient's state, reason and email: one UPDATE per (state, reason) and one
    per 500 handed ones with their emails (bulk_update's CASE per row costs far more)."""
    outcomes: dict[tuple[str, str], list[int]] = {}
    handed: list[tuple[int, str, int]] = []
    for recipient in recipients:
        if recipient.state == Recipient.State.HANDED and recipient.email_id is not None:
            handed.append((recipient.pk, Recipient.State.HANDED, recipient.email_id))
        else:
            outcomes.setdefault((recipient.state, recipient.reason), []).append(recipient.pk)
    for (state, reason), ids in outcomes.items():
        batch = {"batch": None} if state == Recipient.State.QUEUED else {}
        Recipient.objects.filter(pk__in=ids).update(state=state, reason=reason, **batch)
    rows_update(Recipient, ["state", "email"], handed)


def _finish_if_done(list_email: ListEmail, now: datetime) -> bool:
    """Complete the list email once no member is left to claim and no copy of a handed member
    is still Pending. Copies still Sending then were left by a worker that stopped: they are
    marked unconfirmed (and shown so), not waited for (a deferral's retry that is sending one
    right now writes its outcome over the mark)."""
    if list_email.recipients.filter(
        state__in=[Recipient.State.QUEUED, Recipient.State.SENDING]
    ).exists():
        return False
    if _undelivered(list_email).exists():
        return False
    copies_unconfirm(
        email_ids=list_email.recipients.filter(state=Recipient.State.HANDED).values("email_id")
    )
    ListEmail.objects.filter(pk=list_email.pk).update(
        status=ListEmail.Status.COMPLETED,
        finished_at=now,
        next_batch_at=None,
        delivering_batch=None,
    )
    return True


def list_emails_due(*, now: datetime | None = None) -> list[int]:
    """The list emails with work whose next batch is due (beat resumes them)."""
    now = now or timezone.now()
    return list(
        ListEmail.objects.exclude(
            status__in=[ListEmail.Status.COMPLETED, ListEmail.Status.CANCELLED]
        )
        .filter(Q(next_batch_at__isnull=True) | Q(next_batch_at__lte=now))
        .values_list("pk", flat=True)
    )


@dataclass
class Progress:
    total: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    remaining: int = 0
    # Left Sending by a worker that stopped mid-send: they may or may not have gone out, and
    # are never sent again.
    unconfirmed: int = 0
    status: str = ""
    status_label: str = ""
    next_batch_at: datetime | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    waiting: bool = False  # scheduled for later, the first batch not gone yet

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "remaining": self.remaining,
            "unconfirmed": self.unconfirmed,
            "status": self.status,
            "status_label": self.status_label,
            "next_batch_at": self.next_batch_at.isoformat() if self.next_batch_at else None,
            "reasons": self.reasons,
            "waiting": self.waiting,
        }


def list_email_progress(*, list_email: ListEmail) -> Progress:
    """Sent / skipped / failed / remaining / unconfirmed, and the skip reasons with their
    counts (3 queries)."""
    states = dict(
        list_email.recipients.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    copies: dict[str, int] = {}
    unconfirmed = 0
    for delivery_status, n, marked in (
        Relation.objects.filter(
            email_id__in=list_email.recipients.filter(state=Recipient.State.HANDED).values(
                "email_id"
            ),
            relation_type=Relation.Type.TO,
        )
        .order_by()
        .values_list("delivery_status")
        .annotate(
            n=Count("pk"),
            marked=Count(
                "pk",
                filter=Q(delivery_status=Relation.Delivery.SENDING, refusal_reason=UNCONFIRMED),
            ),
        )
        .values_list("delivery_status", "n", "marked")
    ):
        copies[delivery_status] = n
        unconfirmed += marked
    reasons = Counter(
        dict(
            list_email.recipients.filter(
                state__in=[Recipient.State.SKIPPED, Recipient.State.FAILED]
            )
            .order_by()
            .values_list("reason")
            .annotate(n=Count("pk"))
            .values_list("reason", "n")
        )
    )
    delivery = Relation.Delivery
    status = ListEmail.Status(list_email.status)
    return Progress(
        total=sum(states.values()),
        sent=copies.get(delivery.SENT, 0) + copies.get(delivery.BOUNCED, 0),
        skipped=states.get(Recipient.State.SKIPPED, 0),
        failed=states.get(Recipient.State.FAILED, 0) + copies.get(delivery.FAILED, 0),
        remaining=states.get(Recipient.State.QUEUED, 0)
        + states.get(Recipient.State.SENDING, 0)
        + copies.get(delivery.PENDING, 0)
        + copies.get(delivery.SENDING, 0)
        - unconfirmed,
        unconfirmed=unconfirmed,
        status=status.value,
        status_label=status.label,
        next_batch_at=list_email.next_batch_at,
        reasons=reasons.most_common(),
        waiting=list_email.is_waiting,
    )
