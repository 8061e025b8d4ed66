"""Setup's retention, enforced nightly: email bodies (sent and received, and captured from
mailboxes, each with its own months), inbound raw messages and the email log.

Each kind is changed in chunks, one UPDATE (or DELETE) of at most `chunk` rows per statement, so
no transaction holds many rows for long and sending, ingestion and inbound mail never wait. Every
run is kept as a RetentionRun with its counts, shown to admins on /privacy/retention/.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from capture.models import CapturedAttachment
from crm.models import EmailMessage, OrgSettings
from crm.rollups import months_before
from dataprotection.models import RetentionRun
from inbound.models import InboundMessage
from reports.services import email_log_prune

logger = logging.getLogger(__name__)

# Rows changed per statement: short transactions (a body or a raw message may be megabytes).
CHUNK = 1_000

# The kinds a run counts, in the order they run and are shown.
KINDS = {
    "email_bodies": "Email bodies removed",
    "captured_bodies": "Captured email bodies removed",
    "captured_attachments": "Captured attachments' contents removed",
    "inbound_raw": "Inbound raw messages emptied",
    "email_log_events": "Email log events deleted",
}


def _update_in_chunks(queryset: QuerySet[Any], chunk: int, **values: Any) -> int:
    """Set `values` on every row of `queryset`, `chunk` rows per UPDATE, in its order;
    `queryset` must stop matching a row once it is updated. Returns how many rows changed."""
    changed = 0
    while True:
        # One statement: UPDATE ... WHERE id IN (SELECT id ... LIMIT chunk). Its own
        # transaction (a savepoint inside one), so a failure undoes only this chunk.
        with transaction.atomic():
            count = queryset.model._default_manager.filter(
                pk__in=queryset.values("pk")[:chunk]
            ).update(**values)
        changed += count
        if count < chunk:
            return changed


def email_bodies_remove(*, now: datetime | None = None, chunk: int = CHUNK) -> int:
    """Empty the bodies of email sent or received longer ago than Setup's months (by its date,
    else when it was stored); subject, addresses and engagement stay. Captured email has its
    own months (`captured_bodies_remove`). Returns how many."""
    months = OrgSettings.load().email_body_retention_months
    return _bodies_remove(~Q(source=EmailMessage.Source.CAPTURED), months, now=now, chunk=chunk)


def captured_bodies_remove(*, now: datetime | None = None, chunk: int = CHUNK) -> int:
    """Empty the bodies of email captured from mailboxes older than Setup's "Keep captured email
    bodies" months; the record that the email happened stays. Returns how many."""
    months = OrgSettings.load().captured_body_retention_months
    return _bodies_remove(Q(source=EmailMessage.Source.CAPTURED), months, now=now, chunk=chunk)


def captured_attachments_remove(*, chunk: int = CHUNK) -> int:
    """Empty the kept contents of attachments whose captured email's body was removed (by
    retention or a forget); names and sizes stay. Returns how many."""
    old = CapturedAttachment.objects.filter(
        content__isnull=False, email__body_removed_at__isnull=False
    ).order_by()
    return _update_in_chunks(old, chunk, content=None)


def _bodies_remove(which: Q, months: int, *, now: datetime | None, chunk: int) -> int:
    now = now or timezone.now()
    cutoff = months_before(now, months)
    old = (
        EmailMessage.objects.alias(dated=Coalesce("message_date", "created_at"))
        .filter(which, body_removed_at__isnull=True, dated__lt=cutoff)
        # An email with no body has nothing to remove: it is not said to have had one removed.
        .exclude(Q(html_body="") & Q(text_body=""))
        # Oldest first: with an index on the date (partial, on bodies not yet removed) each
        # chunk reads only the rows it changes, whatever the planner thinks is left.
        .order_by("dated")
    )
    return _update_in_chunks(old, chunk, html_body="", text_body="", body_removed_at=now)


def inbound_raw_remove(*, now: datetime | None = None, chunk: int = CHUNK) -> int:
    """Empty the raw bytes of inbound messages older than Setup's days; the row (kind, status,
    report) and its effects (bounce, opt-out, reply) stay. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=OrgSettings.load().inbound_raw_retention_days)
    old = InboundMessage.objects.filter(received_at__lt=cutoff).exclude(raw=b"").order_by()
    return _update_in_chunks(old, chunk, raw=b"")


def retention_enforce(*, chunk: int | None = None) -> RetentionRun:
    """Run every retention (each in its own chunk size unless `chunk` is given); a kind that
    fails is recorded in words and the others still run."""
    started = time.monotonic()
    run = RetentionRun.objects.create()
    sized: dict[str, Any] = {"chunk": chunk} if chunk else {}
    steps: dict[str, Callable[[], int]] = {
        "email_bodies": lambda: email_bodies_remove(**sized),
        "captured_bodies": lambda: captured_bodies_remove(**sized),
        "captured_attachments": lambda: captured_attachments_remove(**sized),
        "inbound_raw": lambda: inbound_raw_remove(**sized),
        "email_log_events": lambda: email_log_prune(**sized),
    }
    counts: dict[str, int] = {}
    errors: list[str] = []
    for kind, step in steps.items():
        try:
            counts[kind] = step()
        except Exception as error:  # the other kinds still run; the run says what failed
            logger.exception("Retention of %s failed", kind)
            errors.append(f"{KINDS[kind]}: failed ({type(error).__name__}: {error})")
    run.finished_at = timezone.now()
    run.counts = counts
    run.error = "\n".join(errors)
    run.save(update_fields=["finished_at", "counts", "error"])
    logger.log(
        logging.ERROR if errors else logging.INFO,
        "Retention run %s in %.1f s: %s%s",
        run.pk,
        time.monotonic() - started,
        ", ".join(f"{kind}={count}" for kind, count in counts.items()),
        f"; {len(errors)} failed" if errors else "",
    )
    return run
