"""Data-subject requests (forget, export) and the retention runs' record."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DataRequest(models.Model):
    """An admin's request to forget or export one person, carried out by a Celery job.

    The person is named by the record it was asked from (an Individual, a Contact or a Lead) and
    by `subject`, a label with kind and id only ("Contact #12"): after a forget nothing here names
    them.
    """

    class Kind(models.TextChoices):
        FORGET = "forget", "Forget"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    individual = models.ForeignKey(
        "privacy.Individual", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(max_length=120, help_text='Kind and id, e.g. "Contact #12".')
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    step = models.CharField(max_length=120, blank=True, help_text="What the job is doing now.")
    counts = models.JSONField(
        default=dict, blank=True, help_text="What was erased or exported, by kind."
    )
    error = models.TextField(blank=True)
    file_path = models.CharField(
        max_length=255, blank=True, help_text="The export archive, relative to EXPORT_DIR."
    )
    file_size = models.PositiveBigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject}"


class RetentionRun(models.Model):
    """One nightly retention run: what it removed, by kind, so admins can see it acted."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(
        default=dict, blank=True, help_text='Rows changed or removed, e.g. {"email_bodies": 12}.'
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Retention run {self.started_at:%Y-%m-%d %H:%M}"
