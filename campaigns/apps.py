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
        from campaigns.members import members_advance
        from crm import hooks

        hooks.on_engagement_counted(members_advance)

        # Registers the tasks queued by name (crm.jobs).
        from campaigns import tasks  # noqa: F401


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
