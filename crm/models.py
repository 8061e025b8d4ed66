"""crm's records: Accounts, Contacts, Leads, Opportunities, Tasks, EmailMessages and their
recipients, tracked links, the suppression list, privacy changes, Setup, the email log and the
daily rollups. One cohesive file: the app's tables with their QuerySets, which greps well."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


class Role(models.TextChoices):
    """The groups created by migration 0002; their permissions are listed there."""

    REP = "Sales Rep"
    MANAGER = "Sales Manager"
    ADMIN = "Admin"


class User(AbstractUser):
    class Meta:
        verbose_name = "user"
        permissions = [
            ("view_all_records", "Can see every rep's records"),
            ("view_dashboards", "Can open the manager dashboards"),
            ("manage_setup", "Can change the org's Setup"),
        ]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def sees_all_records(self) -> bool:
        return self.has_perm("crm.view_all_records")


class OwnedQuerySet(models.QuerySet):
    """Records have an owner; a rep sees their own, a manager or admin sees all."""

    def owned_by(self, user: User) -> Self:
        return self.filter(owner=user)

    def visible_to(self, user: User | AnonymousUser) -> Self:
        if not user.is_authenticated:
            return self.none()
        if user.has_perm("crm.view_all_records"):
            return self.all()
        return self.filter(owner=user)


class OwnedRecord(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="Owner"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def get_absolute_url(self) -> str:
        raise NotImplementedError  # each record kind names its own page


class EmailableQuerySet(OwnedQuerySet):
    def with_email(self, address: str) -> Self:
        return self.filter(email__iexact=address.strip())


class Person(OwnedRecord):
    """Fields a Contact and a Lead share: a name, an address to email and the privacy link."""

    first_name = models.CharField(max_length=40, blank=True)
    last_name = models.CharField(max_length=80)
    title = models.CharField(max_length=128, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    individual = models.ForeignKey(
        "privacy.Individual",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person's data-privacy record (Don't Track, Don't Process, ...).",
    )
    has_opted_out_of_email = models.BooleanField(
        "Email Opt Out", default=False, help_text="The person does not want list email."
    )
    email_bounced_at = models.DateTimeField("Email bounced date", null=True, blank=True)
    email_bounced_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def email_is_bounced(self) -> bool:
        return self.email_bounced_at is not None


class Account(OwnedRecord):
    class Industry(models.TextChoices):
        AGRICULTURE = "Agriculture"
        BANKING = "Banking"
        EDUCATION = "Education"
        ENERGY = "Energy"
        HEALTHCARE = "Healthcare"
        MANUFACTURING = "Manufacturing"
        MEDIA = "Media"
        RETAIL = "Retail"
        TECHNOLOGY = "Technology"
        OTHER = "Other"

    name = models.CharField(max_length=255)
    is_person_account = models.BooleanField(
        "Person account", default=False, help_text="This account is one person, not a company."
    )
    website = models.URLField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    industry = models.CharField(max_length=40, choices=Industry.choices, blank=True)
    billing_city = models.CharField(max_length=80, blank=True)
    billing_country = models.CharField(max_length=80, blank=True)
    description = models.TextField(blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            # The rep's account list: their own accounts by name.
            models.Index(fields=["owner", "name"], name="account_owner_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:account_detail", args=[self.pk])

    @property
    def person_contact(self) -> Contact | None:
        """A person account's own Contact (the person it is)."""
        if not self.is_person_account:
            return None
        return self.contacts.order_by("pk").first()


class Contact(Person):
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    mailing_city = models.CharField(max_length=80, blank=True)
    mailing_country = models.CharField(max_length=80, blank=True)

    objects = EmailableQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        indexes = [
            models.Index(fields=["owner", "last_name"], name="contact_owner_name"),
            # Matching an address to its Contact (`email__iexact`): sending, bounces, replies.
            models.Index(Upper("email"), name="contact_email_upper"),
        ]

    def get_absolute_url(self) -> str:
        return reverse("crm:contact_detail", args=[self.pk])


