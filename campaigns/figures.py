"""A campaign's figures: its own and rolled-up counts (as Salesforce shows them), and its
report's engagement (human against machine opens, clicks per link)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from campaigns.models import (
    Campaign,
    CampaignMember,
    FunnelStep,
)
from crm.models import (
    EmailMessage,
    EmailMessageRelation,
    Opportunity,
    TrackedLink,
)

Relation = EmailMessageRelation


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
    opened_by_people: int  # recipients with a human open or a human click
    opened_by_click: int  # of them, those shown only by a click (images blocked)
    machine_only: int  # recipients whose copy was opened only by machines
    human_clicks: int
    machine_clicks: int


def campaign_engagement(
    *, campaign: Campaign, emails: QuerySet[EmailMessage] | None = None
) -> Engagement:
    """Opens and clicks of the campaign's emails (or of `emails` only: one list email's),
    human and machine apart (one query)."""
    copies = Relation.objects.filter(
        email__campaign=campaign, relation_type__in=["to", "cc", "bcc"]
    ).exclude(delivery_status=Relation.Delivery.REFUSED)
    if emails is not None:
        copies = copies.filter(email__in=emails)
    figures = copies.aggregate(
        total_recipients=Count("pk"),
        total_human_opens=Sum("human_opens"),
        total_machine_opens=Sum("machine_opens"),
        total_opened_by_people=Count("pk", filter=Q(human_opens__gt=0) | Q(human_clicks__gt=0)),
        total_opened_by_click=Count("pk", filter=Q(human_opens=0, human_clicks__gt=0)),
        total_machine_only=Count(
            "pk", filter=Q(human_opens=0, human_clicks=0, machine_opens__gt=0)
        ),
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


# The funnel


def funnel_reached(members: QuerySet[CampaignMember]) -> list[tuple[str, int]]:
    """The members, then per funnel step those who reached it or went further (tracking moves
    members forward, never back, so a member who clicked also opened): one grouped query.

    This is the funnel the dashboard and the campaign report both show; a member's current
    status is another count (a member who clicked is no longer under Opened), shown apart.
    """
    by_step = dict(
        members.order_by()
        .values("status__funnel_step")
        .annotate(count=Count("pk"))
        .values_list("status__funnel_step", "count")
    )
    return funnel_from_counts(by_step)


def funnel_from_counts(by_step: Mapping[Any, int]) -> list[tuple[str, int]]:
    """`funnel_reached` from members counted by their status's funnel step."""
    steps = [step for step in FunnelStep if step != FunnelStep.NONE]
    reached = [
        (str(step.label), sum(n for step_of, n in by_step.items() if (step_of or 0) >= step))
        for step in steps
    ]
    return [("Members", sum(by_step.values())), *reached]
