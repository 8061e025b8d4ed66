"""The Individual: a person's privacy choices (Don't Track, Don't Process, ...)."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Individual(models.Model):
    """A person's data-privacy preferences, shared by every Contact and Lead that is that person."""

    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80)
    birth_date = models.DateField(null=True, blank=True)
    has_opted_out_tracking = models.BooleanField(
        "Don't Track", default=False, help_text="Do not track this person's email engagement."
    )
    has_opted_out_processing = models.BooleanField(
        "Don't Process",
        default=False,
        help_text="Do not process this person's data, or email them.",
    )
    has_opted_out_profiling = models.BooleanField(
        "Don't Profile", default=False, help_text="Do not profile this person."
    )
    has_opted_out_solicit = models.BooleanField(
        "Don't Market", default=False, help_text="Do not send this person marketing or list email."
    )
    has_opted_out_geo_tracking = models.BooleanField(
        "Block Geolocation",
        default=False,
        help_text="Store no IP address (not even shortened) for this person's opens and clicks.",
    )
    should_forget = models.BooleanField(
        "Forget this Individual", default=False, help_text="Delete this person's data on request."
    )
    send_individual_data = models.BooleanField(
        "Export Individual's Data", default=False, help_text="The person asked for their data."
    )
    can_store_pii_elsewhere = models.BooleanField("OK to Store PII Data Elsewhere", default=False)
    forgotten_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When this person's data was erased."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("admin:privacy_individual_change", args=[self.pk])

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @classmethod
    def flag_label(cls, name: str) -> str:
        """A privacy flag's name as people know it ("Don't Track")."""
        field = cls._meta.get_field(name)
        assert isinstance(field, models.BooleanField)
        return str(field.verbose_name)

    @property
    def forbids_processing(self) -> bool:
        """Don't Process and Forget both mean: hold and use nothing more about this person."""
        return self.has_opted_out_processing or self.should_forget


class ForgottenAddress(models.Model):
    """An address whose person was forgotten, kept only as a hash (privacy.forgotten).

    A later import, capture or send checks it, so the person does not come back.
    """

    address_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256, hex.")
    forgotten_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "forgotten address"

    def __str__(self) -> str:
        return f"Forgotten address {self.address_hash[:12]}..."


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """Append-only: rows are added, never changed or removed through the application."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("The audit trail is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")


class AuditEntry(models.Model):
    """One privacy or configuration change: who, when, what, before and after (privacy.audit).

    Targets are named by kind and id ("Contact #12"), never by a person's name, so the trail
    holds no personal data and survives a forget unchanged.
    """

    class Action(models.TextChoices):
        PRIVACY_FLAG = "privacy_flag", "Privacy flag changed"
        SETUP = "setup", "Setup changed"
        ROLE = "role", "Role changed"
        FORGET_REQUESTED = "forget_requested", "Forget requested"
        FORGOTTEN = "forgotten", "Person forgotten"
        EXPORT_REQUESTED = "export_requested", "Export requested"
        EXPORTED = "exported", "Export built"
        EXPORT_DOWNLOADED = "export_downloaded", "Export downloaded"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="The actor's username, kept if the user goes."
    )
    action = models.CharField(max_length=20, choices=Action.choices, db_index=True)
    target = models.CharField(max_length=120, help_text='What changed: "Setup", "Contact #12".')
    field = models.CharField(max_length=80, blank=True)
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    note = models.CharField(max_length=255, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.target}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")
