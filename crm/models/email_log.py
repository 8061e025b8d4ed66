"""The email log (EmailEvent) and the daily rollups the dashboards read (EmailDailyStat,
LinkDailyStat)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    pass
from crm.models.emails import EmailMessageRelation


class EmailEvent(models.Model):
    """One delivery event of one recipient's copy, for the email log.

    Opens and clicks are tracking events already (the log reads both); this table holds the
    rest. Written only by `crm.email_events.email_events_record`, which also updates the rollups.
    """

    class Kind(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        REPLIED = "replied", "Replied"

    relation = models.ForeignKey(
        EmailMessageRelation, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    detail = models.CharField(
        max_length=255, blank=True, help_text="What the server said, e.g. 550 5.1.1 No such user."
    )
    bounce = models.CharField(max_length=4, choices=EmailMessageRelation.Bounce.choices, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            # The email log (keyset pages: the sort's columns) and retention.
            models.Index(fields=["occurred_at", "id"], name="email_event_time_id"),
            # One recipient's history (the email page), and the cascade when an email is deleted.
            models.Index(fields=["relation", "occurred_at"], name="email_event_relation"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class EmailDailyStat(models.Model):
    """The daily rollup the dashboards read: one row per day x sender x campaign.

    Counts of events are on the day they happened. The `recipients_*` columns are a cohort: a
    recipient who ever opened (clicked) counts once, on the day their copy was sent, so a rate is
    `recipients_opened_* / sent` over the same days. Sender and campaign are plain integers with
    0 for none (not foreign keys): the unique key must have no NULL for the upserts to find it, and
    the history stays when a user or campaign is deleted. Written only with set-based upserts by
    `crm.email_events.email_events_record`, `tracking.rollups.rollups_add_events` and
    `tracking.rollups.rollups_rebuild`.
    """

    day = models.DateField()
    sender_key = models.PositiveIntegerField(help_text="The sending user's id; 0 for none.")
    campaign_key = models.PositiveIntegerField(help_text="The campaign's id; 0 for none.")
    queued = models.PositiveIntegerField(db_default=0)
    sent = models.PositiveIntegerField(db_default=0)
    deferred = models.PositiveIntegerField(db_default=0)
    delivered = models.PositiveIntegerField(db_default=0)
    failed = models.PositiveIntegerField(db_default=0)
    bounced_hard = models.PositiveIntegerField(db_default=0)
    bounced_soft = models.PositiveIntegerField(db_default=0)
    complained = models.PositiveIntegerField(db_default=0)
    unsubscribed = models.PositiveIntegerField(db_default=0)
    replied = models.PositiveIntegerField(db_default=0)
    opens_human = models.PositiveIntegerField(db_default=0)
    opens_apple_mpp = models.PositiveIntegerField(db_default=0)
    opens_image_proxy = models.PositiveIntegerField(db_default=0)
    opens_scanner = models.PositiveIntegerField(db_default=0)
    opens_bot = models.PositiveIntegerField(db_default=0)
    clicks_human = models.PositiveIntegerField(db_default=0)
    clicks_machine = models.PositiveIntegerField(db_default=0)
    recipients_opened_human = models.PositiveIntegerField(db_default=0)
    recipients_opened_any = models.PositiveIntegerField(db_default=0)
    recipients_clicked_human = models.PositiveIntegerField(db_default=0)
    recipients_clicked_any = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "sender_key", "campaign_key"], name="email_daily_stat_key"
            ),
        ]
        indexes = [
            # The rep's own dashboard: their rows over a date range.
            models.Index(fields=["sender_key", "day"], name="email_daily_stat_sender"),
            # The campaign filter.
            models.Index(fields=["campaign_key", "day"], name="email_daily_stat_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: sender {self.sender_key}, campaign {self.campaign_key}"


class LinkDailyStat(models.Model):
    """Clicks per link URL per day x sender x campaign, for the top-links chart (see above)."""

    day = models.DateField()
    sender_key = models.PositiveIntegerField()
    campaign_key = models.PositiveIntegerField()
    url = models.CharField(max_length=500, help_text="The first 500 characters of the URL.")
    clicks_human = models.PositiveIntegerField(db_default=0)
    clicks_machine = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "sender_key", "campaign_key", "url"], name="link_daily_stat_key"
            ),
        ]
        indexes = [
            models.Index(fields=["sender_key", "day"], name="link_daily_stat_sender"),
            models.Index(fields=["campaign_key", "day"], name="link_daily_stat_campaign"),
        ]

    def __str__(self) -> str:
        return self.url
