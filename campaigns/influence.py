"""Campaign influence on opportunities: the five attribution models, recomputed set-based, and
the influence report (pipeline, won revenue and ROI per campaign)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignInfluence,
    InfluenceModel,
)
from crm import jobs
from crm.models import (
    EmailMessageRelation,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
)
from crm.sql import chunks, placeholders

Relation = EmailMessageRelation
# Every statement names at most this many ids (SQLite allows 32,766 parameters).
CHUNK = 5_000
RECOMPUTE_INFLUENCE = "campaigns.tasks.recompute_influence"


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
        jobs.enqueue(RECOMPUTE_INFLUENCE, sorted(opportunities))


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
