"""Inbound mail as it was received, and what Openrate made of it."""

from django.conf import settings
from django.db import models

# What an admin may apply from the Unmatched queue (inbound.review).
APPLICABLE_KINDS = ("bounce", "complaint")


class InboundMessage(models.Model):
    """Every message that came back (bounce, complaint, auto-reply, reply, other), kept as received.

    One with no proof that it answers an email Openrate sent is kept with status Unmatched for a
    person to look at, with what it reports (`report`); an admin may apply a bounce or complaint
    from there (inbound.review), once. The fingerprint makes processing the same message twice a
    no-op.
    """

    class Source(models.TextChoices):
        IMAP = "imap", "IMAP mailbox"
        PIPE = "pipe", "MTA pipe"
        WEBHOOK = "webhook", "ESP webhook"

    class Status(models.TextChoices):
        PROCESSED = "processed", "Processed"
        UNMATCHED = "unmatched", "Unmatched"

    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the message.")
    source = models.CharField(max_length=10, choices=Source.choices)
    kind = models.CharField(max_length=12)
    status = models.CharField(max_length=10, choices=Status.choices)
    note = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    from_address = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    relation = models.ForeignKey(
        "crm.EmailMessageRelation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )
    created_email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    raw = models.BinaryField(help_text="The message as received (cut at 2 MB).")
    report = models.JSONField(
        default=dict,
        blank=True,
        help_text="What it reports: the recipients it names (address, status, diagnostic, hard) "
        "and a complaint's feedback type.",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The admin who applied an Unmatched message's report.",
    )

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            # "What came back" lists and the unmatched queue: newest first by status.
            models.Index(fields=["status", "-received_at"], name="inbound_status_received"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject or self.message_id}"

    @property
    def addresses(self) -> list[str]:
        """The addresses its report names."""
        recipients = self.report.get("recipients") or []
        return [r["address"] for r in recipients if r.get("address")]

    def can_be_applied(self) -> bool:
        """An Unmatched bounce or complaint naming an address, not applied yet."""
        return (
            self.status == self.Status.UNMATCHED
            and self.applied_at is None
            and self.kind in APPLICABLE_KINDS
            and bool(self.addresses)
        )
