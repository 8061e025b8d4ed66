"""Campaign members: adding and removing them, setting their status, the statuses' labels and
order, and the funnel that moves them forward as their email is opened, clicked and answered.

members_advance is registered with crm.hooks.on_engagement_counted (campaigns.apps): tracking's
ingestion and inbound's replies call it inside their own transaction, one set-based UPDATE per
batch. members_convert is registered with crm.hooks.on_lead_converted: a converted lead's
memberships become its contact's."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from campaigns.influence import influence_recompute_enqueue
from campaigns.models import (
    Campaign,
    CampaignMember,
    CampaignMemberStatus,
    FunnelStep,
    ListEmailRecipient,
)
from crm.models import (
    EmailMessageRelation,
    OrgSettings,
)
from crm.sql import chunks, placeholders

Relation = EmailMessageRelation
# Every statement names at most this many ids (SQLite allows 32,766 parameters).
CHUNK = 5_000


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


def members_convert(*, lead_id: int, contact_id: int) -> None:
    """A converted lead's memberships become its contact's (crm.hooks.lead_converted).

    Where the contact is already in the campaign the two memberships are merged into the
    contact's: the furthest status of the two, responded if either did, the earlier first
    response and joining date (influence counts campaigns joined before the opportunity). A list
    email still queued for the lead goes to the contact, so its copy lands on the contact's
    timeline. A statement each, whatever the number of memberships; influence is recomputed
    after commit.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    earlier = "CASE WHEN {b} IS NULL OR {a} < {b} THEN {a} ELSE {b} END"
    target = "campaigns_campaignmember"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {target} SET
                status_id = CASE WHEN (
                        SELECT s.sort_order FROM campaigns_campaignmemberstatus AS s
                        WHERE s.id = l.status_id
                    ) > (
                        SELECT s.sort_order FROM campaigns_campaignmemberstatus AS s
                        WHERE s.id = {target}.status_id
                    ) THEN l.status_id ELSE {target}.status_id END,
                has_responded = ({target}.has_responded OR l.has_responded),
                first_responded_at = {
                earlier.format(a="l.first_responded_at", b=f"{target}.first_responded_at")
            },
                created_at = {earlier.format(a="l.created_at", b=f"{target}.created_at")},
                updated_at = %s
            FROM campaigns_campaignmember AS l
            WHERE l.lead_id = %s AND l.campaign_id = {target}.campaign_id
                AND {target}.contact_id = %s
            """,  # noqa: S608 -- only constants and placeholders are interpolated
            [now, lead_id, contact_id],
        )
    already = CampaignMember.objects.filter(contact_id=contact_id).values("campaign_id")
    CampaignMember.objects.filter(lead_id=lead_id, campaign_id__in=already).delete()
    CampaignMember.objects.filter(lead_id=lead_id).update(
        lead=None, contact_id=contact_id, updated_at=timezone.now()
    )
    ListEmailRecipient.objects.filter(
        lead_id=lead_id, state=ListEmailRecipient.State.QUEUED
    ).update(lead=None, contact_id=contact_id)
    influence_recompute_enqueue(contact_ids=[contact_id])
