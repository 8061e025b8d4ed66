"""Each record's activity metrics (written only by crm.activity's set-based SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    pass
from crm.models.records import Account, Contact, Lead, Opportunity


class ActivityMetric(models.Model):
    """What a record's activity adds up to: one row per Contact, Lead, Account and Opportunity.

    Written only by `crm.activity.activity_metrics_recompute` (set-based SQL). An Account's and
    an Opportunity's count what their timelines show: the emails of their people (an account's
    contacts, an opportunity's contact roles) and those related to them, each email once, with
    their human opens and clicks, and the done tasks on them or their people. Human opens and
    clicks count as activity; machine ones never do.
    """

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    lead = models.OneToOneField(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    opportunity = models.OneToOneField(
        Opportunity, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    first_email_at = models.DateTimeField("First email", null=True, blank=True)
    last_email_sent_at = models.DateTimeField("Last email sent", null=True, blank=True)
    last_email_received_at = models.DateTimeField("Last email received", null=True, blank=True)
    last_activity_at = models.DateTimeField(
        "Last activity",
        null=True,
        blank=True,
        help_text="The latest email sent or received, task or call done, human open or click.",
    )
    emails_sent_30d = models.PositiveIntegerField("Emails sent (30 days)", default=0)
    emails_received_30d = models.PositiveIntegerField("Emails received (30 days)", default=0)
    human_opens_30d = models.PositiveIntegerField("Opens (30 days)", default=0)
    human_clicks_30d = models.PositiveIntegerField("Clicks (30 days)", default=0)
    activities_30d = models.PositiveIntegerField(
        "Activities (30 days)",
        default=0,
        help_text="Emails sent and received, tasks and calls done, human opens and clicks.",
    )
    inactive_days = models.PositiveIntegerField(
        "Days without activity",
        default=0,
        help_text="Whole days since the last activity (since the record was created if none), "
        "as of the last recompute.",
    )
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "activity metric"
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    contact__isnull=False,
                    lead__isnull=True,
                    account__isnull=True,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=False,
                    account__isnull=True,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=True,
                    account__isnull=False,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=True,
                    account__isnull=True,
                    opportunity__isnull=False,
                ),
                name="activity_metric_is_for_one_record",
            ),
        ]

    def __str__(self) -> str:
        return f"Activity of {self.record}"

    @property
    def record(self) -> Contact | Lead | Account | Opportunity | None:
        return self.contact or self.lead or self.account or self.opportunity
