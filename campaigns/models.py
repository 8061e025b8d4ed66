"""Campaigns, their member statuses and members, list emails and their recipients, influence."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class CampaignQuerySet(models.QuerySet):
    def active(self) -> "CampaignQuerySet":
        return self.filter(is_active=True)


class Campaign(models.Model):
    class Type(models.TextChoices):
        EMAIL = "email", "Email"
        WEBINAR = "webinar", "Webinar"
        CONFERENCE = "conference", "Conference"
        ADVERTISEMENT = "advertisement", "Advertisement"
        REFERRAL = "referral", "Referral Program"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In Progress"
        COMPLETED = "completed", "Completed"
        ABORTED = "aborted", "Aborted"

    name = models.CharField(max_length=80)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.EMAIL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    budgeted_cost = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    actual_cost = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    expected_revenue = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    expected_response = models.DecimalField(
        "Expected response (%)",
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(0)],
    )
    is_active = models.BooleanField("Active", default=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-start_date", "name", "pk"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        adding = self._state.adding
        with transaction.atomic():
            super().save(*args, **kwargs)
            if adding:
                CampaignMemberStatus.objects.bulk_create(
                    CampaignMemberStatus(campaign=self, **fields)
                    for fields in CampaignMemberStatus.DEFAULTS
                )

    def get_absolute_url(self) -> str:
        return reverse("campaigns:campaign_detail", args=[self.pk])

    def editable_by(self, user: Any) -> bool:
        """Its owner edits a campaign's members, statuses and sends; so do managers and admins."""
        return bool(self.owner_id == user.pk or user.has_perm("campaigns.change_campaign"))


class FunnelStep(models.IntegerChoices):
    """How far a member has come; tracking moves members forward along these, never back."""

    NONE = 0, "—"
    SENT = 1, "Sent"
    OPENED = 2, "Opened"
    CLICKED = 3, "Clicked"
    RESPONDED = 4, "Responded"


class CampaignMemberStatus(models.Model):
    """One of a campaign's member statuses (Salesforce's Campaign Member Status)."""

    DEFAULTS: tuple[dict[str, Any], ...] = (
        {"label": "Sent", "sort_order": 1, "is_default": True, "funnel_step": FunnelStep.SENT},
        {"label": "Opened", "sort_order": 2, "funnel_step": FunnelStep.OPENED},
        {"label": "Clicked", "sort_order": 3, "funnel_step": FunnelStep.CLICKED},
        {
            "label": "Responded",
            "sort_order": 4,
            "has_responded": True,
            "funnel_step": FunnelStep.RESPONDED,
        },
    )

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="statuses")
    label = models.CharField(max_length=80)
    sort_order = models.PositiveSmallIntegerField(
        help_text="Statuses read in this order; tracking only ever moves a member to a later one."
    )
    is_default = models.BooleanField(
        "Default", default=False, help_text="The status new members get."
    )
    has_responded = models.BooleanField(
        "Responded", default=False, help_text="A member with this status counts as a response."
    )
    funnel_step = models.PositiveSmallIntegerField(
        choices=FunnelStep.choices,
        default=FunnelStep.NONE,
        help_text="The tracking event that moves a member to this status.",
    )

    class Meta:
        ordering = ["campaign", "sort_order", "pk"]
        verbose_name_plural = "campaign member statuses"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="member_status_label_once"),
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(is_default=True), name="one_default_member_status"
            ),
            models.UniqueConstraint(
                fields=["campaign", "funnel_step"],
                condition=Q(funnel_step__gt=0),
                name="one_member_status_per_funnel_step",
            ),
        ]

    def __str__(self) -> str:
        return self.label


