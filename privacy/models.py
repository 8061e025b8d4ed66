"""The Individual: a person's privacy choices (Don't Track, Don't Process, ...)."""

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
        "Don't Track Location", default=False, help_text="Do not record where this person is."
    )
    should_forget = models.BooleanField(
        "Forget this Individual", default=False, help_text="Delete this person's data on request."
    )
    send_individual_data = models.BooleanField(
        "Export Individual's Data", default=False, help_text="The person asked for their data."
    )
    can_store_pii_elsewhere = models.BooleanField("OK to Store PII Data Elsewhere", default=False)
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
