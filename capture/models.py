"""A user's connected mailbox, where each of its folders was read up to, what was captured from
it (the dedupe ledger) and the attachments recorded on captured email."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Mailbox(models.Model):
    """One user's IMAP mailbox: where it is, its encrypted app password and how syncing goes."""

    class Security(models.TextChoices):
        TLS = "tls", "TLS (IMAPS, usually port 993)"
        STARTTLS = "starttls", "STARTTLS (usually port 143)"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailbox"
    )
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.TLS)
    username = models.CharField(max_length=255)
    # The app password, a Fernet token (capture.credentials): never shown again, never logged.
    password_token = models.TextField(editable=False)
    inbox_folder = models.CharField(max_length=255, default="INBOX")
    sent_folder = models.CharField(max_length=255, blank=True)
    # Mail the user files here is never captured (and is removed if it was): see README.
    private_folder = models.CharField(max_length=255, blank=True)
    # The folders the server listed at the last connect or test (for the folder choice).
    known_folders = models.JSONField(default=list, blank=True, editable=False)
    # The user's other addresses (aliases), one a line: never a "party" of their own mail.
    other_addresses = models.TextField(blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    # Sync status, shown on the Mailbox page and the admin's list.
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    messages_captured = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures_in_a_row = models.PositiveSmallIntegerField(default=0)
    paused_at = models.DateTimeField(null=True, blank=True)
    # The sync lock: set by a conditional UPDATE when a sync claims the mailbox, cleared after.
    sync_started_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.username} on {self.host}"

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class FolderState(models.Model):
    """How far one folder of a mailbox has been read: its UIDVALIDITY and the last UID seen."""

    class Role(models.TextChoices):
        INBOX = "inbox", "Inbox"
        SENT = "sent", "Sent"
        PRIVATE = "private", "Private"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    role = models.CharField(max_length=8, choices=Role.choices)
    name = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(default=0)
    last_uid = models.BigIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mailbox", "role"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "role"], name="one_state_per_folder_role"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox}: {self.name} ({self.uidvalidity}/{self.last_uid})"


class CapturedMessage(models.Model):
    """A Message-ID already seen in a user's mail: captured (with its email), skipped as
    private, or already in Openrate (its own sent copy, or captured from another user's mail).
    The unique pair keeps a message from ever being stored twice, whichever folder, sync or
    Bcc it comes through."""

    class Outcome(models.TextChoices):
        CAPTURED = "captured", "Captured"
        STORED = "stored", "Already in Openrate"
        PRIVATE = "private", "Private"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # SET_NULL: an email deleted later (a forget, a private mark) stays seen, never recaptured.
    email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    captured_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "message_id"], name="captured_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.get_outcome_display()})"


class CapturedAttachment(models.Model):
    """An attachment of a captured email: its name and size; its contents only when Setup
    keeps them (and it is small enough)."""

    email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.CASCADE, related_name="captured_attachments"
    )
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127, blank=True)
    size = models.PositiveIntegerField(help_text="In bytes, decoded.")
    content = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["email", "pk"]

    def __str__(self) -> str:
        return self.name
