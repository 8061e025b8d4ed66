"""campaigns' app: it registers the funnel hook, its tasks, and the influence receivers."""

from typing import Any

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        # crm must not import campaigns, yet influence is derived from crm's Opportunities and
        # contact roles: campaigns listens for their changes. The receivers only queue a
        # recompute after commit (like invalidating a cache); the nightly run catches the rest,
        # e.g. bulk updates, which send no signals.
        from django.db.models.signals import post_delete, post_save

        from campaigns.models import CampaignMember
        from crm.models import Opportunity, OpportunityContactRole

        for model in (Opportunity, OpportunityContactRole, CampaignMember):
            post_save.connect(_influence_changed, sender=model, dispatch_uid=f"influence-{model}")
            post_delete.connect(_influence_changed, sender=model, dispatch_uid=f"influence-{model}")

        # Ingestion and replies move members along the funnel, in their own transaction.
        from campaigns.members import members_advance, members_convert
        from crm import hooks

        hooks.on_engagement_counted(members_advance)
        # A converted lead's memberships become its contact's, in the conversion's transaction.
        hooks.on_lead_converted(members_convert)
        # The composer offers these campaigns to file a single email under (crm.hooks).
        hooks.on_email_campaigns(campaigns_for_email)

        # Registers the tasks queued by name (crm.jobs).
        from campaigns import tasks  # noqa: F401


def campaigns_for_email(*, user: Any) -> Any:
    """The active campaigns, by name, for a user who may see campaigns; none otherwise."""
    from campaigns.models import Campaign

    if not user.has_perm("campaigns.view_campaign"):
        return Campaign.objects.none()
    return Campaign.objects.active().order_by("name", "pk")


def _influence_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from campaigns.influence import influence_recompute_enqueue
    from campaigns.models import CampaignMember
    from crm.models import Opportunity

    if isinstance(instance, Opportunity):
        influence_recompute_enqueue(opportunity_ids=[instance.pk])
    elif isinstance(instance, CampaignMember):
        # A status change moves no influence; joining or leaving does (post_delete has no
        # "created" argument).
        if instance.contact_id and kwargs.get("created", True):
            influence_recompute_enqueue(contact_ids=[instance.contact_id])
    else:
        influence_recompute_enqueue(opportunity_ids=[instance.opportunity_id])
