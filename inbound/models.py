"""Inbound mail as it was received, and what Openrate made of it."""

from django.db import models


class InboundMessage(models.Model):
    """Every message that came back (bounce, complaint, auto-reply, reply, other), kept as received.

    One that matches no email Openrate sent is kept with status Unmatched for a person to look at;
    the fingerprint makes processing the same message twice a no-op.
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
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            # "What came back" lists and the unmatched queue: newest first by status.
            models.Index(fields=["status", "-received_at"], name="inbound_status_received"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject or self.message_id}"