class CampaignMember(models.Model):
    """A Contact or a Lead in a campaign (never both, never twice), with its status."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="campaign_members",
    )
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.CASCADE, null=True, blank=True, related_name="campaign_members"
    )
    status = models.ForeignKey(
        CampaignMemberStatus, on_delete=models.PROTECT, related_name="members"
    )
    has_responded = models.BooleanField("Responded", default=False)
    first_responded_at = models.DateTimeField("First responded", null=True, blank=True)
    # When the person joined: campaign influence counts campaigns joined before an opportunity.
    created_at = models.DateTimeField("Member since", default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False, lead__isnull=True)
                | Q(contact__isnull=True, lead__isnull=False),
                name="campaign_member_is_contact_or_lead",
            ),
            models.UniqueConstraint(
                fields=["campaign", "contact"],
                condition=Q(contact__isnull=False),
                name="contact_once_per_campaign",
            ),
            models.UniqueConstraint(
                fields=["campaign", "lead"],
                condition=Q(lead__isnull=False),
                name="lead_once_per_campaign",
            ),
        ]
        indexes = [
            # Influence: the campaigns a contact joined, by date.
            models.Index(fields=["contact", "created_at"], name="member_contact_joined"),
            # The member funnel: members per status.
            models.Index(fields=["campaign", "status"], name="member_campaign_status"),
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.campaign_id}"

    @property
    def person(self) -> Any:
        return self.contact or self.lead


class ListEmail(models.Model):
    """One list email to a campaign's members: each member gets their own EmailMessage."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SCHEDULED = "scheduled", "Scheduled"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="list_emails")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=998)
    html_body = models.TextField()
    template = models.ForeignKey(
        "crm.EmailTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="list_emails",
    )
    # Send later: the first batch waits for this time (next_batch_at starts at it); editable
    # and cancellable until that batch takes its lease.
    send_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    next_batch_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next batch may go (rate or daily limit)."
    )
    # The batch whose copies are being delivered: set when it claims its members, cleared when
    # its delivery is over. Still set when the next run takes the lease, its worker stopped:
    # that run resumes the batch (campaigns.list_email).
    delivering_batch = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Beat's resume: the sends with work whose next batch is due.
            models.Index(fields=["status", "next_batch_at"], name="list_email_due"),
        ]

    def __str__(self) -> str:
        return self.subject

    def get_absolute_url(self) -> str:
        return reverse("campaigns:list_email_detail", args=[self.campaign_id, self.pk])

    @property
    def is_waiting(self) -> bool:
        """Scheduled for later and no batch has started (so it may still be edited)."""
        return (
            self.status == self.Status.SCHEDULED
            and self.send_at is not None
            and self.next_batch_at == self.send_at
        )


class ListEmailRecipient(models.Model):
    """One member of a list email, from queued to handed to the send pipeline (or skipped)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        HANDED = "handed", "Handed to the send pipeline"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    list_email = models.ForeignKey(ListEmail, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, null=True, related_name="+"
    )
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, null=True, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    reason = models.CharField(max_length=255, blank=True)
    email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    batch = models.UUIDField(null=True, help_text="The batch that claimed this recipient.")

    class Meta:
        ordering = ["list_email", "pk"]
        indexes = [
            # Claiming the next batch (the first queued ones in id order, read off the index
            # rather than sorting every queued row per batch), and the progress counts.
            models.Index(fields=["list_email", "state", "id"], name="list_recipient_next"),
            models.Index(fields=["batch"], name="list_recipient_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} ({self.list_email_id})"


class InfluenceModel(models.TextChoices):
    PRIMARY = "primary", "Primary Campaign Source"
    FIRST_TOUCH = "first_touch", "First Touch"
    LAST_TOUCH = "last_touch", "Last Touch"
    EVEN = "even", "Even Distribution"
    POSITION = "position", "Position-based (40/20/40)"


class CampaignInfluence(models.Model):
    """How much of an Opportunity one campaign earned under one model, through one contact."""

    opportunity = models.ForeignKey(
        "crm.Opportunity", on_delete=models.CASCADE, related_name="campaign_influence"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="influence")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    model = models.CharField(max_length=12, choices=InfluenceModel.choices)
    influence = models.DecimalField("Influence (%)", max_digits=7, decimal_places=4)
    revenue_share = models.DecimalField(max_digits=14, decimal_places=2)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["opportunity", "model", "-influence", "pk"]
        verbose_name_plural = "campaign influence"
        indexes = [
            # The influence report: a campaign's rows under one model.
            models.Index(fields=["campaign", "model"], name="influence_campaign_model"),
            models.Index(fields=["opportunity"], name="influence_opportunity"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.opportunity_id}: {self.influence}% ({self.model})"
