"""Tracking events (every open and click, labelled) and the database event buffer."""

from django.db import models


class TrackingEvent(models.Model):
    """One open or click, stored once (idempotent on `event_id`) with its human/machine label."""

    class Kind(models.TextChoices):
        OPEN = "open", "Open"
        CLICK = "click", "Click"

    class Label(models.TextChoices):
        HUMAN = "human", "Human"
        APPLE_MPP = "apple_mpp", "Apple Mail Privacy Protection"
        IMAGE_PROXY = "image_proxy", "Image proxy"
        SCANNER = "scanner", "Security scanner"
        BOT = "bot", "Bot"

    # A UUID, not text: the unique index is half the size and PostgreSQL adds no LIKE index.
    # Unique with its time (Meta.constraints): the time is the monthly partitions' key
    # (crm.partitions), and an event's id and time always travel together.
    event_id = models.UUIDField()
    kind = models.CharField(max_length=5, choices=Kind.choices)
    # No single-column indexes: the composite indexes below start with these columns.
    relation = models.ForeignKey(
        "crm.EmailMessageRelation",
        on_delete=models.CASCADE,
        related_name="tracking_events",
        db_index=False,
    )
    # A link of the relation's email (both come from one signed token), and links go only with
    # their email, whose relations take their events with them: the relation's constraint
    # covers the link too. Without one of its own, storing a click runs one foreign-key check
    # (the relation's) instead of two, and deleting an email does not look its events up
    # twice.
    link = models.ForeignKey(
        "crm.TrackedLink",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    occurred_at = models.DateTimeField()
    label = models.CharField(max_length=12, choices=Label.choices)
    reason = models.CharField(max_length=200)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    method = models.CharField(max_length=8)
    device = models.CharField(max_length=64, blank=True)
    client = models.CharField(max_length=64, blank=True)
    os = models.CharField(max_length=64, blank=True)
    # From Setup's internal addresses or IP ranges (crm.internal): shown, never counted.
    internal = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["occurred_at", "pk"]
        constraints = [
            # Idempotent ingestion: ON CONFLICT (event_id, occurred_at) DO NOTHING.
            models.UniqueConstraint(fields=["event_id", "occurred_at"], name="event_id_time"),
        ]
        indexes = [
            # Ingestion recounts a recipient's opens and clicks by kind and label.
            models.Index(fields=["relation", "kind", "label"], name="event_relation_kind_label"),
            # A link's clicks (the email page, TrackedLink counters).
            models.Index(fields=["link", "label"], name="event_link_label"),
            # The email log (keyset pages: the sort's columns), the API and retention.
            models.Index(fields=["occurred_at", "id"], name="event_time_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.label}) at {self.occurred_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_human(self) -> bool:
        return self.label == self.Label.HUMAN


class BufferedEvent(models.Model):
    """A raw event waiting for ingestion: the buffer in embedded mode, and when Redis is down.

    The fast path inserts with plain SQL; ingestion deletes the rows it stored, in the same
    transaction, so an event is counted once even if the worker dies mid-batch.
    """

    event_id = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=5)
    token = models.CharField(max_length=64)
    received_at = models.FloatField(help_text="Server time, seconds since the epoch.")
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    method = models.CharField(max_length=8)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}"
