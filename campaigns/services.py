"""Campaign workflows: members, the member funnel, list email, influence, the reports' figures.

campaigns uses crm (records, the send pipeline) and tracking's pure modules; tracking calls
`members_advance` after it recounts engagement. Every query over messages or events is
set-based: one statement per step, whatever the number of members.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignInfluence,
    CampaignMember,
    CampaignMemberStatus,
    FunnelStep,
    InfluenceModel,
    ListEmail,
    ListEmailRecipient,
)
from crm.models import (
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
    TrackedLink,
    User,
)
from crm.services import (
    DeliveryDeferred,
    SendRefused,
    daily_list_email_left,
    emails_deliver,
    emails_send_each,
)
from crm.sql import chunks, placeholders

Relation = EmailMessageRelation
Recipient = ListEmailRecipient

# Every statement names at most this many ids (SQLite allows 32,766 parameters).
CHUNK = 5_000
# Members prepared and handed to the mail backend per batch: small enough that the progress
# bar moves and a crash redoes little, large enough that a batch's fixed cost is negligible.
BATCH_SIZE = 200
# How long a batch may run before another run may take its list email over.
BATCH_LEASE = timedelta(minutes=10)


# Members


def members_add(
    *, campaign: Campaign, contact_ids: Collection[int] = (), lead_ids: Collection[int] = ()
) -> int:
    """Add these Contacts and Leads with the default status; those already members are left as
    they are (the unique indexes decide, so two people adding at once add each person once).
    Returns how many were added."""
    status = campaign.statuses.filter(is_default=True).first() or campaign.statuses.first()
    if status is None:
        raise ValueError(f"Campaign {campaign.pk} has no member statuses.")
    now = timezone.now()
    before = campaign.members.count()
    rows = [
        CampaignMember(campaign=campaign, contact_id=pk, status=status, created_at=now)
        for pk in sorted(set(contact_ids))
    ] + [
        CampaignMember(campaign=campaign, lead_id=pk, status=status, created_at=now)
        for pk in sorted(set(lead_ids))
    ]
    with transaction.atomic():
        CampaignMember.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        added = campaign.members.count() - before
        influence_recompute_enqueue(contact_ids=contact_ids)
    return added


def members_remove(*, campaign: Campaign, member_ids: Collection[int]) -> int:
    """Remove these members from the campaign; returns how many were removed."""
    members = campaign.members.filter(pk__in=member_ids)
    with transaction.atomic():
        contact_ids = list(
            members.filter(contact__isnull=False).values_list("contact_id", flat=True)
        )
        removed, _ = members.delete()
        influence_recompute_enqueue(contact_ids=contact_ids)
    return removed


def members_status_set(
    *, campaign: Campaign, member_ids: Collection[int], status: CampaignMemberStatus
) -> int:
    """Set these members' status by hand (any status, forward or back: the owner knows best),
    in one UPDATE. A responded status marks them responded, dated the first time only.
    Returns how many members were set."""
    if status.campaign_id != campaign.pk:
        raise ValueError("That status belongs to another campaign.")
    changes: dict[str, Any] = {"status": status, "updated_at": timezone.now()}
    if status.has_responded:
        changes |= {
            "has_responded": True,
            "first_responded_at": Coalesce("first_responded_at", Value(timezone.now())),
        }
    return campaign.members.filter(pk__in=member_ids).update(**changes)


@transaction.atomic
def member_statuses_save(
    *,
    campaign: Campaign,
    statuses: Sequence[CampaignMemberStatus],
    deleted: Sequence[CampaignMemberStatus],
) -> None:
    """Save a campaign's edited member statuses, all or none.

    Labels, the default and funnel steps are unique per campaign, so statuses that swap them
    would collide one save at a time: the changed ones, and any other holding a step or the
    default they take, first give theirs up in one UPDATE each.
    """
    for status in deleted:
        status.delete()
    changed = [status.pk for status in statuses if status.pk]
    if any(status.is_default for status in statuses):
        campaign.statuses.update(is_default=False)
    steps = {status.funnel_step for status in statuses if status.funnel_step}
    campaign.statuses.filter(Q(pk__in=changed) | Q(funnel_step__in=steps)).update(funnel_step=0)
    campaign.statuses.filter(pk__in=changed).update(
        label=Concat(Value("(saving "), Cast("pk", CharField()), Value(")"))
    )
    for status in statuses:
        status.campaign = campaign
        status.save()


def members_advance(*, relation_ids: Collection[int]) -> None:
    """Move the members these email copies went to forward along their campaign's funnel.

    Each member's furthest step is derived from the copies' counters (sent, opened, clicked,
    replied); machine opens and clicks count only when Setup's machine-open filtering is off.
    The member moves to the campaign's status for that step (or the furthest step below it the
    campaign has a status for) only if that status comes later than theirs: never backwards.
    """
    if not relation_ids:
        return
    filtering = OrgSettings.load().machine_open_filtering
    machine_opens = "" if filtering else "OR r.machine_opens > 0"
    machine_clicks = "" if filtering else "OR r.machine_clicks > 0"
    now = connection.ops.adapt_datetimefield_value(timezone.now())

    def copies(person: str, ids: list[int]) -> str:
        # One join per kind of person, not an OR of both, and the email's campaign read by its
        # key: each copy finds its member through the unique (campaign, contact) or (campaign,
        # lead) index, whatever the planner believes about a table that grew during the send.
        return f"""
            SELECT m.id AS member_id, m.campaign_id, r.replied_at, CASE
                WHEN r.replied_at IS NOT NULL THEN {FunnelStep.RESPONDED}
                WHEN r.human_clicks > 0 {machine_clicks} THEN {FunnelStep.CLICKED}
                WHEN r.human_opens > 0 {machine_opens} THEN {FunnelStep.OPENED}
                WHEN r.delivery_status = 'sent' THEN {FunnelStep.SENT}
                ELSE 0 END AS step
            FROM crm_emailmessagerelation AS r
            JOIN campaigns_campaignmember AS m ON m.{person} = r.{person} AND m.campaign_id = (
                SELECT e.campaign_id FROM crm_emailmessage AS e WHERE e.id = r.email_id
            )
            WHERE r.id IN ({placeholders(ids)}) AND r.relation_type IN ('to', 'cc', 'bcc')
        """  # noqa: S608 -- only constants and placeholders are interpolated

    for ids in chunks(relation_ids, CHUNK):
        sql = f"""
            UPDATE campaigns_campaignmember SET
                status_id = a.status_id,
                has_responded = (campaigns_campaignmember.has_responded OR a.has_responded),
                first_responded_at = COALESCE(
                    campaigns_campaignmember.first_responded_at, a.responded_at
                ),
                updated_at = %s
            FROM (
                SELECT target.member_id, target.status_id, s.has_responded,
                    CASE WHEN s.has_responded THEN COALESCE(target.replied_at, %s) END
                        AS responded_at
                FROM (
                    SELECT reached.member_id, reached.replied_at, (
                        SELECT t.id FROM campaigns_campaignmemberstatus AS t
                        WHERE t.campaign_id = reached.campaign_id
                            AND t.funnel_step BETWEEN 1 AND reached.step
                        ORDER BY t.funnel_step DESC LIMIT 1
                    ) AS status_id
                    FROM (
                        SELECT u.member_id, u.campaign_id, MAX(u.step) AS step,
                            MIN(u.replied_at) AS replied_at
                        FROM ({copies("contact_id", ids)} UNION ALL {copies("lead_id", ids)}) AS u
                        GROUP BY u.member_id, u.campaign_id
                    ) AS reached
                    WHERE reached.step > 0
                ) AS target
                JOIN campaigns_campaignmemberstatus AS s ON s.id = target.status_id
                JOIN campaigns_campaignmember AS current_member
                    ON current_member.id = target.member_id
                JOIN campaigns_campaignmemberstatus AS current_status
                    ON current_status.id = current_member.status_id
                WHERE s.sort_order > current_status.sort_order
            ) AS a
            WHERE campaigns_campaignmember.id = a.member_id
        """  # noqa: S608 -- only constants and placeholders are interpolated
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, now, *ids, *ids])


# List email


def list_email_create(
    *,
    campaign: Campaign,
    sender: User,
    subject: str,
    html_body: str,
    members: QuerySet[CampaignMember],
) -> ListEmail:
    """Queue a list email to these members; Celery sends it in batches."""
    with transaction.atomic():
        list_email = ListEmail.objects.create(
            campaign=campaign, sender=sender, subject=subject, html_body=html_body
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
        from campaigns.tasks import send_list_email_batch  # the task module imports this one

        send_list_email_batch.delay_on_commit(list_email.pk)  # type: ignore[attr-defined]
    return list_email


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
    """
    now = now or timezone.now()
    list_email = ListEmail.objects.select_related("campaign", "sender").get(pk=list_email_id)
    if list_email.status == ListEmail.Status.COMPLETED:
        return None
    # The batch takes a lease (a conditional UPDATE): a beat resume and a queued batch arriving
    # together send one batch, not two, so the per-minute rate holds.
    leased = (
        ListEmail.objects.filter(pk=list_email.pk)
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
    org = OrgSettings.load()
    rate = org.list_email_per_minute
    left = daily_list_email_left()
    size = min(BATCH_SIZE, rate or BATCH_SIZE, left)
    queued = list_email.recipients.filter(state=Recipient.State.QUEUED)
    if size == 0:
        if queued.exists():
            # Over the daily limit: not refused, the rest goes out when it resets.
            ListEmail.objects.filter(pk=list_email.pk).update(
                status=ListEmail.Status.SCHEDULED, next_batch_at=_next_midnight(now)
            )
        else:
            _finish_if_done(list_email, now)
        return None
    batch = uuid.uuid4()
    ids = list(queued.order_by("pk").values_list("pk", flat=True)[:size])
    Recipient.objects.filter(pk__in=ids, state=Recipient.State.QUEUED).update(
        state=Recipient.State.SENDING, batch=batch
    )
    claimed = list(
        Recipient.objects.filter(batch=batch).select_related(
            "contact__account", "contact__individual", "lead__individual"
        )
    )
    ListEmail.objects.filter(pk=list_email.pk).update(status=ListEmail.Status.SENDING)
    with transaction.atomic():  # the emails and the recipients' outcomes, or neither
        handed = _prepare(list_email, claimed)
    try:
        emails_deliver(email_ids=handed)
    except DeliveryDeferred:
        # The mail server is away: the pipeline's own task retries each with its backoff.
        from crm.tasks import deliver_email

        for email_id in Relation.objects.filter(
            email_id__in=handed, delivery_status=Relation.Delivery.PENDING
        ).values_list("email_id", flat=True):
            deliver_email.apply_async((email_id,), countdown=30)
    sent_relations = list(
        Relation.objects.filter(
            email_id__in=handed,
            relation_type=Relation.Type.TO,
            delivery_status=Relation.Delivery.SENT,
        ).values_list("pk", flat=True)
    )
    members_advance(relation_ids=sent_relations)
    if _finish_if_done(list_email, now):
        return None
    # Paced so that no more than `rate` go out in any minute.
    due = now + timedelta(seconds=60 * len(claimed) / rate) if rate else now
    ListEmail.objects.filter(pk=list_email.pk).update(next_batch_at=due)
    return due


def _prepare(list_email: ListEmail, claimed: list[ListEmailRecipient]) -> list[int]:
    """Hand the claimed recipients to the send pipeline; returns the emails to deliver.

    A recipient the pipeline refused (Email Opt Out, Don't Market, Don't Process, a suppressed
    address) is skipped with the pipeline's reason, read back in one query.
    """
    sendable: list[ListEmailRecipient] = []
    for recipient in claimed:
        person: Contact | Lead | None = recipient.contact or recipient.lead
        if person is None or not person.email.strip():
            recipient.state, recipient.reason = Recipient.State.SKIPPED, "No email address"
        else:
            sendable.append(recipient)
    handed: dict[int, ListEmailRecipient] = {}
    if sendable:
        try:
            emails = emails_send_each(
                sender=list_email.sender,
                people=[r.contact or r.lead for r in sendable],  # type: ignore[misc]
                subject=list_email.subject,
                html_body=list_email.html_body,
                source=EmailMessage.Source.LIST,
                campaign=list_email.campaign,
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
            emails = []
        for recipient, email in zip(sendable, emails, strict=False):
            recipient.email, recipient.state = email, Recipient.State.HANDED
            handed[email.pk] = recipient
    refused = Relation.objects.filter(
        email_id__in=handed,
        relation_type=Relation.Type.TO,
        delivery_status=Relation.Delivery.REFUSED,
    ).values_list("email_id", "refusal_reason")
    for email_id, reason in refused:
        recipient = handed.pop(email_id)
        recipient.state, recipient.reason = Recipient.State.SKIPPED, reason
    _save_outcomes(claimed)
    return list(handed)


def _save_outcomes(recipients: list[ListEmailRecipient]) -> None:
    """Write each recipient's state, reason and email: one UPDATE per (state, reason) and one
    joining the handed ones to their emails (bulk_update's CASE per row costs far more)."""
    outcomes: dict[tuple[str, str], list[int]] = {}
    handed: list[tuple[int, int]] = []
    for recipient in recipients:
        if recipient.state == Recipient.State.HANDED and recipient.email is not None:
            handed.append((recipient.pk, recipient.email.pk))
        else:
            outcomes.setdefault((recipient.state, recipient.reason), []).append(recipient.pk)
    for (state, reason), ids in outcomes.items():
        batch = {"batch": None} if state == Recipient.State.QUEUED else {}
        Recipient.objects.filter(pk__in=ids).update(state=state, reason=reason, **batch)
    for chunk in (handed[i : i + 500] for i in range(0, len(handed), 500)):
        rows = " UNION ALL ".join(["SELECT %s AS id, %s AS email_id"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE campaigns_listemailrecipient SET state = %s, email_id = v.email_id
                FROM ({rows}) AS v
                WHERE campaigns_listemailrecipient.id = v.id
                """,  # noqa: S608 -- only placeholders are interpolated
                [Recipient.State.HANDED, *(value for pair in chunk for value in pair)],
            )


def _finish_if_done(list_email: ListEmail, now: datetime) -> bool:
    if list_email.recipients.filter(
        state__in=[Recipient.State.QUEUED, Recipient.State.SENDING]
    ).exists():
        return False
    ListEmail.objects.filter(pk=list_email.pk).update(
        status=ListEmail.Status.COMPLETED, finished_at=now, next_batch_at=None
    )
    return True


def list_emails_due(*, now: datetime | None = None) -> list[int]:
    """The list emails with work whose next batch is due (beat resumes them)."""
    now = now or timezone.now()
    return list(
        ListEmail.objects.exclude(status=ListEmail.Status.COMPLETED)
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
    status: str = ""
    status_label: str = ""
    next_batch_at: datetime | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "remaining": self.remaining,
            "status": self.status,
            "status_label": self.status_label,
            "next_batch_at": self.next_batch_at.isoformat() if self.next_batch_at else None,
            "reasons": self.reasons,
        }


def list_email_progress(*, list_email: ListEmail) -> Progress:
    """Sent / skipped / failed / remaining, and the skip reasons with their counts (3 queries)."""
    states = dict(
        list_email.recipients.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    copies = dict(
        Relation.objects.filter(
            email_id__in=list_email.recipients.filter(state=Recipient.State.HANDED).values(
                "email_id"
            ),
            relation_type=Relation.Type.TO,
        )
        .order_by()
        .values_list("delivery_status")
        .annotate(n=Count("pk"))
        .values_list("delivery_status", "n")
    )
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
        + copies.get(delivery.SENDING, 0),
        status=status.value,
        status_label=status.label,
        next_batch_at=list_email.next_batch_at,
        reasons=reasons.most_common(),
    )


# Influence


def influence_recompute_enqueue(
    *, opportunity_ids: Collection[int] = (), contact_ids: Collection[int] = ()
) -> None:
    """Recompute these opportunities' influence (and those of these contacts) after commit."""
    contacts = sorted(set(contact_ids))
    opportunities = set(opportunity_ids)
    if contacts:
        opportunities |= set(
            OpportunityContactRole.objects.filter(contact_id__in=contacts).values_list(
                "opportunity_id", flat=True
            )
        )
    if opportunities:
        from campaigns.tasks import recompute_influence  # the task module imports this one

        recompute_influence.delay_on_commit(sorted(opportunities))  # type: ignore[attr-defined]


def _joined_within(days: int) -> str:
    """SQL: member m joined within `days` before opportunity o was created (inclusive)."""
    if connection.vendor == "postgresql":
        return (
            f"m.created_at <= o.created_at "
            f"AND m.created_at >= o.created_at - INTERVAL '{int(days)} days'"
        )
    return (
        f"julianday(m.created_at) <= julianday(o.created_at) "
        f"AND julianday(m.created_at) >= julianday(o.created_at) - {int(days)}"
    )


# PostgreSQL advisory lock key (an arbitrary constant) for influence recomputes.
INFLUENCE_LOCK = 720_501


def influence_recompute(*, opportunity_ids: Collection[int] | None = None) -> None:
    """Recompute campaign influence for these opportunities (all when None), set-based.

    Primary Campaign Source gives the opportunity's campaign 100%. The other models share it
    among the touches: each campaign membership of a contact with a role on the opportunity
    that began within Setup's time frame before the opportunity was created, in joining order.
    First Touch: 100% to the first; Last Touch: 100% to the last; Even Distribution: equal
    shares; Position-based: 40% first, 40% last, 20% shared by those between (50/50 for two).
    Revenue share = amount x influence.
    """
    days = OrgSettings.load().influence_time_frame_days
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    scopes: list[list[int] | None] = (
        [None] if opportunity_ids is None else list(chunks(opportunity_ids, CHUNK))
    )
    models = InfluenceModel
    for ids in scopes:
        scope = f"AND o.id IN ({placeholders(ids)})" if ids is not None else ""
        params = list(ids or ())
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # One recompute at a time: two would each delete the rows the other has not
                # committed yet, then both insert, and the influence would count twice.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INFLUENCE_LOCK])
            stale = CampaignInfluence.objects.all()
            if ids is not None:
                stale = stale.filter(opportunity_id__in=ids)
            stale.delete()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO campaigns_campaigninfluence
                        (opportunity_id, campaign_id, contact_id, model, influence,
                         revenue_share, computed_at)
                    SELECT o.id, o.campaign_id, (
                            SELECT cr.contact_id FROM crm_opportunitycontactrole AS cr
                            WHERE cr.opportunity_id = o.id AND cr.is_primary
                        ), '{models.PRIMARY}', 100, COALESCE(o.amount, 0), %s
                    FROM crm_opportunity AS o
                    WHERE o.campaign_id IS NOT NULL {scope}
                    """,  # noqa: S608 -- only constants and placeholders are interpolated
                    [now, *params],
                )
                cursor.execute(
                    f"""
                    WITH touches AS (
                        SELECT o.id AS opportunity_id, m.campaign_id, m.contact_id,
                            COALESCE(o.amount, 0) AS amount,
                            ROW_NUMBER() OVER (
                                PARTITION BY o.id ORDER BY m.created_at, m.id
                            ) AS n,
                            COUNT(*) OVER (PARTITION BY o.id) AS total
                        FROM crm_opportunity AS o
                        JOIN crm_opportunitycontactrole AS cr ON cr.opportunity_id = o.id
                        JOIN campaigns_campaignmember AS m ON m.contact_id = cr.contact_id
                        WHERE {_joined_within(days)} {scope}
                    ),
                    shares AS (
                        SELECT opportunity_id, campaign_id, contact_id, amount,
                            '{models.FIRST_TOUCH}' AS model, 100.0 AS influence
                        FROM touches WHERE n = 1
                        UNION ALL
                        SELECT opportunity_id, campaign_id, contact_id, amount,
                            '{models.LAST_TOUCH}', 100.0
                        FROM touches WHERE n = total
                        UNION ALL
                        SELECT opportunity_id, campaign_id, contact_id, amount,
                            '{models.EVEN}', 100.0 / total
                        FROM touches
                        UNION ALL
                        SELECT opportunity_id, campaign_id, contact_id, amount,
                            '{models.POSITION}',
                            CASE WHEN total = 1 THEN 100.0
                                WHEN total = 2 THEN 50.0
                                WHEN n = 1 OR n = total THEN 40.0
                                ELSE 20.0 / (total - 2) END
                        FROM touches
                    )
                    INSERT INTO campaigns_campaigninfluence
                        (opportunity_id, campaign_id, contact_id, model, influence,
                         revenue_share, computed_at)
                    SELECT opportunity_id, campaign_id, contact_id, model,
                        ROUND(influence, 4), ROUND(amount * influence / 100, 2), %s
                    FROM shares
                    """,  # noqa: S608 -- only constants and placeholders are interpolated
                    [*params, now],
                )


@dataclass(frozen=True)
class InfluenceRow:
    campaign: Campaign
    opportunities: int
    pipeline: Decimal  # open opportunities' revenue share
    won: Decimal  # closed-won opportunities' revenue share
    roi: Decimal | None  # (won - actual cost) / actual cost, in %; None without a cost


def influence_report(*, campaigns: QuerySet[Campaign], model: str) -> list[InfluenceRow]:
    """Per campaign under one model: influenced pipeline, won revenue and ROI (one query)."""
    open_ = ~Q(influence__opportunity__stage__in=Opportunity.CLOSED_STAGES)
    won = Q(influence__opportunity__stage=Opportunity.Stage.CLOSED_WON)
    in_model = Q(influence__model=model)
    rows = campaigns.annotate(
        influenced=Count("influence__opportunity", filter=in_model, distinct=True),
        pipeline=Sum("influence__revenue_share", filter=in_model & open_),
        won_revenue=Sum("influence__revenue_share", filter=in_model & won),
    )
    result = []
    for campaign in rows:
        won_revenue = campaign.won_revenue or Decimal(0)
        cost = campaign.actual_cost
        roi = ((won_revenue - cost) / cost * 100).quantize(Decimal("0.1")) if cost else None
        result.append(
            InfluenceRow(
                campaign=campaign,
                opportunities=campaign.influenced,
                pipeline=campaign.pipeline or Decimal(0),
                won=won_revenue,
                roi=roi,
            )
        )
    return result


# The campaign's own and rolled-up figures


@dataclass
class Figures:
    """The counts Salesforce shows on a campaign, computed from its members and opportunities."""

    contacts: int = 0
    leads: int = 0
    sent: int = 0
    responses: int = 0
    opportunities: int = 0
    won_opportunities: int = 0
    amount: Decimal = Decimal(0)
    won_amount: Decimal = Decimal(0)

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in self.__dataclass_fields__
            }
        )


def campaign_figures(*, campaign: Campaign) -> tuple[Figures, Figures]:
    """(the campaign's own figures, the figures of its whole hierarchy below it), 3 queries."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Campaign.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    tree, stack = [], [campaign.pk]
    while stack:  # a parent cannot be its own descendant (the form refuses it), but be safe
        pk = stack.pop()
        if pk in tree:
            continue
        tree.append(pk)
        stack.extend(children.get(pk, []))
    sent = Q(status__funnel_step__gte=FunnelStep.SENT) | Q(has_responded=True)
    members = {
        row["campaign_id"]: row
        for row in CampaignMember.objects.filter(campaign_id__in=tree)
        .order_by()
        .values("campaign_id")
        .annotate(
            contacts=Count("pk", filter=Q(contact__isnull=False)),
            leads=Count("pk", filter=Q(lead__isnull=False)),
            sent=Count("pk", filter=sent),
            responses=Count("pk", filter=Q(has_responded=True)),
        )
    }
    won = Q(stage=Opportunity.Stage.CLOSED_WON)
    deals = {
        row["campaign_id"]: row
        for row in Opportunity.objects.filter(campaign_id__in=tree)
        .order_by()
        .values("campaign_id")
        .annotate(
            opportunities=Count("pk"),
            won_opportunities=Count("pk", filter=won),
            amount_total=Sum("amount"),
            won_amount=Sum("amount", filter=won),
        )
    }

    def figures_of(pk: int) -> Figures:
        m, d = members.get(pk, {}), deals.get(pk, {})
        return Figures(
            contacts=m.get("contacts", 0),
            leads=m.get("leads", 0),
            sent=m.get("sent", 0),
            responses=m.get("responses", 0),
            opportunities=d.get("opportunities", 0),
            won_opportunities=d.get("won_opportunities", 0),
            amount=d.get("amount_total") or Decimal(0),
            won_amount=d.get("won_amount") or Decimal(0),
        )

    own = figures_of(campaign.pk)
    total = own
    for pk in tree[1:]:
        total = total + figures_of(pk)
    return own, total


# The campaign report


@dataclass(frozen=True)
class Engagement:
    recipients: int
    human_opens: int
    machine_opens: int
    opened_by_people: int  # recipients with at least one human open
    machine_only: int  # recipients whose copy was opened only by machines
    human_clicks: int
    machine_clicks: int


def campaign_engagement(*, campaign: Campaign) -> Engagement:
    """Opens and clicks of the campaign's emails, human and machine apart (one query)."""
    copies = Relation.objects.filter(
        email__campaign=campaign, relation_type__in=["to", "cc", "bcc"]
    ).exclude(delivery_status=Relation.Delivery.REFUSED)
    figures = copies.aggregate(
        total_recipients=Count("pk"),
        total_human_opens=Sum("human_opens"),
        total_machine_opens=Sum("machine_opens"),
        total_opened_by_people=Count("pk", filter=Q(human_opens__gt=0)),
        total_machine_only=Count("pk", filter=Q(human_opens=0, machine_opens__gt=0)),
        total_human_clicks=Sum("human_clicks"),
        total_machine_clicks=Sum("machine_clicks"),
    )
    return Engagement(
        **{name.removeprefix("total_"): value or 0 for name, value in figures.items()}
    )


def link_clicks(*, emails: QuerySet[EmailMessage]) -> list[dict[str, Any]]:
    """Clicks per destination over these emails (each member's copy has its own links)."""
    return list(
        TrackedLink.objects.filter(email__in=emails, is_honeypot=False)
        .order_by()
        .values("url")
        .annotate(human=Sum("human_clicks"), machine=Sum("machine_clicks"))
        .order_by("-human", "-machine", "url")
    )
