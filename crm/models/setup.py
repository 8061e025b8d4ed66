"""The org's Setup: one OrgSettings row, cached."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

if TYPE_CHECKING:
    pass


class OrgSettings(models.Model):
    """The org's Setup: one row, read through `OrgSettings.load()`."""

    class Deliverability(models.TextChoices):
        NO_ACCESS = "no_access", "No access"
        SYSTEM_ONLY = "system_only", "System email only"
        ALL = "all", "All email"

    CACHE_KEY = "crm:org-settings"

    enhanced_email = models.BooleanField(
        "Enhanced Email",
        default=True,
        help_text="Store sent email as Email Message records; off logs each send as a Task "
        "and tracks nothing.",
    )
    email_tracking_enabled = models.BooleanField(
        "Email tracking",
        default=True,
        help_text="Add a tracking pixel and tracked links to email so opens and clicks are "
        "recorded.",
    )
    deliverability_access = models.CharField(
        "Deliverability access level",
        max_length=12,
        choices=Deliverability.choices,
        default=Deliverability.ALL,
        help_text="All email: reps and list email send. System email only and No access both "
        "refuse every email to contacts and leads (as in Salesforce, for a sandbox or an org "
        "being set up). Openrate sends no other email of its own (sign-in has no password "
        "reset by email; alerts and follow-ups are tasks), so the two levels differ only in "
        "name today.",
    )
    enforce_email_privacy = models.BooleanField(
        "Enforce email privacy settings",
        default=True,
        help_text="Honour each person's Individual record: no email under Don't Process, "
        "no tracking under Don't Track, no list email under Don't Market.",
    )
    data_protection_in_records = models.BooleanField(
        "Make data protection details available in records",
        default=True,
        help_text="Show the person's privacy flags on Contact and Lead pages.",
    )
    daily_single_email_limit = models.PositiveIntegerField(
        "Daily single email limit",
        default=5000,
        validators=[MinValueValidator(1)],
        help_text="How many single (rep) emails the org may send per day.",
    )
    daily_list_email_limit = models.PositiveIntegerField(
        "Daily list email limit",
        default=5000,
        validators=[MinValueValidator(1)],
        help_text="How many list email recipients the org may send to per day; the rest waits "
        "for tomorrow.",
    )
    no_activity_days = models.PositiveSmallIntegerField(
        "Days without activity before a follow-up",
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="A record quiet for this many days gets a follow-up task for its owner.",
    )
    machine_open_filtering = models.BooleanField(
        "Machine-open filtering",
        default=True,
        help_text="Count only human opens and clicks; off counts Apple Privacy prefetches, image "
        "proxies and link scanners as opens and clicks, as plain Salesforce does.",
    )
    store_full_ip = models.BooleanField(
        "Store full IP addresses",
        default=False,
        help_text="Keep the whole IP of each open and click; off zeroes the last part (the last "
        "octet of IPv4, the last 80 bits of IPv6).",
    )
    internal_addresses = models.TextField(
        "Internal addresses and domains",
        blank=True,
        help_text="One per line: an address (rep@example.com) or a domain (example.com, with its "
        "subdomains). Opens and clicks on email sent to them are shown but never counted as "
        "engagement, so reps testing their own email do not inflate the rates.",
    )
    internal_ip_ranges = models.TextField(
        "Internal IP ranges",
        blank=True,
        help_text="One per line: an address or range (203.0.113.0/24, 2001:db8::/32), e.g. your "
        "offices and VPN. Opens and clicks from them are shown but never counted as engagement.",
    )
    soft_bounce_limit = models.PositiveSmallIntegerField(
        "Soft bounces before suppression",
        default=3,
        validators=[MinValueValidator(1)],
        help_text="An address that soft-bounces this many times within the window below is "
        "no longer emailed, as after a hard bounce.",
    )
    soft_bounce_window_days = models.PositiveSmallIntegerField(
        "Soft bounce window (days)",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="The window in which soft bounces are counted.",
    )
    engagement_alert_threshold = models.PositiveSmallIntegerField(
        "Opens and clicks for an engagement alert",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="A person who opens or clicks this many times within 24 hours gets their "
        "owner a task, once a day.",
    )
    scanner_window_seconds = models.PositiveSmallIntegerField(
        "Scanner time window (seconds)",
        default=10,
        validators=[MaxValueValidator(600)],
        help_text="A click this soon after delivery is a link scanner's, not a person's.",
    )
    list_email_per_minute = models.PositiveIntegerField(
        "List email rate (per minute)",
        default=0,
        validators=[MaxValueValidator(100_000)],
        help_text="At most this many list emails go out per minute; 0 means no limit.",
    )
    influence_time_frame_days = models.PositiveSmallIntegerField(
        "Campaign influence time frame (days)",
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="A campaign influences an opportunity only if the contact joined it within "
        "this many days before the opportunity was created.",
    )
    email_log_retention_months = models.PositiveSmallIntegerField(
        "Email log retention (months)",
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="Delivery, open and click events older than this are deleted every night.",
    )
    email_body_retention_months = models.PositiveSmallIntegerField(
        "Keep email bodies (months)",
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="The subject line, addresses and engagement stay; the bodies of email sent "
        "and received longer ago than this are removed every night (captured email has its own "
        "setting below).",
    )
    inbound_raw_retention_days = models.PositiveSmallIntegerField(
        "Keep inbound raw messages (days)",
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Bounces, complaints and replies are kept as received for this many days; "
        "their effects (bounce, opt-out, reply) stay.",
    )

    webhook_private_addresses = models.BooleanField(
        "Webhooks may reach private addresses",
        default=False,
        help_text="Allow outgoing webhooks to loopback, private and link-local addresses (an "
        "in-house system on your own network). Off, such addresses are refused at delivery.",
    )

    # Inbox capture (the capture app): reps' own mailboxes on the timeline.
    capture_reach_back_days = models.PositiveSmallIntegerField(
        "First mailbox sync reaches back (days)",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="When a user connects a mailbox, email this many days old or newer is "
        "captured; later syncs read only what is new.",
    )
    capture_excluded_addresses = models.TextField(
        "Never capture these addresses and domains",
        blank=True,
        help_text="One per line: an address (someone@bank.example) or a domain (bank.example). "
        "Mail with any of them is never captured, whoever else it names.",
    )
    capture_attachment_contents = models.BooleanField(
        "Keep captured attachments' contents",
        default=False,
        help_text="Off, only each attachment's name and size are recorded.",
    )
    capture_attachment_max_kb = models.PositiveIntegerField(
        "Largest captured attachment kept (KB)",
        default=1024,
        validators=[MinValueValidator(1), MaxValueValidator(25 * 1024)],
        help_text="Larger attachments are recorded by name and size only.",
    )
    captured_body_retention_months = models.PositiveSmallIntegerField(
        "Keep captured email bodies (months)",
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="Bodies of email captured from mailboxes are removed after this many months, "
        "every night; the record that the email happened stays.",
    )
    mailbox_failure_limit = models.PositiveSmallIntegerField(
        "Pause a mailbox after this many failed syncs in a row",
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Its owner is given a task to reconnect it.",
    )

    class AfterDontTrack(models.TextChoices):
        NOT_STORED = "not_stored", "Not stored"
        ANONYMOUS = "anonymous", "Counted anonymously"

    events_after_dont_track = models.CharField(
        "Opens and clicks after Don't Track",
        max_length=12,
        choices=AfterDontTrack.choices,
        default=AfterDontTrack.NOT_STORED,
        help_text="When a person turns on Don't Track after an email was sent to them: their "
        "later opens and clicks are not stored at all, or counted in the org's totals without "
        "being linked to them.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = "Setup"
        verbose_name_plural = "Setup"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="org_settings_single_row")]

    def __str__(self) -> str:
        return "Setup"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1
        super().save(*args, **kwargs)
        cache.delete(self.CACHE_KEY)

    def get_absolute_url(self) -> str:
        return reverse("crm:setup")

    @classmethod
    def load(cls) -> OrgSettings:
        """The Setup row, created with its defaults on first use; cached until it changes."""
        found: OrgSettings | None = cache.get(cls.CACHE_KEY)
        if found is None:
            found, _ = cls.objects.get_or_create(pk=1)
            # Short-lived: with the default per-process cache another process sees a change late.
            cache.set(cls.CACHE_KEY, found, timeout=10)
        return found
