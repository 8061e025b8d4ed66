"""The bench's data: its users, sent emails with tracked recipients, their pixel URLs, event
counts, and large tables generated in SQL.

Import after `django.setup()`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Count, F, Sum
from django.utils import timezone

from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Role,
    TrackedLink,
    User,
)
from mailkit.tokens import make_token, signing_keys
from tracking import buffer
from tracking.models import BufferedEvent, TrackingEvent

# What mail clients send when they fetch the pixel, mixed so ingestion classifies realistic
# traffic (people, Apple Mail Privacy Protection, Gmail's image proxy) and the user-agent
# parser sees more than one string.
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1",
)


def create_user(username: str, *, role: Role | None = None, **fields: Any) -> User:
    """A user who can log in, as `<username>@openrate.example` with the password "pw"."""
    user = User.objects.create_user(username, f"{username}@openrate.example", "pw", **fields)
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user


def people(owner: User, count: int) -> list[Contact]:
    """`count` Contacts of one account ("Person<i>", person<i>@example.com), owned by `owner`:
    the members of the list email and sequence benchmarks."""
    account = Account.objects.create(name="Example Ltd", owner=owner)
    return Contact.objects.bulk_create(
        (
            Contact(
                first_name=f"Person{i}",
                last_name="Member",
                email=f"person{i}@example.com",
                account=account,
                owner=owner,
            )
            for i in range(count)
        ),
        batch_size=5000,
    )


def campaign_with_members(count: int) -> tuple[int, int]:
    """A rep ("lag") and a campaign of `count` members, with no daily limit or rate on list
    email; returns the campaign's and the rep's ids."""
    from campaigns.members import members_add
    from campaigns.models import Campaign
    from crm.models import OrgSettings

    user = create_user("lag", first_name="Lag", last_name="Rep")
    org = OrgSettings.load()
    org.daily_list_email_limit = 10_000_000
    org.list_email_per_minute = 0  # as fast as the worker goes
    org.save()
    contacts = people(user, count)
    campaign = Campaign.objects.create(name="Spring release", owner=user)
    members_add(campaign=campaign, contact_ids=[c.pk for c in contacts])
    return campaign.pk, user.pk


def reset_and_seed(*, emails: int, recipients_per_email: int) -> list[int]:
    """Empty the bench tables, then create sent, tracked emails; returns the recipient ids."""
    with connection.cursor() as cursor:
        # The bench database is the bench's own (env.check_services makes sure of it).
        cursor.execute(
            "TRUNCATE tracking_trackingevent, tracking_bufferedevent, crm_trackedlink, "
            "crm_emailmessagerelation, crm_emailmessage RESTART IDENTITY CASCADE"
        )
    sender, _ = User.objects.get_or_create(
        username="bench", defaults={"email": "bench@example.com", "is_active": False}
    )
    sent_at = timezone.now() - timedelta(hours=1)
    messages = EmailMessage.objects.bulk_create(
        [
            EmailMessage(
                subject=f"Bench email {n}",
                from_address="bench@example.com",
                status=EmailMessage.Status.SENT,
                delivery_status=EmailMessage.Delivery.SENT,
                is_tracked=True,
                sender=sender,
                message_date=sent_at,
            )
            for n in range(emails)
        ],
        batch_size=2000,
    )
    relations = EmailMessageRelation.objects.bulk_create(
        [
            EmailMessageRelation(
                email=message,
                relation_type=EmailMessageRelation.Type.TO,
                address=f"recipient-{message.pk}-{n}@example.com",
                delivery_status=EmailMessageRelation.Delivery.SENT,
                sent_at=sent_at,
                is_tracked=True,
            )
            for message in messages
            for n in range(recipients_per_email)
        ],
        batch_size=2000,
    )
    return [relation.pk for relation in relations]


def tracked_links(relation_ids: list[int]) -> dict[int, list[int]]:
    """Two tracked links in each of these recipients' emails; returns the link ids by recipient."""
    email_of = dict(
        EmailMessageRelation.objects.filter(pk__in=relation_ids).values_list("pk", "email_id")
    )
    created = TrackedLink.objects.bulk_create(
        [
            TrackedLink(email_id=email_id, url=f"https://example.com/page-{n}", position=n)
            for email_id in sorted(set(email_of.values()))
            for n in (1, 2)
        ],
        batch_size=5000,
    )
    by_email: dict[int, list[int]] = {}
    for link in created:
        by_email.setdefault(link.email_id, []).append(link.pk)
    return {relation: by_email[email] for relation, email in email_of.items()}


def settle_database() -> None:
    """Write out and analyse what was just inserted, so that neither a checkpoint nor
    autovacuum falls into the next measurement."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        for table in (
            "crm_emailmessage",
            "crm_emailmessagerelation",
            "tracking_trackingevent",
            "tracking_bufferedevent",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def analyze() -> None:
    """Fresh planner statistics for every table, so that plans fit the rows just inserted."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def clear_buffered_rows() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tracking_bufferedevent")


