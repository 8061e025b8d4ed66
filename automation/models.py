"""Sequences (ordered steps a person is enrolled in) and triggered-email rules with their firings.

Everything they send goes through crm.sending (source Automated email), so it is tracked,
privacy-checked and limited like any other email.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Sequence(models.Model):
    """A cadence: an ordered list of steps (emails, waits, tasks for the owner)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sequences"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    pause_on_auto_reply = models.BooleanField(
        "Pause while auto-replies come in",
        default=True,
        help_text="An out-of-office answer pauses the person's enrolment for a week.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("automation:sequence_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Step(models.Model):
    """One step of a sequence, run in `position` order."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WAIT = "wait", "Wait"
        TASK = "task", "Task for the owner"

    class Thread(models.TextChoices):
        NEW = "new", "A new thread"
        REPLY = "reply", "A reply in the previous email's thread"

    class WaitKind(models.TextChoices):
        BUSINESS_DAYS = "business_days", "Business days (Mon-Fri)"
        WEEKDAY_TIME = "weekday_time", "Until a weekday and time (owner's time zone)"

    class TaskKind(models.TextChoices):
        CALL = "call", "Call"
        LINKEDIN = "linkedin", "LinkedIn"
        CUSTOM = "custom", "Custom"

    WEEKDAYS = [
        (0, "Monday"),
        (1, "Tuesday"),
        (2, "Wednesday"),
        (3, "Thursday"),
        (4, "Friday"),
        (5, "Saturday"),
        (6, "Sunday"),
    ]

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    template = models.ForeignKey(
        "crm.EmailTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sequence_steps",
    )
    thread = models.CharField(max_length=8, choices=Thread.choices, default=Thread.NEW)
    wait_kind = models.CharField(max_length=16, choices=WaitKind.choices, blank=True)
    wait_days = models.PositiveSmallIntegerField(null=True, blank=True)
    wait_weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS, null=True, blank=True)
    wait_time = models.TimeField(null=True, blank=True)
    task_kind = models.CharField(max_length=10, choices=TaskKind.choices, blank=True)
    task_subject = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "position"], name="step_position_once"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.describe()}"

    def describe(self) -> str:
        if self.kind == self.Kind.EMAIL:
            how = "reply in thread" if self.thread == self.Thread.REPLY else "new thread"
            return f"Email: {self.template.name if self.template else '?'} ({how})"
        if self.kind == self.Kind.WAIT:
            if self.wait_kind == self.WaitKind.BUSINESS_DAYS:
                return f"Wait {self.wait_days} business day{'s' if self.wait_days != 1 else ''}"
            day = dict(self.WEEKDAYS).get(self.wait_weekday or 0, "?")
            at = self.wait_time.strftime("%H:%M") if self.wait_time else "?"
            return f"Wait until {day} {at}"
        label = self.TaskKind(self.task_kind).label if self.task_kind else "Task"
        return f"{label}: {self.task_subject}" if self.task_subject else label


class EnrolmentQuerySet(models.QuerySet["Enrolment"]):
    def running(self) -> EnrolmentQuerySet:
        return self.filter(status__in=[Enrolment.Status.ACTIVE, Enrolment.Status.PAUSED])

    def of_person(self, person: models.Model) -> EnrolmentQuerySet:
        field = "contact" if person._meta.model_name == "contact" else "lead"
        return self.filter(**{field: person})


class Enrolment(models.Model):
    """A Contact or a Lead going through a sequence; `current_step` is the one it is at."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        FINISHED = "finished", "Finished"
        STOPPED = "stopped", "Stopped"

    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="enrolments")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, null=True, blank=True, related_name="enrolments"
    )
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.CASCADE, null=True, blank=True, related_name="enrolments"
    )
    # Whose steps these are: emails come from them, tasks are theirs, waits use their zone.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="enrolments"
    )
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    rule = models.ForeignKey(
        "automation.Rule", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    current_step = models.ForeignKey(
        Step, on_delete=models.PROTECT, null=True, blank=True, related_name="enrolments"
    )
    next_due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    stop_reason = models.CharField(max_length=255, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EnrolmentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False, lead__isnull=True)
                | Q(contact__isnull=True, lead__isnull=False),
                name="enrolment_is_contact_or_lead",
            ),
            # A person goes through a sequence once at a time (a finished one may start again).
            models.UniqueConstraint(
                fields=["sequence", "contact"],
                condition=Q(status__in=["active", "paused"], contact__isnull=False),
                name="enrolment_running_contact_once",
            ),
            models.UniqueConstraint(
                fields=["sequence", "lead"],
                condition=Q(status__in=["active", "paused"], lead__isnull=False),
                name="enrolment_running_lead_once",
            ),
        ]
        indexes = [
            # Beat's due-step query: active enrolments whose next step is due, oldest first.
            models.Index(
                fields=["next_due_at"],
                condition=Q(status="active"),
                name="enrolment_due_active",
            ),
            # The sequence page's counts per step and the enrolments list.
            models.Index(fields=["sequence", "status", "current_step"], name="enrolment_seq"),
            # A record's enrolments (its page and timeline).
            models.Index(fields=["contact"], name="enrolment_contact"),
            models.Index(fields=["lead"], name="enrolment_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.sequence_id}"

    @property
    def person(self) -> models.Model | None:
        return self.contact or self.lead

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.PAUSED)


class EnrolmentEvent(models.Model):
    """One line of an enrolment's history (shown on the sequence page and the record's timeline)."""

    class Kind(models.TextChoices):
        ENROLLED = "enrolled", "Enrolled"
        EMAIL_SENT = "email_sent", "Email sent"
        TASK_CREATED = "task_created", "Task created"
        WAITING = "waiting", "Waiting"
        DEFERRED = "deferred", "Deferred"
        PAUSED = "paused", "Paused"
        RESUMED = "resumed", "Resumed"
        STOPPED = "stopped", "Stopped"
        FINISHED = "finished", "Finished"

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    step = models.ForeignKey(
        Step, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # An enrolment's history, in order.
            models.Index(fields=["enrolment", "at"], name="enrolment_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.detail}".strip()


class StepRun(models.Model):
    """A step an enrolment has run: inserted in the transaction that sends the email or creates
    the task, so a step runs once per enrolment whatever runs race or die (the unique pair)."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="runs")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="runs")
    email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task = models.ForeignKey(
        "crm.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ran_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "step"], name="step_runs_once"),
        ]
        indexes = [
            # The sequence page's per-step figures join the runs' emails.
            models.Index(fields=["step", "email"], name="steprun_step_email"),
            models.Index(fields=["email"], name="steprun_email"),
        ]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.step_id}"


class Rule(models.Model):
    """A triggered email: when an event happens to a record, send a template or enrol it."""

    class Trigger(models.TextChoices):
        LEAD_CREATED = "lead_created", "A Lead is created"
        OPPORTUNITY_STAGE = "opportunity_stage", "An Opportunity reaches a stage"
        MEMBER_STATUS = "member_status", "A Campaign member reaches a status"
        QUIET = "quiet", "A Contact or Lead has been quiet for N days"

    class Action(models.TextChoices):
        SEND_TEMPLATE = "send_template", "Send a template"
        ENROL = "enrol", "Enrol in a sequence"

    name = models.CharField(max_length=120)
    is_active = models.BooleanField("Active", default=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    lead_source = models.CharField(
        max_length=40, blank=True, help_text="Only leads with this source (blank: any)."
    )
    opportunity_stage = models.CharField(max_length=20, blank=True)
    member_status = models.ForeignKey(
        "campaigns.CampaignMemberStatus",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    quiet_days = models.PositiveSmallIntegerField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    template = models.ForeignKey(
        "crm.EmailTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Send from this user (blank: the record's owner).",
    )
    sequence = models.ForeignKey(
        Sequence, on_delete=models.PROTECT, null=True, blank=True, related_name="rules"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Events before the rule existed never fire it (a new rule does not mail the whole base).
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("automation:rule_detail", args=[self.pk])


class Firing(models.Model):
    """A rule fired for one event: recorded once, so a rule never fires twice for it."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="firings")
    event_key = models.CharField(max_length=120)
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    email = models.ForeignKey(
        "crm.EmailMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=255, blank=True)
    fired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "event_key"], name="firing_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["email"], name="firing_email"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.event_key}"
