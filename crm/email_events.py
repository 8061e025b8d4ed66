"""The email log: one EmailEvent per delivery event of a recipient's copy (queued, sent,
deferred, delivered, failed, bounced, complained, unsubscribed, replied), each added to the
daily rollups the dashboards read. Opens and clicks are tracking's (tracking.rollups)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.utils import timezone

from crm import rollups, sql
from crm.models import EmailEvent, EmailMessageRelation

Relation = EmailMessageRelation

_ROLLUP_COLUMN = {
    EmailEvent.Kind.QUEUED: "queued",
    EmailEvent.Kind.SENT: "sent",
    EmailEvent.Kind.DEFERRED: "deferred",
    EmailEvent.Kind.DELIVERED: "delivered",
    EmailEvent.Kind.FAILED: "failed",
    EmailEvent.Kind.COMPLAINED: "complained",
    EmailEvent.Kind.UNSUBSCRIBED: "unsubscribed",
    EmailEvent.Kind.REPLIED: "replied",
}


def email_events_record(
    *,
    kind: str,
    relation_ids: Collection[int],
    when: datetime | None = None,
    detail: str = "",
    hard_bounce: bool = False,
) -> None:
    """Log one delivery event for each recipient copy, and add them to the daily rollup.

    Two statements whatever the number of recipients. A bounce counts as hard or soft by
    `hard_bounce`. Call it in the transaction that makes the change it records, once per change:
    the rollup adds, it does not recount.
    """
    if not relation_ids:
        return
    when = when or timezone.now()
    bounce = ""
    if kind == EmailEvent.Kind.BOUNCED:
        bounce = Relation.Bounce.HARD if hard_bounce else Relation.Bounce.SOFT
    detail = detail[:255]
    sql.rows_insert(
        EmailEvent,
        ["relation_id", "kind", "occurred_at", "detail", "bounce"],
        [(pk, kind, when, detail, bounce) for pk in relation_ids],
    )
    column = f"bounced_{bounce}" if bounce else _ROLLUP_COLUMN[EmailEvent.Kind(kind)]
    scope, params = sql.ids_in("r.id", "ids", relation_ids)
    rollups.execute(
        rollups.upsert(
            rollups.EMAIL_STATS,
            rollups.EMAIL_KEY,
            [column],
            f"""SELECT %(day)s, COALESCE(m.sender_id, 0), COALESCE(m.campaign_id, 0), COUNT(*)
            FROM crm_emailmessagerelation AS r JOIN crm_emailmessage AS m ON m.id = r.email_id
            WHERE {scope} GROUP BY 1, 2, 3""",  # noqa: S608 -- constants and placeholders only
        ),
        {**params, "day": timezone.localdate(when, timezone.get_default_timezone())},
    )
