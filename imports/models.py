"""imports's records: an import job (a file, its column mapping, its outcome), the mapping each
user last chose per kind, and the rows that failed with the reason."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class ImportJob(models.Model):
    class Kind(models.TextChoices):
        CONTACT = "contact", "Contacts"
        LEAD = "lead", "Leads"
        ACCOUNT = "account", "Accounts"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (XLSX)"

    class DuplicateRule(models.TextChoices):
        EMAIL = "email", "Same email"
        NAME_ACCOUNT = "name_account", "Same name and account"
        NONE = "none", "No duplicate check: every row is new"

    class DuplicateAction(models.TextChoices):
        SKIP = "skip", "Skip the row"
        UPDATE = "update", "Update the existing record"

    class Status(models.TextChoices):
        DRAFT = "draft", "Being set up"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The uploaded file under IMPORT_DIR; blank once the job has ended (the file is deleted).
    file_path = models.CharField(max_length=500, blank=True)
    original_name = models.CharField("file", max_length=255)
    format = models.CharField(max_length=4, choices=Format.choices)
    encoding = models.CharField(max_length=20, blank=True, help_text="CSV only.")
    delimiter = models.CharField(max_length=1, blank=True, help_text="CSV only.")
    # The column names of the header row, in order (blank or repeated names made unique).
    header = models.JSONField(default=list)
    rows_estimate = models.PositiveIntegerField(default=0)
    mapping = models.JSONField(default=dict, help_text="{column name: field name}")
    duplicate_rule = models.CharField(
        max_length=12, choices=DuplicateRule.choices, default=DuplicateRule.EMAIL
    )
    duplicate_action = models.CharField(
        max_length=6, choices=DuplicateAction.choices, default=DuplicateAction.SKIP
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who owns the records the import creates.",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    progress = models.PositiveSmallIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField("created", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    skipped_count = models.PositiveIntegerField("skipped", default=0)
    failed_count = models.PositiveIntegerField("failed", default=0)
    accounts_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the whole job failed, in words.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The imports page of one user: their jobs, newest first.
            models.Index(fields=["requested_by", "-created_at"], name="importjob_user_created"),
        ]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.original_name})"

    def get_absolute_url(self) -> str:
        return reverse("imports:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def noun(self) -> str:
        return self.get_kind_display().lower()


class ImportMapping(models.Model):
    """The mapping a user last confirmed for a kind, offered again on their next import."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ImportJob.Kind.choices)
    mapping = models.JSONField(default=dict, help_text="{column name: field name}")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="importmapping_user_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.kind}"


class ImportRowError(models.Model):
    """A row that was not imported and why. It holds what the admin uploaded (personal data):
    it lives as long as its job and is deleted with it."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="errors")
    row_number = models.PositiveIntegerField(
        help_text="As a spreadsheet numbers it: 1 is the header."
    )
    message = models.TextField()
    values = models.JSONField(default=dict, help_text="{column name: value as uploaded}")

    class Meta:
        ordering = ["job", "row_number"]
        indexes = [
            # A job's failed rows in file order (its page and its CSV report).
            models.Index(fields=["job", "row_number"], name="importrowerror_job_row"),
        ]

    def __str__(self) -> str:
        return f"Row {self.row_number}: {self.message}"
