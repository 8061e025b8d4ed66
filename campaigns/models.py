from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse


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

    def get_absolute_url(self) -> str:
        return reverse("admin:campaigns_campaign_change", args=[self.pk])
