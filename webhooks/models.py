"""Outgoing webhooks: the endpoints admins register, one Delivery per (endpoint, event), each
Attempt at sending it, and the Cursors that say how far each event source has been read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webhooks.signing import secret_new


class EventType(models.TextChoices):
    """What an endpoint may ask for. Records' types are sent as `<kind>.created` / `.updated`
    (contact, lead, account, opportunity)."""

    EMAIL_SENT = "email.sent", "Email sent"
    EMAIL_DELIVERED = "email.delivered", "Email delivered"
    EMAIL_OPENED = "email.opened", "Email opened"
    EMAIL_CLICKED = "email.clicked", "Link clicked"
    EMAIL_BOUNCED = "email.bounced", "Email bounced"
    EMAIL_COMPLAINED = "email.complained", "Spam complaint"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed", "Unsubscribed"
    EMAIL_REPLIED = "email.replied", "Replied"
    RECORD_CREATED = "record.created", "Record created"
    RECORD_UPDATED = "record.updated", "Record updated"


class EndpointQuerySet(models.QuerySet["Endpoint"]):
    def active(self) -> EndpointQuerySet:
        return self.filter(is_active=True)


class Endpoint(models.Model):
    """A URL an admin registered, the events it wants and the secret its deliveries are signed
    with."""

    name = models.CharField(max_length=100)
    url = models.URLField("URL", max_length=500)
    events = models.JSONField(default=list, help_text="The EventType values this endpoint wants.")
    include_machine = models.BooleanField(
        "Include machine events",
        default=False,
        help_text="Also send opens and clicks made by machines (Apple Mail Privacy Protection, "
        "image proxies, security scanners, bots), labelled as such.",
    )
    secret = models.CharField(max_length=100, default=secret_new, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=255, blank=True, editable=False)
    # The start of an unbroken run of failed attempts (cleared by any success): past a day of
    # it, the endpoint is disabled.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Told (with a task) when the endpoint is disabled.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("webhooks:endpoint_detail", args=[self.pk])

    def wants(self, event_type: str, *, machine: bool = False) -> bool:
        """Whether a delivery of this type is made for this endpoint."""
        return event_type in self.events and (self.include_machine or not machine)

    def event_labels(self) -> list[str]:
        return [str(label) for value, label in EventType.choices if value in self.events]


class Delivery(models.Model):
    """One event for one endpoint: its payload as it will be (or was) sent, and where its
    sending stands. Made by `webhooks.events`, sent by `webhooks.dispatch`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # What the event is, so collecting it again makes no second delivery ("email_event:12").
    event_key = models.CharField(max_length=100)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    # The address the payload names (lower case), so a forget finds it without reading JSON.
    address = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The dispatcher run that claimed it: set with the claim, read back to find its batch.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_key"], name="delivery_event_once"),
        ]
        indexes = [
            # The dispatcher: pending deliveries that are due.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            # A forget: deliveries naming an address.
            models.Index(fields=["address"], name="delivery_address"),
            # The endpoint's delivery log, newest first.
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id}"

    def get_absolute_url(self) -> str:
        return reverse("webhooks:delivery_detail", args=[self.pk])

    @property
    def message_id(self) -> str:
        """The stable `webhook-id`: the same on every retry, so a receiver can drop repeats."""
        return f"msg_{self.pk}"


class Attempt(models.Model):
    """One try at sending a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_set")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    response_start = models.CharField("Response (first 200 characters)", max_length=200, blank=True)

    class Meta:
        ordering = ["attempted_at", "pk"]
        indexes = [
            # A delivery's attempts, in order.
            models.Index(fields=["delivery", "attempted_at"], name="attempt_delivery"),
        ]

    def __str__(self) -> str:
        return f"{self.status_code or self.error} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Cursor(models.Model):
    """How far one event source has been read: the last id (and, for records, the last
    updated_at) turned into deliveries."""

    source = models.CharField(max_length=40, unique=True)
    last_id = models.BigIntegerField(default=0)
    last_time = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.source}: {self.last_id}"
