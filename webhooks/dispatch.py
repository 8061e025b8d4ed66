"""Sending due deliveries: claimed so two dispatchers never send one twice, signed, each attempt
logged, retried with backoff for a day, and an endpoint that failed for a day disabled with a
task for its owner."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import uuid
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from crm.models import OrgSettings, Task
from webhooks import network
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.signing import signed_headers

BATCH = 50
# Seconds before the next attempt after the 1st, 2nd, ... failure; the last repeats.
RETRY_DELAYS = (30, 60, 5 * 60, 15 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600)
GIVE_UP_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
# A claimed delivery is due again after this if its dispatcher died before recording it.
CLAIM_SECONDS = 5 * 60


def _claim(now: datetime) -> list[Delivery]:
    """Take up to BATCH due deliveries for this run: rows another dispatcher holds are skipped
    (PostgreSQL), and the UPDATE takes only rows still due, so a row is claimed once."""
    token = uuid.uuid4().hex
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    )
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        due.filter(pk__in=ids).update(
            claim=token, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS)
        )
    return list(
        Delivery.objects.filter(pk__in=ids, claim=token)
        .select_related("endpoint", "endpoint__owner")
        .order_by("next_attempt_at", "pk")
    )


def _error_words(error: BaseException) -> str:
    if isinstance(error, network.Refused):
        return str(error)
    if isinstance(error, TimeoutError | socket.timeout):
        return f"No answer within {network.TIMEOUT_SECONDS:.0f} seconds."
    if isinstance(error, ConnectionRefusedError):
        return "The connection was refused."
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"The TLS certificate was not accepted: {error.verify_message}."
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}."
    if isinstance(error, http.client.HTTPException):
        return f"The answer was not valid HTTP ({type(error).__name__})."
    return f"The connection failed: {error}."[:255]


def _attempt(delivery: Delivery, *, allow_private: bool) -> Attempt:
    """Send the delivery once and describe what happened (not yet saved)."""
    now = timezone.now()
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = signed_headers(
        delivery.endpoint.secret, delivery.message_id, int(now.timestamp()), body
    )
    attempt = Attempt(delivery=delivery, attempted_at=now)
    started = time.monotonic()
    try:
        answer = network.post(
            delivery.endpoint.url, body.encode(), headers, allow_private=allow_private
        )
    except (network.Refused, OSError, http.client.HTTPException) as error:
        attempt.error = _error_words(error)[:255]
        if not isinstance(error, network.Refused):
            attempt.response_ms = round((time.monotonic() - started) * 1000)
        return attempt
    attempt.status_code = answer.status
    attempt.response_ms = answer.elapsed_ms
    attempt.response_start = answer.body_start
    if 300 <= answer.status < 400:
        attempt.error = "Redirects are not followed."
    elif not attempt.succeeded:
        attempt.error = f"The endpoint answered {answer.status}."
    return attempt


def _record(delivery: Delivery, attempt: Attempt) -> bool:
    """Save the attempt and what it means for the delivery; True when it failed."""
    now = attempt.attempted_at
    attempt.save()
    delivery.attempts += 1
    delivery.first_attempt_at = delivery.first_attempt_at or now
    delivery.last_attempt_at = now
    delivery.claim = ""
    if attempt.succeeded:
        delivery.status = Delivery.Status.SUCCEEDED
        delivery.next_attempt_at = None
    else:
        delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
        retry_at = now + timedelta(seconds=delay)
        if retry_at > delivery.first_attempt_at + GIVE_UP_AFTER:
            delivery.status = Delivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = retry_at
    delivery.save(
        update_fields=[
            "attempts",
            "first_attempt_at",
            "last_attempt_at",
            "claim",
            "status",
            "next_attempt_at",
        ]
    )
    return not attempt.succeeded


def endpoint_disable(endpoint: Endpoint, *, reason: str, notify: bool) -> bool:
    """Disable the endpoint if it is active (once, whoever asks at the same time); with
    `notify`, its owner gets a task saying why. True if this call disabled it."""
    changed = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:255]
    )
    if changed and notify and endpoint.owner is not None:
        Task.objects.create(
            subject=f"Webhook endpoint {endpoint.name} was disabled: {reason}"[:255],
            description=(
                f"Deliveries to {endpoint.url} are paused. Fix the receiver, then enable the "
                "endpoint again on its Webhooks page; its pending deliveries are sent then."
            ),
            owner=endpoint.owner,
            priority=Task.Priority.HIGH,
            due_date=timezone.localdate(),
        )
    return bool(changed)


def _endpoint_outcome(endpoint: Endpoint, attempt: Attempt) -> None:
    """A success ends the endpoint's failing run; a failure starts one, and a run a day long
    disables the endpoint."""
    if attempt.succeeded:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
            failing_since=None
        )
        return
    now = attempt.attempted_at
    Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    failing_since = Endpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
    if failing_since is not None and now - failing_since >= DISABLE_AFTER:
        reason = f"every delivery failed for 24 hours (last: {attempt.error})"
        endpoint_disable(endpoint, reason=reason, notify=True)


def deliveries_dispatch() -> int:
    """Send one batch of due deliveries; returns how many were attempted.

    After a failure, the endpoint's other deliveries in the batch wait for the first retry
    instead of each waiting out the same timeout."""
    now = timezone.now()
    claimed = _claim(now)
    allow_private = OrgSettings.load().webhook_private_addresses
    failing: set[int] = set()
    attempted = 0
    for delivery in claimed:
        if delivery.endpoint_id in failing:
            Delivery.objects.filter(pk=delivery.pk, claim=delivery.claim).update(
                claim="", next_attempt_at=timezone.now() + timedelta(seconds=RETRY_DELAYS[0])
            )
            continue
        attempt = _attempt(delivery, allow_private=allow_private)
        attempted += 1
        try:
            with transaction.atomic():
                failed = _record(delivery, attempt)
        except DatabaseError:
            continue  # the endpoint was deleted while its delivery was on its way
        if failed:
            failing.add(delivery.endpoint_id)
        _endpoint_outcome(delivery.endpoint, attempt)
    return attempted
