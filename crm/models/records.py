"""crm's records: users and roles, Accounts, Contacts, Leads, Opportunities and their contact
roles, Tasks, and the privacy changes shown on a person's timeline, with their QuerySets."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest


def validate_time_zone(value: str) -> None:
    """A time zone the zone database knows ("Europe/Paris"), or blank for the site's."""
    if value and value not in available_timezones():
        raise ValidationError(f"“{value}” is not a time zone we know. Choose one from the list.")


class Role(models.TextChoices):
    """The groups; what each may do is crm.roles, applied after every migrate."""

    REP = "Sales Rep"
    MANAGER = "Sales Manager"
    ADMIN = "Admin"


class User(AbstractUser):
    # Changed when two-factor is turned on or off: it is part of every session's hash, so the
    # user's other sessions (opened before, perhaps by someone else) end; blank for most users.
    session_epoch = models.CharField(max_length=32, blank=True, editable=False)
    # The zone (IANA name) the user's pages show times in; blank: the site's TIME_ZONE.
    time_zone = models.CharField(
        "time zone", max_length=64, blank=True, validators=[validate_time_zone]
    )

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

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Django's own hash (the password's), plus the epoch once one is set: sessions made
        # before the epoch changed no longer match and are logged out.
        value = f"{self.password}:{self.session_epoch}" if self.session_epoch else self.password
        return salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            value,
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def sessions_end_others(self, request: HttpRequest) -> None:
        """End every other session of this user; the request's own stays logged in."""
        self.session_epoch = secrets.token_hex(16)
        self.save(update_fields=["session_epoch"])
        update_session_auth_hash(request, self)


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
    forgotten_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When this person's data was erased; the record stays, anonymised, so "
        "totals do not change.",
    )

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
            # Outgoing webhooks read changed records past a cursor (webhooks.events).
            models.Index(fields=["updated_at", "id"], name="account_updated"),
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
            # Outgoing webhooks read changed records past a cursor (webhooks.events).
            models.Index(fields=["updated_at", "id"], name="contact_updated"),
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
            # Outgoing webhooks read changed records past a cursor (webhooks.events).
            models.Index(fields=["updated_at", "id"], name="lead_updated"),
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
        """Turn the lead into an Account (new or given), a Contact and optionally an Opportunity.

        The records alone: convert through crm.conversion.lead_convert, which locks the lead's
        row first and moves its emails, tasks, privacy changes and memberships to the contact.
        """
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
            # Outgoing webhooks read changed records past a cursor (webhooks.events).
            models.Index(fields=["updated_at", "id"], name="opportunity_updated"),
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
