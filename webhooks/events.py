"""Turning new events into deliveries, a batch at a time, with no hook in the hot paths.

The events are rows already: the email log (crm.EmailEvent), opens and clicks
(tracking.TrackingEvent, never the internal ones) and the records (created / updated, read by
`updated_at`). Each source is read past its Cursor; a batch is one SELECT and one INSERT of a
Delivery per (endpoint, event) for the endpoints that want it (the unique (endpoint, event_key)
makes a rerun or a second collector add nothing), and the cursor moves on in the same
transaction. A new source starts at the present: history is never sent.

What the records' cursor misses: a change that does not touch `updated_at` (a queryset
`.update()` that leaves it out, a raw SQL update, a bulk_update without it) sends no
"updated" event; a change is read once its `updated_at` is SETTLE_SECONDS old, so a write that
commits later than that after its timestamp is missed too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from crm.models import Account, Contact, EmailEvent, Lead, Opportunity
from tracking.models import TrackingEvent
from webhooks.models import Cursor, Delivery, Endpoint, EventType

BATCH = 500
# A run reads at most this many batches per source, so beat's next run finds the worker free.
MAX_BATCHES = 20
# Records are read once their updated_at is this old, so a transaction that stamped a row a
# moment ago has committed before the cursor passes it.
SETTLE_SECONDS = 5
# Created, not updated: updated_at within this of created_at.
CREATED_WITHIN = timedelta(seconds=1)
# A cursor past every id: the records' cursor when nobody wants records.
PAST_EVERY_ID = 2**62

EMAIL_EVENT_TYPES = {
    EmailEvent.Kind.SENT: EventType.EMAIL_SENT,
    EmailEvent.Kind.DELIVERED: EventType.EMAIL_DELIVERED,
    EmailEvent.Kind.BOUNCED: EventType.EMAIL_BOUNCED,
    EmailEvent.Kind.COMPLAINED: EventType.EMAIL_COMPLAINED,
    EmailEvent.Kind.UNSUBSCRIBED: EventType.EMAIL_UNSUBSCRIBED,
    EmailEvent.Kind.REPLIED: EventType.EMAIL_REPLIED,
}
TRACKING_EVENT_TYPES = {
    TrackingEvent.Kind.OPEN: EventType.EMAIL_OPENED,
    TrackingEvent.Kind.CLICK: EventType.EMAIL_CLICKED,
}
RECORD_MODELS: dict[str, type[Account] | type[Contact] | type[Lead] | type[Opportunity]] = {
    "account": Account,
    "contact": Contact,
    "lead": Lead,
    "opportunity": Opportunity,
}
_RELATION_FIELDS = (
    "relation_id",
    "relation__address",
    "relation__email_id",
    "relation__contact_id",
    "relation__lead_id",
)


@dataclass(frozen=True)
class Event:
    """One event as a delivery will carry it."""

    key: str
    type: str
    wanted_as: str  # the EventType an endpoint ticks for it
    occurred_at: datetime
    data: dict[str, Any]
    address: str = ""
    machine: bool = False

    def payload(self) -> dict[str, Any]:
        return {"type": self.type, "timestamp": self.occurred_at.isoformat(), "data": self.data}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _email_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "email_id": row["relation__email_id"],
        "recipient_id": row["relation_id"],
        "address": row["relation__address"],
        "contact_id": row["relation__contact_id"],
        "lead_id": row["relation__lead_id"],
        "occurred_at": _iso(row["occurred_at"]),
    }


def _email_events(rows: Iterable[dict[str, Any]]) -> Iterator[Event]:
    for row in rows:
        wanted = EMAIL_EVENT_TYPES[row["kind"]]
        data = {**_email_data(row), "event_id": row["pk"], "detail": row["detail"]}
        if row["bounce"]:
            data["bounce"] = row["bounce"]
        yield Event(
            key=f"email_event:{row['pk']}",
            type=wanted.value,
            wanted_as=wanted.value,
            occurred_at=row["occurred_at"],
            data=data,
            address=row["relation__address"].lower(),
        )


def _tracking_events(rows: Iterable[dict[str, Any]]) -> Iterator[Event]:
    for row in rows:
        wanted = TRACKING_EVENT_TYPES[row["kind"]]
        machine = row["label"] != TrackingEvent.Label.HUMAN
        data = {
            **_email_data(row),
            "event_id": str(row["event_id"]),
            "label": row["label"],
            "machine": machine,
        }
        if row["link__url"] is not None:
            data["url"] = row["link__url"]
        yield Event(
            key=f"tracking_event:{row['pk']}",
            type=wanted.value,
            wanted_as=wanted.value,
            occurred_at=row["occurred_at"],
            data=data,
            address=row["relation__address"].lower(),
            machine=machine,
        )


def _record_events(kind: str, rows: Iterable[dict[str, Any]]) -> Iterator[Event]:
    for row in rows:
        created = abs(row["updated_at"] - row["created_at"]) < CREATED_WITHIN
        wanted = EventType.RECORD_CREATED if created else EventType.RECORD_UPDATED
        action = "created" if created else "updated"
        email = row.get("email") or ""
        data = {
            "object": kind,
            "id": row["pk"],
            "owner_id": row["owner_id"],
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
        }
        if "email" in row:
            data["email"] = email
        yield Event(
            key=f"{kind}:{row['pk']}:{row['updated_at'].timestamp():.6f}",
            type=f"{kind}.{action}",
            wanted_as=wanted.value,
            occurred_at=row["updated_at"],
            data=data,
            address=email.lower(),
        )


def _deliveries_add(events: Iterable[Event], endpoints: list[Endpoint]) -> int:
    """One INSERT for the batch; a delivery that exists already is left as it is."""
    now = timezone.now()
    rows = [
        Delivery(
            endpoint=endpoint,
            event_key=event.key,
            event_type=event.type,
            payload=event.payload(),
            address=event.address,
            next_attempt_at=now,
        )
        for event in events
        for endpoint in endpoints
        if endpoint.wants(event.wanted_as, machine=event.machine)
    ]
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _cursor(source: str, start: Callable[[], dict[str, Any]]) -> Cursor:
    """The source's cursor, locked until the batch commits (so two collectors take turns); a
    new one starts where `start` says."""
    cursor = Cursor.objects.select_for_update().filter(source=source).first()
    if cursor is None:
        cursor, _ = Cursor.objects.get_or_create(source=source, defaults=start())
        cursor = Cursor.objects.select_for_update().get(pk=cursor.pk)
    return cursor


def _last_id(queryset: models.QuerySet[Any]) -> int:
    return int(queryset.aggregate(top=Max("pk"))["top"] or 0)


def _by_id(
    source: str,
    queryset: models.QuerySet[Any],
    fields: tuple[str, ...],
    to_events: Any,
    endpoints: list[Endpoint],
) -> tuple[int, bool]:
    """One batch of an id-ordered source: (deliveries made, whether more may be waiting)."""
    with transaction.atomic():
        cursor = _cursor(source, lambda: {"last_id": _last_id(queryset)})
        if not endpoints:
            # Nobody wants this source: skip to the present, so no one later gets its past.
            top = _last_id(queryset)
            if top > cursor.last_id:
                cursor.last_id = top
                cursor.save(update_fields=["last_id"])
            return 0, False
        rows = list(
            queryset.filter(pk__gt=cursor.last_id).order_by("pk").values("pk", *fields)[:BATCH]
        )
        if not rows:
            return 0, False
        made = _deliveries_add(to_events(rows), endpoints)
        cursor.last_id = rows[-1]["pk"]
        cursor.save(update_fields=["last_id"])
    return made, len(rows) == BATCH


def _records(kind: str, endpoints: list[Endpoint]) -> tuple[int, bool]:
    """One batch of a record kind, read by (updated_at, id)."""
    model = RECORD_MODELS[kind]
    cutoff = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
    with transaction.atomic():
        cursor = _cursor(f"record:{kind}", lambda: {"last_time": cutoff, "last_id": PAST_EVERY_ID})
        if not endpoints:
            cursor.last_time, cursor.last_id = cutoff, PAST_EVERY_ID
            cursor.save(update_fields=["last_time", "last_id"])
            return 0, False
        fields = ["pk", "owner_id", "created_at", "updated_at"]
        if kind in ("contact", "lead"):
            fields.append("email")
        last_time = cursor.last_time or cutoff
        after = Q(updated_at__gt=last_time) | Q(updated_at=last_time, pk__gt=cursor.last_id)
        rows = list(
            model.objects.filter(after, updated_at__lte=cutoff)
            .order_by("updated_at", "pk")
            .values(*fields)[:BATCH]
        )
        if not rows:
            return 0, False
        made = _deliveries_add(_record_events(kind, rows), endpoints)
        cursor.last_time, cursor.last_id = rows[-1]["updated_at"], rows[-1]["pk"]
        cursor.save(update_fields=["last_time", "last_id"])
    return made, len(rows) == BATCH


def _wanting(endpoints: list[Endpoint], types: Iterable[str]) -> list[Endpoint]:
    wanted = set(types)
    return [endpoint for endpoint in endpoints if wanted & set(endpoint.events)]


def events_collect() -> int:
    """Read every source past its cursor into deliveries; returns how many were made."""
    endpoints = list(Endpoint.objects.active())
    email_events = EmailEvent.objects.filter(kind__in=EMAIL_EVENT_TYPES)
    tracking_events = TrackingEvent.objects.filter(internal=False)
    sources: list[tuple[str, Any]] = [
        (
            "email_event",
            lambda: _by_id(
                "email_event",
                email_events,
                ("kind", "occurred_at", "detail", "bounce", *_RELATION_FIELDS),
                _email_events,
                _wanting(endpoints, EMAIL_EVENT_TYPES.values()),
            ),
        ),
        (
            "tracking_event",
            lambda: _by_id(
                "tracking_event",
                tracking_events,
                ("kind", "label", "event_id", "occurred_at", "link__url", *_RELATION_FIELDS),
                _tracking_events,
                _wanting(endpoints, TRACKING_EVENT_TYPES.values()),
            ),
        ),
    ]
    record_endpoints = _wanting(endpoints, (EventType.RECORD_CREATED, EventType.RECORD_UPDATED))
    for kind in RECORD_MODELS:
        sources.append((kind, lambda kind=kind: _records(kind, record_endpoints)))
    made = 0
    for _name, batch in sources:
        for _ in range(MAX_BATCHES):
            count, more = batch()
            made += count
            if not more:
                break
    return made


def sample_delivery_add(endpoint: Endpoint) -> Delivery:
    """The "Send test event" button: a delivery of its own, due now."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event_key=f"test:{uuid.uuid4().hex}",
        event_type="webhook.test",
        payload={},
        next_attempt_at=now,
    )
    delivery.payload = {
        "type": "webhook.test",
        "timestamp": now.isoformat(),
        "data": {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk},
    }
    delivery.save(update_fields=["payload"])
    return delivery


def forget_addresses(addresses: Iterable[str]) -> int:
    """Delete every delivery (pending or logged, with its attempts) whose payload names one of
    these addresses; returns how many deliveries were deleted."""
    wanted = sorted({address.strip().lower() for address in addresses if address.strip()})
    deleted = 0
    for start in range(0, len(wanted), BATCH):
        _, counts = Delivery.objects.filter(address__in=wanted[start : start + BATCH]).delete()
        deleted += counts.get(Delivery._meta.label, 0)
    return deleted