class Lead(Person):
    class Status(models.TextChoices):
        OPEN = "open", "Open - Not Contacted"
        WORKING = "working", "Working - Contacted"
        CONVERTED = "converted", "Closed - Converted"
        NOT_CONVERTED = "not_converted", "Closed - Not Converted"

    class Source(models.TextChoices):
        WEB = "Web"
        PHONE = "Phone Inquiry"
        REFERRAL = "Partner Referral"
        TRADE_SHOW = "Trade Show"
        OTHER = "Other"

    company = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    lead_source = models.CharField(max_length=40, choices=Source.choices, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True, editable=False)
    converted_account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    converted_contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    converted_opportunity = models.ForeignKey(
        "Opportunity",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    objects = EmailableQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        indexes = [
            models.Index(fields=["owner", "status"], name="lead_owner_status"),
            # Matching an address to its Lead (`email__iexact`): sending, bounces, replies.
            models.Index(Upper("email"), name="lead_email_upper"),
        ]

    def get_absolute_url(self) -> str:
        return reverse("crm:lead_detail", args=[self.pk])

    @property
    def is_converted(self) -> bool:
        return self.status == self.Status.CONVERTED

    @transaction.atomic
    def convert(
        self,
        *,
        account: Account | None = None,
        opportunity_name: str = "",
        owner: User | None = None,
    ) -> tuple[Account, Contact, Opportunity | None]:
        """Turn the lead into an Account (new or given), a Contact and optionally an Opportunity."""
        if self.is_converted:
            raise ValueError("This lead is already converted.")
        owner = owner or self.owner
        if account is None:
            account = Account.objects.create(name=self.company, owner=owner, phone=self.phone)
        contact = Contact.objects.create(
            owner=owner,
            account=account,
            first_name=self.first_name,
            last_name=self.last_name,
            title=self.title,
            email=self.email,
            phone=self.phone,
            individual=self.individual,
            has_opted_out_of_email=self.has_opted_out_of_email,
            email_bounced_at=self.email_bounced_at,
            email_bounced_reason=self.email_bounced_reason,
        )
        opportunity = None
        if opportunity_name:
            opportunity = Opportunity.objects.create(
                owner=owner,
                account=account,
                name=opportunity_name,
                close_date=timezone.localdate() + timedelta(days=90),
            )
            OpportunityContactRole.objects.create(
                opportunity=opportunity, contact=contact, is_primary=True
            )
        self.status = self.Status.CONVERTED
        self.converted_at = timezone.now()
        self.converted_account = account
        self.converted_contact = contact
        self.converted_opportunity = opportunity
        self.save(
            update_fields=[
                "status",
                "converted_at",
                "converted_account",
                "converted_contact",
                "converted_opportunity",
                "updated_at",
            ]
        )
        return account, contact, opportunity


class OpportunityQuerySet(OwnedQuerySet):
    def open(self) -> Self:
        return self.exclude(stage__in=Opportunity.CLOSED_STAGES)


class Opportunity(OwnedRecord):
    class Stage(models.TextChoices):
        PROSPECTING = "prospecting", "Prospecting"
        QUALIFICATION = "qualification", "Qualification"
        NEEDS_ANALYSIS = "needs_analysis", "Needs Analysis"
        PROPOSAL = "proposal", "Proposal/Price Quote"
        NEGOTIATION = "negotiation", "Negotiation/Review"
        CLOSED_WON = "closed_won", "Closed Won"
        CLOSED_LOST = "closed_lost", "Closed Lost"

    # The probability each stage implies, as Salesforce's default sales process sets it.
    STAGE_PROBABILITY = {
        Stage.PROSPECTING: 10,
        Stage.QUALIFICATION: 20,
        Stage.NEEDS_ANALYSIS: 30,
        Stage.PROPOSAL: 60,
        Stage.NEGOTIATION: 80,
        Stage.CLOSED_WON: 100,
        Stage.CLOSED_LOST: 0,
    }
    CLOSED_STAGES = (Stage.CLOSED_WON, Stage.CLOSED_LOST)

    name = models.CharField(max_length=120)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="opportunities", null=True, blank=True
    )
    amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.PROSPECTING)
    probability = models.PositiveSmallIntegerField(
        "Probability (%)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Leave empty to use the stage's usual probability.",
    )
    close_date = models.DateField()
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
        verbose_name="Primary campaign source",
    )
    contacts: models.ManyToManyField[Contact, OpportunityContactRole] = models.ManyToManyField(
        Contact, through="OpportunityContactRole", related_name="opportunities"
    )

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        ordering = ["close_date", "pk"]
        verbose_name_plural = "opportunities"
        indexes = [
            models.Index(fields=["owner", "close_date"], name="opportunity_owner_close"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.probability is None:
            self.probability = self.STAGE_PROBABILITY[self.Stage(self.stage)]
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "probability"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("crm:opportunity_detail", args=[self.pk])

    @property
    def is_closed(self) -> bool:
        return self.stage in self.CLOSED_STAGES

    @property
    def is_won(self) -> bool:
        return self.stage == self.Stage.CLOSED_WON


class OpportunityContactRole(models.Model):
    class RoleName(models.TextChoices):
        DECISION_MAKER = "Decision Maker"
        ECONOMIC_BUYER = "Economic Buyer"
        EVALUATOR = "Evaluator"
        INFLUENCER = "Influencer"
        TECHNICAL_BUYER = "Technical Buyer"
        OTHER = "Other"

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="roles")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=40, choices=RoleName.choices, blank=True)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "contact"], name="contact_role_once_per_opportunity"
            ),
            models.UniqueConstraint(
                fields=["opportunity"],
                condition=Q(is_primary=True),
                name="one_primary_contact_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ({self.role or 'no role'}) on {self.opportunity}"


class TaskQuerySet(OwnedQuerySet):
    def open(self) -> Self:
        return self.exclude(status=Task.Status.COMPLETED)

    def overdue(self, today: date | None = None) -> Self:
        return self.open().filter(due_date__lt=today or timezone.localdate())


class Task(OwnedRecord):
    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not Started"
        IN_PROGRESS = "in_progress", "In Progress"
        WAITING = "waiting", "Waiting on someone else"
        DEFERRED = "deferred", "Deferred"
        COMPLETED = "completed", "Completed"

    class Priority(models.TextChoices):
        HIGH = "high", "High"
        NORMAL = "normal", "Normal"
        LOW = "low", "Low"

    class Subtype(models.TextChoices):
        TASK = "task", "Task"
        EMAIL = "email", "Email"
        LIST_EMAIL = "list_email", "List Email"
        CALL = "call", "Call"

    class Kind(models.TextChoices):
        """Who made the task: a person, or Openrate turning silence or interest into work."""

        REGULAR = "regular", "Task"
        FOLLOW_UP = "follow_up", "Follow-up"
        ENGAGEMENT_ALERT = "engagement_alert", "Engagement alert"

    subject = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_STARTED)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    subtype = models.CharField(max_length=20, choices=Subtype.choices, default=Subtype.TASK)
    due_date = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    who_contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    who_lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    what_account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    what_opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    kind = models.CharField(
        max_length=20, choices=Kind.choices, default=Kind.REGULAR, editable=False
    )
    alert_date = models.DateField(
        null=True,
        blank=True,
        editable=False,
        help_text="The day an engagement alert is for: a record gets at most one a day.",
    )

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["due_date", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(who_contact__isnull=False, who_lead__isnull=False),
                name="task_who_is_contact_or_lead",
            ),
            models.CheckConstraint(
                condition=~Q(what_account__isnull=False, what_opportunity__isnull=False),
                name="task_what_is_account_or_opportunity",
            ),
            # Follow-ups and alerts are inserted with ON CONFLICT DO NOTHING: these partial
            # unique indexes, not a check before the insert, keep concurrent runs from doubling.
            *(
                models.UniqueConstraint(
                    fields=[field],
                    condition=Q(kind="follow_up") & ~Q(status="completed"),
                    name=f"one_open_follow_up_per_{name}",
                )
                for field, name in (
                    ("who_contact", "contact"),
                    ("who_lead", "lead"),
                    ("what_opportunity", "opportunity"),
                )
            ),
            *(
                models.UniqueConstraint(
                    fields=[field, "alert_date"],
                    condition=Q(kind="engagement_alert"),
                    name=f"one_engagement_alert_per_{name}_per_day",
                )
                for field, name in (("who_contact", "contact"), ("who_lead", "lead"))
            ),
        ]
        indexes = [
            # "My open tasks": a rep's tasks by status and due date.
            models.Index(fields=["owner", "status", "due_date"], name="task_owner_status_due"),
        ]

    def __str__(self) -> str:
        return self.subject

    def get_absolute_url(self) -> str:
        return reverse("crm:task_detail", args=[self.pk])

    @property
    def is_completed(self) -> bool:
        return self.status == self.Status.COMPLETED

    @property
    def who(self) -> Contact | Lead | None:
        return self.who_contact or self.who_lead

    @property
    def what(self) -> Account | Opportunity | None:
        return self.what_account or self.what_opportunity

    def complete(self) -> None:
        self.status = self.Status.COMPLETED
        self.completed_at = timezone.now()
        self.save(update_fields=["status", "completed_at", "updated_at"])


