"""Demo email history for the dashboards: 30 days of the demo reps' email, opens, clicks,
bounces and replies, written through the ORM and then rolled up (run after seed_demo)."""

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns.members import members_advance
from campaigns.models import Campaign
from crm.models import (
    Contact,
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    OrgSettings,
    TrackedLink,
    User,
)
from tracking.classify import Label
from tracking.models import TrackingEvent
from tracking.recount import recount
from tracking.rollups import rollups_rebuild

DAYS = 30
LINKS = ["https://openrate.example/pricing", "https://openrate.example/case-study"]
SUBJECTS = ["Quick question", "Following up", "Your pilot", "Pricing for next year", "Hello"]
Relation = EmailMessageRelation


class Command(BaseCommand):
    help = "Load 30 days of demo email activity for the demo reps (once), for the dashboards."

    def handle(self, *args: Any, **options: Any) -> None:
        reps = list(User.objects.filter(username__in=["ada", "grace"]).order_by("username"))
        if len(reps) < 2 or not Contact.objects.exists():
            self.stdout.write("Run seed_demo first: there are no demo reps or contacts.")
            return
        if EmailMessage.objects.filter(sender__in=reps).exists():
            self.stdout.write("Demo email activity is already loaded; nothing changed.")
            return
        with transaction.atomic():
            count = self._history(reps)
            rollups_rebuild()
        self.stdout.write(self.style.SUCCESS(f"Demo email activity loaded: {count} emails."))

    def _history(self, reps: list[User]) -> int:
        rng = random.Random(7)  # noqa: S311 -- a fixed seed: the same demo every time
        now = timezone.now()
        campaign = Campaign.objects.filter(type=Campaign.Type.EMAIL).order_by("pk").first()
        emails: list[EmailMessage] = []
        recipients: list[tuple[EmailMessage, Contact]] = []
        for rep in reps:
            contacts = list(Contact.objects.filter(owner=rep, email__gt="").order_by("pk"))
            for days_ago in range(DAYS, 0, -1):
                for _ in range(rng.randrange(2, 7)):
                    when = now - timedelta(days=days_ago, minutes=rng.randrange(0, 600))
                    email = EmailMessage(
                        subject=rng.choice(SUBJECTS),
                        html_body="<p>Hello</p>",
                        text_body="Hello",
                        from_address=rep.email,
                        from_name=rep.get_full_name(),
                        status=EmailMessage.Status.SENT,
                        delivery_status=EmailMessage.Delivery.SENT,
                        source=EmailMessage.Source.SINGLE,
                        is_tracked=True,
                        sender=rep,
                        campaign=campaign if rng.random() < 0.3 else None,
                        message_date=when,
                    )
                    emails.append(email)
                    recipients.append((email, rng.choice(contacts)))
        EmailMessage.objects.bulk_create(emails)
        links = TrackedLink.objects.bulk_create(
            TrackedLink(email=email, url=url, position=index)
            for email in emails
            for index, url in enumerate(LINKS)
        )
        links_of = {(link.email_id, link.position): link for link in links}
        relations = Relation.objects.bulk_create(
            Relation(
                email=email,
                relation_type=Relation.Type.TO,
                address=contact.email,
                name=contact.name,
                contact=contact,
                delivery_status=Relation.Delivery.SENT,
                is_tracked=True,
                sent_at=email.message_date,
            )
            for email, contact in recipients
        )
        log: list[EmailEvent] = []
        events: list[TrackingEvent] = []
        for relation in relations:
            sent_at = relation.sent_at
            assert sent_at is not None
            log += [
                EmailEvent(relation=relation, kind=EmailEvent.Kind.QUEUED, occurred_at=sent_at),
                EmailEvent(relation=relation, kind=EmailEvent.Kind.SENT, occurred_at=sent_at),
            ]
            roll = rng.random()
            if roll < 0.04:
                self._bounce(relation, log, hard=roll < 0.02)
                continue

            # (kind, label, after the send, link position): what this recipient's copy saw.
            seen: list[tuple[str, Label, timedelta, int | None]] = []
            if rng.random() < 0.35:
                seen.append(
                    ("open", Label.APPLE_MPP, timedelta(minutes=rng.randrange(1, 30)), None)
                )
            elif rng.random() < 0.1:
                seen.append(
                    ("open", Label.IMAGE_PROXY, timedelta(minutes=rng.randrange(1, 90)), None)
                )
            if rng.random() < 0.08:
                seen.append(("click", Label.SCANNER, timedelta(seconds=3), 0))
            if rng.random() < 0.45:
                for _ in range(rng.randrange(1, 4)):
                    seen.append(("open", Label.HUMAN, timedelta(hours=rng.randrange(1, 72)), None))
                if rng.random() < 0.35:
                    delay = timedelta(hours=rng.randrange(2, 80))
                    seen.append(("click", Label.HUMAN, delay, rng.randrange(2)))
                if rng.random() < 0.2 and sent_at + timedelta(days=1) < now:
                    relation.replied_at = sent_at + timedelta(days=1)
                    log.append(
                        EmailEvent(
                            relation=relation,
                            kind=EmailEvent.Kind.REPLIED,
                            occurred_at=relation.replied_at,
                        )
                    )
            events += [
                _event(relation, kind, label, sent_at + delay, links_of, link)
                for kind, label, delay, link in seen
                if sent_at + delay < now
            ]
        Relation.objects.bulk_update(
            relations,
            ["delivery_status", "bounce_category", "bounce_status", "bounced_at", "replied_at"],
            batch_size=500,
        )
        EmailMessage.objects.filter(pk__in={r.email_id for r in relations if r.bounced_at}).update(
            is_bounced=True
        )
        EmailEvent.objects.bulk_create(log, batch_size=1000)
        TrackingEvent.objects.bulk_create(events, batch_size=1000)
        recount(
            relation_ids={r.pk for r in relations},
            link_ids={link.pk for link in links},
            machine_open_filtering=OrgSettings.load().machine_open_filtering,
        )
        members_advance(relation_ids=[r.pk for r in relations])  # as ingestion does
        return len(emails)

    def _bounce(self, relation: EmailMessageRelation, log: list[EmailEvent], *, hard: bool) -> None:
        assert relation.sent_at is not None
        relation.delivery_status = Relation.Delivery.BOUNCED
        relation.bounce_category = Relation.Bounce.HARD if hard else Relation.Bounce.SOFT
        relation.bounce_status = "5.1.1" if hard else "4.2.2"
        relation.bounced_at = relation.sent_at + timedelta(minutes=2)
        detail = "550 5.1.1 No such user" if hard else "452 4.2.2 Mailbox full"
        log.append(
            EmailEvent(
                relation=relation,
                kind=EmailEvent.Kind.BOUNCED,
                occurred_at=relation.bounced_at,
                detail=detail,
                bounce=relation.bounce_category,
            )
        )


def _event(
    relation: EmailMessageRelation,
    kind: str,
    label: Label,
    at: datetime,
    links: dict[tuple[int, int], TrackedLink],
    link: int | None,
) -> TrackingEvent:
    return TrackingEvent(
        event_id=uuid.uuid4(),
        kind=kind,
        relation=relation,
        link=links[(relation.email_id, link)] if link is not None else None,
        occurred_at=at,
        label=label,
        reason="demo data",
        method="GET",
        user_agent="Mozilla/5.0" if label != Label.HUMAN else "Mozilla/5.0 (Macintosh) Chrome/131",
    )
