"""Emails and their recipients: EmailMessage, one EmailMessageRelation per address, the tracked
links, templates, and the suppression list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
from crm.models.records import Account, Contact, Lead, Opportunity, User


class EmailMessageQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> Self:
        """Every email for those who see all records; else what they sent or their people got."""
        if not user.is_authenticated:
            return self.none()
        if user.has_perm("crm.view_all_records"):
            return self.all()
        theirs = EmailMessageRelation.objects.filter(email=models.OuterRef("pk")).filter(
            Q(contact__owner=user) | Q(lead__owner=user)
        )
        return self.filter(Q(sender=user) | models.Exists(theirs))


class EmailMessage(models.Model):
    """One email, sent or received; each address on it has an EmailMessageRelation."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        RECEIVED = "received", "Received"
        READ = "read", "Read"
        REPLIED = "replied", "Replied"
        FORWARDED = "forwarded", "Forwarded"

    class Delivery(models.TextChoices):
        """Where an outgoing email is in the send pipeline (Status is Salesforce's field)."""

        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        PARTIAL = "partial", "Partly sent"
        FAILED = "failed", "Failed"
        # Its copies were left Sending by a worker that stopped mid-send (crm.delivery
        # UNCONFIRMED): they may or may not have gone out, and are never sent again.
        UNCONFIRMED = "unconfirmed", "Unconfirmed"

    class Source(models.TextChoices):
        SINGLE = "single", "Single email"
        LIST = "list", "List email"
        AUTOMATION = "automation", "Automated email"
        CAPTURED = "captured", "Captured from a mailbox"

    subject = models.CharField(max_length=998, blank=True)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    from_address = models.EmailField()
    from_name = models.CharField(max_length=255, blank=True)
    to_addresses = models.TextField(blank=True, help_text="As written on the message.")
    cc_addresses = models.TextField(blank=True)
    bcc_addresses = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    delivery_status = models.CharField(max_length=12, choices=Delivery.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.SINGLE)
    incoming = models.BooleanField(default=False)
    is_tracked = models.BooleanField(default=False)
    is_opened = models.BooleanField(default=False)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    times_opened = models.PositiveIntegerField(default=0)
    times_clicked = models.PositiveIntegerField(default=0)
    is_bounced = models.BooleanField(default=False)
    is_auto_reply = models.BooleanField(
        default=False, help_text="An automatic answer (out of office...), never a reply."
    )
    message_identifier = models.CharField("Message-ID", max_length=255, blank=True)
    thread_identifier = models.CharField(max_length=255, blank=True)
    reply_to_message = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    related_account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    related_opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sent_emails",
    )
    # A list email's campaign; reports and the member funnel group by it.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    # Captured email (source "captured"): the user whose mailbox or Bcc address it came from.
    captured_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="captured_emails",
    )
    # The library template it was written from, if any (sequences and reports group by it).
    template = models.ForeignKey(
        "crm.EmailTemplate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    message_date = models.DateTimeField(null=True, blank=True, help_text="When it was sent.")
    body_removed_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When retention (or a forget) removed the body; the email's record stays.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EmailMessageQuerySet.as_manager()

    class Meta:
        ordering = ["-message_date", "-pk"]
        indexes = [
            # Threading replies: In-Reply-To / References name a Message-ID.
            models.Index(fields=["message_identifier"], name="email_message_identifier"),
            # The email page's conversation: the emails of one thread.
            models.Index(fields=["thread_identifier"], name="email_thread_identifier"),
            # The email log and the rep's sent list: newest first by sender.
            models.Index(fields=["sender", "-message_date"], name="email_sender_date"),
            # Retention (dataprotection.retention): bodies not yet removed, oldest first.
            models.Index(
                Coalesce("message_date", "created_at"),
                condition=Q(body_removed_at__isnull=True) & ~Q(html_body="", text_body=""),
                name="email_body_retention",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    def get_absolute_url(self) -> str:
        return reverse("tracking:email_detail", args=[self.pk])


class EmailMessageRelation(models.Model):
    """One address on an email, with that recipient's own delivery and engagement."""

    class Type(models.TextChoices):
        FROM = "from", "From"
        TO = "to", "To"
        CC = "cc", "Cc"
        BCC = "bcc", "Bcc"

    class Delivery(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        REFUSED = "refused", "Not sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"

    class Bounce(models.TextChoices):
        HARD = "hard", "Hard"
        SOFT = "soft", "Soft"

    # The untracked_reason of a copy sent with Enhanced Email off. Such a send is logged as a
    # completed Email task (crm.sending), which is its activity; the copy is kept only to deliver
    # it and match what comes back, so activity metrics and the timeline leave it out.
    LOGGED_AS_TASK = "Enhanced Email is off"

    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="relations")
    relation_type = models.CharField(max_length=4, choices=Type.choices)
    address = models.EmailField()
    name = models.CharField(max_length=255, blank=True)
    # No single-column indexes: relation_contact_email and relation_lead_email start with these
    # columns, and every index more is one more entry written on each update ingestion cannot
    # make in place.
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email_relations",
        db_index=False,
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email_relations",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email_relations",
    )
    # Delivery of this recipient's own copy.
    delivery_status = models.CharField(
        max_length=10, choices=Delivery.choices, default=Delivery.PENDING
    )
    refusal_reason = models.CharField(max_length=255, blank=True)
    message_id = models.CharField("Message-ID of this copy", max_length=255, blank=True)
    # The merge values this copy was filled with, kept when the email has merge fields, so the
    # copy can be shown exactly as it was sent after the person's record changes.
    merge_values = models.JSONField(default=dict, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    # False for copies sent before tokens had purposes (crm.tokens): their one token still
    # unsubscribes and matches what comes back. Migration 0012 marks them; new copies are True.
    tokens_by_purpose = models.BooleanField(default=True, editable=False)
    # Engagement: human activity and machine activity are counted apart.
    is_tracked = models.BooleanField(default=False)
    untracked_reason = models.CharField(
        max_length=80, blank=True, help_text="Why this copy carries no tracking, e.g. Don't Track."
    )
    first_opened_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    human_opens = models.PositiveIntegerField(default=0)
    machine_opens = models.PositiveIntegerField(default=0)
    human_clicks = models.PositiveIntegerField(default=0)
    machine_clicks = models.PositiveIntegerField(default=0)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    # For the timeline at a glance ("Clicked pricing link", "Machine open only (Apple Privacy)").
    # Always one of this copy's email's links (ingestion takes it from the copy's signed token),
    # and links go only with their email, which takes this copy with it: so no constraint, no
    # index and nothing to do on a link's deletion. Ingestion changes it on most clicks; with
    # neither, that update is HOT (no index entry) and runs no foreign-key check per row.
    last_clicked_link = models.ForeignKey(
        "TrackedLink",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    machine_open_label = models.CharField(
        max_length=12, blank=True, help_text="The label of the latest machine open."
    )
    # What came back.
    bounce_category = models.CharField(max_length=4, choices=Bounce.choices, blank=True)
    bounce_status = models.CharField(max_length=16, blank=True)
    bounce_diagnostic = models.TextField(blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(contact__isnull=False, lead__isnull=False),
                name="relation_is_contact_or_lead",
            ),
        ]
        indexes = [
            # A Contact's and a Lead's timeline: their emails, newest first.
            models.Index(fields=["contact", "email"], name="relation_contact_email"),
            models.Index(fields=["lead", "email"], name="relation_lead_email"),
            # Reply matching by the Message-ID of one recipient's copy.
            models.Index(fields=["message_id"], name="relation_message_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_relation_type_display()}: {self.address}"

    @property
    def is_opened(self) -> bool:
        """A person opened this copy: a human open, or a human click (images were blocked)."""
        return self.human_opens > 0 or self.human_clicks > 0

    @property
    def opened_by_click(self) -> bool:
        """Opened, shown by a click: clicked by a person, the open pixel never loaded."""
        return self.human_opens == 0 and self.human_clicks > 0


class EmailTemplateQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> Self:
        """The shared templates and the user's own private ones, archived ones included."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(is_private=False) | Q(owner=user))

    def usable_by(self, user: User | AnonymousUser) -> Self:
        """What this user may write an email from: shared and their own private, not archived."""
        return self.visible_to(user).filter(is_active=True)


class EmailTemplate(models.Model):
    """A reusable email with merge fields such as {{first_name}} (see mailkit.merge).

    Shared templates are written by managers and admins and used by everyone; a private one is
    its owner's alone. One in use is archived (is_active off), never deleted.
    """

    name = models.CharField(max_length=120)
    folder = models.CharField(
        max_length=80, blank=True, help_text="Groups templates in the library."
    )
    subject = models.CharField(max_length=998)
    html_body = models.TextField()
    is_private = models.BooleanField(
        "private", default=False, help_text="Only its owner sees and uses it."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email_templates",
        help_text="Who wrote it; a private template's only user.",
    )
    is_active = models.BooleanField(default=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EmailTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["folder", "name", "pk"]
        permissions = [("manage_shared_templates", "Can write and archive shared email templates")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), condition=Q(is_private=False), name="template_shared_name"
            ),
            models.UniqueConstraint(
                "owner", Lower("name"), condition=Q(is_private=True), name="template_private_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:template_detail", args=[self.pk])

    def editable_by(self, user: User) -> bool:
        """A private template by its owner; a shared one by managers and admins."""
        if self.is_private:
            return self.owner_id == user.pk
        return user.has_perm("crm.manage_shared_templates")


class TrackedLink(models.Model):
    """One distinct destination in one email; a click token names it, the redirect reads it.

    Rows are immutable once the email is sent (the fast path caches `url` by id for that reason);
    the click counters are the ingestion's, never the fast path's.
    """

    email = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="tracked_links")
    url = models.TextField()
    position = models.PositiveIntegerField(help_text="Order of first appearance in the email.")
    is_honeypot = models.BooleanField(
        default=False, help_text="The hidden link no person can see: only machines follow it."
    )
    human_clicks = models.PositiveIntegerField(default=0)
    machine_clicks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["email", "position"]
        constraints = [
            models.UniqueConstraint(fields=["email", "position"], name="link_position_per_email"),
        ]

    def __str__(self) -> str:
        return self.url


class EmailSuppression(models.Model):
    """An address Openrate no longer emails in bulk: it bounced hard, soft too often, or complained.

    List email skips it; the composer warns. Sending a single email to it again (the rep has
    fixed it) lifts it; if it bounces again it comes back.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCES = "soft_bounces", "Repeated soft bounces"
        COMPLAINT = "complaint", "Spam complaint"

    address = models.EmailField(unique=True, help_text="Lower-cased.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"


class DailySendCount(models.Model):
    """Recipients sent to (or queued) on one day, list or single email: what Setup's daily
    limits count. Kept as a counter that each send adds to (crm.sending), so checking the limit
    costs one row whatever has been sent today; a day's row starts from the emails already
    recorded that day (the counter's first day, or a row lost)."""

    day = models.DateField()
    is_list = models.BooleanField()
    used = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "is_list"], name="daily_send_count_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.used} {'list' if self.is_list else 'single'}"