class ActivityMetric(models.Model):
    """What a record's activity adds up to: one row per Contact, Lead, Account and Opportunity.

    Written only by `crm.activity.activity_metrics_recompute` (set-based SQL). An Account and an
    Opportunity roll up their contacts' metrics (an Opportunity's are its contact roles') plus
    the tasks logged on them. Human opens and clicks count as activity; machine ones never do.
    """

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    lead = models.OneToOneField(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    opportunity = models.OneToOneField(
        Opportunity, on_delete=models.CASCADE, null=True, blank=True, related_name="activity"
    )
    first_email_at = models.DateTimeField("First email", null=True, blank=True)
    last_email_sent_at = models.DateTimeField("Last email sent", null=True, blank=True)
    last_email_received_at = models.DateTimeField("Last email received", null=True, blank=True)
    last_activity_at = models.DateTimeField(
        "Last activity",
        null=True,
        blank=True,
        help_text="The latest email sent or received, task or call done, human open or click.",
    )
    emails_sent_30d = models.PositiveIntegerField("Emails sent (30 days)", default=0)
    emails_received_30d = models.PositiveIntegerField("Emails received (30 days)", default=0)
    human_opens_30d = models.PositiveIntegerField("Opens (30 days)", default=0)
    human_clicks_30d = models.PositiveIntegerField("Clicks (30 days)", default=0)
    activities_30d = models.PositiveIntegerField(
        "Activities (30 days)",
        default=0,
        help_text="Emails sent and received, tasks and calls done, human opens and clicks.",
    )
    inactive_days = models.PositiveIntegerField(
        "Days without activity",
        default=0,
        help_text="Whole days since the last activity (since the record was created if none), "
        "as of the last recompute.",
    )
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "activity metric"
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    contact__isnull=False,
                    lead__isnull=True,
                    account__isnull=True,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=False,
                    account__isnull=True,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=True,
                    account__isnull=False,
                    opportunity__isnull=True,
                )
                | Q(
                    contact__isnull=True,
                    lead__isnull=True,
                    account__isnull=True,
                    opportunity__isnull=False,
                ),
                name="activity_metric_is_for_one_record",
            ),
        ]

    def __str__(self) -> str:
        return f"Activity of {self.record}"

    @property
    def record(self) -> Contact | Lead | Account | Opportunity | None:
        return self.contact or self.lead or self.account or self.opportunity


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

    class Source(models.TextChoices):
        SINGLE = "single", "Single email"
        LIST = "list", "List email"
        AUTOMATION = "automation", "Automated email"

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
    message_date = models.DateTimeField(null=True, blank=True, help_text="When it was sent.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EmailMessageQuerySet.as_manager()

    class Meta:
        ordering = ["-message_date", "-pk"]
        indexes = [
            # Threading replies: In-Reply-To / References name a Message-ID.
            models.Index(fields=["message_identifier"], name="email_message_identifier"),
            # The email log and the rep's sent list: newest first by sender.
            models.Index(fields=["sender", "-message_date"], name="email_sender_date"),
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
    sent_at = models.DateTimeField(null=True, blank=True)
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
    last_clicked_link = models.ForeignKey(
        "TrackedLink", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
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
        return self.human_opens > 0


class EmailTemplate(models.Model):
    """A reusable email with merge fields such as {{first_name}} (see mailkit.merge)."""

    name = models.CharField(max_length=120, unique=True)
    subject = models.CharField(max_length=998)
    html_body = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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


class PrivacyChange(models.Model):
    """A change to a person's privacy choices, shown on their timeline: who, when, what."""

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="privacy_changes"
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="privacy_changes"
    )
    field = models.CharField(max_length=40)
    label = models.CharField(max_length=80, help_text="As people know it, e.g. Don't Track.")
    value = models.BooleanField()
    source = models.CharField(
        max_length=40, help_text="Where it was changed, e.g. the record page or an unsubscribe."
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False, lead__isnull=True)
                | Q(contact__isnull=True, lead__isnull=False),
                name="privacy_change_is_for_a_contact_or_a_lead",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {'on' if self.value else 'off'}"


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
        help_text="No access sends nothing; System email only sends password resets and "
        "other system mail but no rep or list email.",
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
            # The email log and retention: events by time.
            models.Index(fields=["occurred_at"], name="email_event_occurred_at"),
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
