"""Send later: a single email written now and sent at a chosen time (crm.scheduling)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.conf import settings
from django.db import models
from django.urls import reverse

from crm.models.emails import EmailMessage, EmailTemplate
from crm.models.records import Account, Contact, Lead, Opportunity, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


class ScheduledEmailQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> Self:
        """A sender's own; managers and admins (who see every record) see everyone's."""
        if not user.is_authenticated:
            return self.none()
        if user.has_perm("crm.view_all_records"):
            return self.all()
        return self.filter(sender=user)

    def waiting(self) -> Self:
        return self.filter(status=ScheduledEmail.Status.SCHEDULED)


class ScheduledEmail(models.Model):
    """An email to send at `send_at`. Setup's checks, privacy and the daily limit apply when it
    goes (crm.sending.email_send, called then), so the limit counts it on the day it is sent."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Not sent"

    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_emails"
    )
    # The person it was written to from their page: named as that record when it goes.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="scheduled_emails"
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="scheduled_emails"
    )
    to_addresses = models.TextField()
    cc_addresses = models.TextField(blank=True)
    bcc_addresses = models.TextField(blank=True)
    subject = models.CharField(max_length=998)
    html_body = models.TextField()
    related_account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    related_opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="scheduled"
    )
    reply_to = models.ForeignKey(
        EmailMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    forward = models.BooleanField(default=False)
    send_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    email = models.ForeignKey(
        EmailMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduledEmailQuerySet.as_manager()

    class Meta:
        ordering = ["send_at", "pk"]
        indexes = [
            # Beat's due query: the waiting ones whose time has come.
            models.Index(fields=["status", "send_at"], name="scheduled_email_due"),
            # The Scheduled page: a sender's own, soonest first.
            models.Index(fields=["sender", "status", "send_at"], name="scheduled_email_sender"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    def get_absolute_url(self) -> str:
        return reverse("crm:scheduled_edit", args=[self.pk])

    @property
    def person(self) -> Contact | Lead | None:
        return self.contact or self.lead
