"""Demo email history: 30 days of the demo reps' email, opens, clicks, bounces and replies,
written through the ORM, rolled up for the dashboards, then turned into what a CRM in use shows:
activity metrics, follow-ups for quiet records and engagement alerts (run after seed_demo)."""

import random
import uuid
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.utils import make_msgid
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from campaigns.members import members_advance
from campaigns.models import Campaign
from crm.activity import activity_metrics_recompute, engagement_alerts_create, follow_ups_create
from crm.models import (
    ActivityMetric,
    Contact,
    EmailEvent,
    EmailMessage,
    EmailMessageRelation,
    OrgSettings,
    TrackedLink,
    User,
)
from mailkit.rewrite import html_to_text
from tracking.classify import Label
from tracking.models import TrackingEvent
from tracking.recount import recount
from tracking.rollups import rollups_rebuild

DAYS = 30
LINKS = ["https://openrate.example/pricing", "https://openrate.example/case-study"]
SUBJECTS = ["Quick question", "Following up", "Your pilot", "Pricing for next year", "Hello"]
BODY = (
    '<p>Hello {first_name},</p><p>Here is our <a href="{0}">pricing</a> and the '
    '<a href="{1}">case study</a> we spoke about.</p><p>Best,<br>{sender}</p>'
)
Relation = EmailMessageRelation


class Command(BaseCommand):
    help = "Load 30 days of demo email activity for the demo reps (once), for the dashboards."

    def handle(self, *args: Any, **options: Any) -> None:
        reps = list(User.objects.filter(username__in=["ada", "grace"]).order_by("username"))
        if len(reps) < 2 or not Contact.objects.exists():
            self.stdout.write("Run seed_demo first: there are no demo reps or contacts.")
            return
        if EmailMessage.objects.filter(sender__in=reps).exists():
            if not ActivityMetric.objects.exists():
                # A demo loaded before the metrics were computed with it.
                _records_catch_up()
                self.stdout.write("Demo activity metrics, follow-ups and alerts computed.")
            self.stdout.write("Demo email activity is already loaded; nothing changed.")
            return
        with transaction.atomic():
            count = self._history(reps)
            rollups_rebuild()
            _records_catch_up()
        self.stdout.write(self.style.SUCCESS(f"Demo email activity loaded: {count} emails."))

    def _history(self, reps: list[User]) -> int:
        rng = random.Random(7)  # noqa: S311 -- a fixed seed: the same demo every time
        now = timezone.now()
        campaign = Campaign.objects.filter(type=Campaign.Type.EMAIL).order_by("pk").first()
        emails: list[EmailMessage] = []
        recipients: list[tuple[EmailMessage, Contact]] = []
        for rep in reps:
            contacts = list(
                Contact.objects.filter(owner=rep, email__gt="")
                # A real send refuses Don't Process: the demo never emails them either.
                .exclude(individual__has_opted_out_processing=True)
                .select_related("account", "individual")
                .order_by("pk")
            )
            for days_ago in range(DAYS, 0, -1):
                for _ in range(rng.randrange(2, 7)):
                    when = now - timedelta(days=days_ago, minutes=rng.randrange(0, 600))
                    contact = rng.choice(contacts)
                    message_id = make_msgid(domain="openrate.example")[1:-1]
                    html_body = BODY.format(
                        *LINKS, first_name=contact.first_name, sender=rep.get_full_name()
                    )
                    email = EmailMessage(
                        subject=rng.choice(SUBJECTS),
                        html_body=html_body,
                        text_body=html_to_text(html_body),
                        from_address=rep.email,
                        from_name=rep.get_full_name(),
                        # As the composer writes it: the recipients shown on the email's page.
                        to_addresses=str(Address(contact.name, addr_spec=contact.email)),
                        status=EmailMessage.Status.SENT,
                        delivery_status=EmailMessage.Delivery.SENT,
                        source=EmailMessage.Source.SINGLE,
                        message_identifier=message_id,
                        thread_identifier=message_id,
                        related_account=contact.account,
                        is_tracked=True,
                        sender=rep,
                        campaign=campaign if rng.random() < 0.3 else None,
                        message_date=when,
                    )
                    emails.append(email)
                    recipients.append((email, contact))
        # One contact per rep is hot today: the latest email was opened and clicked in the last
        # hours, enough for an engagement alert (as ingestion would raise it).
        hot = {id(recipients[index][0]) for index in _last_of_each_sender(recipients)}
        EmailMessage.objects.bulk_create(emails)
        Relation.objects.bulk_create(
            Relation(
                email=email,
                relation_type=Relation.Type.FROM,
                address=email.from_address,
                name=email.from_name,
                user=email.sender,
                delivery_status=Relation.Delivery.SENT,
            )
            for email in emails
        )
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
                # Don't Track: the copy went out without a pixel or tracked links, as sending
                # decides (privacy.policy); it records no opens or clicks below.
                is_tracked=not _dont_track(contact),
                untracked_reason="Don't Track" if _dont_track(contact) else "",
                message_id=email.message_identifier,  # one recipient: the copy is the email
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
            if not relation.is_tracked:
                continue
            if id(relation.email) in hot:
                events += [
                    _event(relation, kind, Label.HUMAN, now - ago, links_of, link)
                    for kind, ago, link in (
                        ("open", timedelta(hours=5), None),
                        ("open", timedelta(hours=3), None),
                        ("click", timedelta(hours=3) - timedelta(minutes=1), 0),
                    )
                ]
                continue
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


def _records_catch_up() -> None:
    """What the nightly and hourly jobs would have made of the history: every record's
    metrics, follow-ups for the quiet ones, alerts for the people engaged today."""
    activity_metrics_recompute()
    follow_ups_create()
    engagement_alerts_create()


def _dont_track(contact: Contact) -> bool:
    return contact.individual is not None and contact.individual.has_opted_out_tracking


def _last_of_each_sender(recipients: list[tuple[EmailMessage, Contact]]) -> list[int]:
    """The index of each sender's latest tracked email in `recipients` (oldest first)."""
    last: dict[int | None, int] = {}
    for index, (email, contact) in enumerate(recipients):
        if not _dont_track(contact):
            last[email.sender_id] = index
    return list(last.values())


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