def write_pixel_requests(path: Path, relation_ids: list[int]) -> int:
    """One line per recipient for the wrk script: pixel path, a tab, a user agent."""
    key = signing_keys(settings.SECRET_KEY, settings.TRACKING_SIGNING_KEYS)[0]
    lines = [
        f"/t/o/{make_token(relation_id, key=key)}.gif\t{USER_AGENTS[n % len(USER_AGENTS)]}"
        for n, relation_id in enumerate(relation_ids)
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def redis_client() -> redis.Redis:
    client = buffer.redis_client()
    if client is None:
        raise RuntimeError("REDIS_URL is not set: the bench measures the Redis buffer")
    return client


def reset_stream(client: redis.Redis) -> None:
    client.delete(buffer.STREAM)


def buffered_events(client: redis.Redis) -> int:
    """Events waiting in the buffer: the Redis stream plus the database fallback table.

    A stream entry holds the events one worker queued in a few milliseconds (a JSON list).
    """
    in_stream = 0
    last = "-"
    while True:
        entries: Any = client.xrange(buffer.STREAM, min=last, max="+", count=1000)
        entries = [e for e in entries if e[0].decode() != last]
        if not entries:
            break
        in_stream += sum(len(json.loads(fields[b"batch"])) for _, fields in entries)
        last = entries[-1][0].decode()
    return in_stream + BufferedEvent.objects.count()


def buffered_rows() -> int:
    return BufferedEvent.objects.count()


def stored_events() -> int:
    return TrackingEvent.objects.count()


def stored_events_by_label() -> dict[str, int]:
    rows = TrackingEvent.objects.order_by().values("label").annotate(n=Count("pk"))
    return {row["label"]: row["n"] for row in rows}


def counted_opens() -> int:
    """Opens on the recipients' counters: ingestion's recount must agree with the events."""
    return _counted("opens")


def counted_clicks() -> int:
    return _counted("clicks")


def _counted(kind: str) -> int:
    totals = EmailMessageRelation.objects.aggregate(
        total=Sum(F(f"human_{kind}") + F(f"machine_{kind}"))
    )
    return int(totals["total"] or 0)


@contextmanager
def generating(cursor: Any, *, sequences: tuple[str, ...]) -> Iterator[None]:
    """Around `insert_select` calls: the same random() values every run, no foreign key
    triggers; then the id sequences of the tables in `sequences` move past the ids inserted, and
    the planner's statistics are refreshed.
    """
    cursor.execute("SELECT setseed(0.42)")
    # Generated rows are consistent by construction: skip the per-row foreign key triggers.
    cursor.execute("SET session_replication_role = replica")
    yield
    for table in sequences:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    cursor.execute("SET session_replication_role = DEFAULT")
    analyze()


def insert_select(cursor: Any, table: str, values: dict[str, str], source: str) -> None:
    """INSERT ... SELECT naming `values`; every other NOT NULL column gets its type's empty value.

    Reading the columns from the catalogue keeps the bench working as the models gain fields.
    """
    cursor.execute(
        """
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL
        """,
        [table],
    )
    empty = {
        "boolean": "false",
        "integer": "0",
        "smallint": "0",
        "bigint": "0",
        "uuid": "gen_random_uuid()",
        "timestamp with time zone": "now()",
        "date": "current_date",
        "jsonb": "'{}'",
    }
    columns = dict(values)
    for name, data_type in cursor.fetchall():
        if name not in columns and name != "id":
            columns[name] = empty.get(data_type, "''")
    started = time.perf_counter()
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} "
        f"FROM {source}"
    )
    print(f"  {table}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")


def year_of_email(
    cursor: Any, *, emails: int, sender_id: str, message_date: str, events_per_email: int,
    extra: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """`emails` sent emails (ids 1...), one recipient each, with `events_per_email` opens and
    clicks (the last a click) in the week after each send, set-based. `sender_id` and
    `message_date` are SQL over the series `i`; `extra` more columns of the emails."""
    insert_select(
        cursor,
        "crm_emailmessage",
        {
            "id": "i",
            "subject": "'Email ' || i",
            "from_address": "'rep@openrate.example'",
            "status": "'sent'",
            "delivery_status": "'sent'",
            "is_tracked": "true",
            "sender_id": sender_id,
            "message_date": message_date,
            **(extra or {}),
        },
        f"generate_series(1, {emails}) AS i",
    )
    insert_select(
        cursor,
        "crm_emailmessagerelation",
        {
            "id": "e.id",
            "email_id": "e.id",
            "relation_type": "'to'",
            "address": "'person' || e.id || '@example.com'",
            "delivery_status": "'sent'",
            "is_tracked": "true",
            "sent_at": "e.message_date",
        },
        "crm_emailmessage AS e",
    )
    insert_select(
        cursor,
        "tracking_trackingevent",
        {
            "relation_id": "r.id",
            "kind": f"CASE WHEN g = {events_per_email} THEN 'click' ELSE 'open' END",
            "label": "(ARRAY['human', 'human', 'apple_mpp', 'image_proxy', 'scanner', 'bot'])"
            "[1 + floor(random() * 6)::int]",
            "occurred_at": "r.sent_at + random() * interval '7 days'",
            "method": "'GET'",
            "reason": "'bench'",
            "user_agent": "'Mozilla/5.0'",
        },
        f"crm_emailmessagerelation AS r CROSS JOIN generate_series(1, {events_per_email}) AS g",
    )
