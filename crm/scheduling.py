"""Send later: a single email is kept as a ScheduledEmail and sent at its time by beat
(crm.tasks.send_scheduled_emails) through crm.sending.email_send, so Setup's checks, each
recipient's privacy and the daily limit apply on the day it goes.

Each due email is claimed with a conditional UPDATE (scheduled -> sending where its time has
come) inside the transaction that sends it and records the outcome: a second beat run blocks on
the row and then finds it no longer scheduled, and a worker killed mid-send rolls the claim back
with the send, so the email goes out on the next run, once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from crm.models import (
    Account,
    Contact,
    EmailMessage,
    EmailTemplate,
    Lead,
    Opportunity,
    ScheduledEmail,
    Task,
    User,
)
from crm.sending import SendRefused, email_send

logger = logging.getLogger(__name__)

# How far ahead an email may be scheduled (the 60 days).
MAX_AHEAD = timedelta(days=60)
# Due emails handled per beat run; the rest wait for the next run (a minute later).
DUE_BATCH = 500


class ScheduleRefused(Exception):
    """The time or the email cannot be scheduled (or changed); the message says why."""


def user_zone(user: User) -> ZoneInfo:
    """The zone a user's pages show times in: theirs, else the site's."""
    return ZoneInfo(user.time_zone or timezone.get_default_timezone_name())


def send_at_from_local(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time typed in `zone` as an aware datetime. A time the clocks skip (the
    spring change) does not exist there: refused rather than moved."""
    aware = local.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        raise ScheduleRefused(
            f"{local:%H:%M} does not exist on {local:%b} {local.day} in {zone.key} (the clocks "
            "change): choose another time."
        )
    return aware


def send_at_problem(send_at: datetime, *, now: datetime | None = None) -> str:
    """Why this time cannot be used, in words, or ""."""
    now = now or timezone.now()
    if send_at <= now:
        return "That time has passed: choose a time in the future."
    if send_at > now + MAX_AHEAD:
        return f"An email can be scheduled up to {MAX_AHEAD.days} days ahead."
    return ""


def scheduled_email_create(
    *,
    sender: User,
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    subject: str,
    html_body: str,
    send_at: datetime,
    person: Contact | Lead | None = None,
    related_to: Account | Opportunity | None = None,
    campaign: Model | None = None,
    template: EmailTemplate | None = None,
    reply_to: EmailMessage | None = None,
    forward: bool = False,
) -> ScheduledEmail:
    """Keep an email to send at `send_at` (the composer checked the fields, as for a send now)."""
    problem = send_at_problem(send_at)
    if problem:
        raise ScheduleRefused(problem)
    if not sender.email:
        raise ScheduleRefused("Your user has no email address to send from; ask an admin.")
    return ScheduledEmail.objects.create(
        sender=sender,
        contact=person if isinstance(person, Contact) else None,
        lead=person if isinstance(person, Lead) else None,
        to_addresses=", ".join(to),
        cc_addresses=", ".join(cc),
        bcc_addresses=", ".join(bcc),
        subject=subject,
        html_body=html_body,
        send_at=send_at,
        related_account=related_to if isinstance(related_to, Account) else None,
        related_opportunity=related_to if isinstance(related_to, Opportunity) else None,
        campaign_id=campaign.pk if campaign is not None else None,
        template=template,
        reply_to=reply_to,
        forward=forward,
    )


def scheduled_email_update(
    *,
    scheduled: ScheduledEmail,
    to: Sequence[str],
    cc: Sequence[str],
    bcc: Sequence[str],
    subject: str,
    html_body: str,
    send_at: datetime,
) -> None:
    """Change a waiting email; refused once it has gone (or is going: the row is locked)."""
    problem = send_at_problem(send_at)
    if problem:
        raise ScheduleRefused(problem)
    with transaction.atomic():
        changed = (
            ScheduledEmail.objects.select_for_update()
            .filter(pk=scheduled.pk, status=ScheduledEmail.Status.SCHEDULED)
            .update(
                to_addresses=", ".join(to),
                cc_addresses=", ".join(cc),
                bcc_addresses=", ".join(bcc),
                subject=subject,
                html_body=html_body,
                send_at=send_at,
                updated_at=timezone.now(),
            )
        )
    if not changed:
        raise ScheduleRefused("It is no longer waiting: it has been sent or cancelled.")


def scheduled_email_cancel(*, scheduled: ScheduledEmail) -> bool:
    """Cancel a waiting email; False when it has already gone (or been cancelled)."""
    return bool(
        ScheduledEmail.objects.filter(
            pk=scheduled.pk, status=ScheduledEmail.Status.SCHEDULED
        ).update(status=ScheduledEmail.Status.CANCELLED, updated_at=timezone.now())
    )


def scheduled_emails_due(*, now: datetime | None = None, limit: int = DUE_BATCH) -> list[int]:
    """The waiting emails whose time has come, oldest first (index scheduled_email_due)."""
    now = now or timezone.now()
    return list(
        ScheduledEmail.objects.filter(status=ScheduledEmail.Status.SCHEDULED, send_at__lte=now)
        .order_by("send_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def scheduled_emails_send_due(*, now: datetime | None = None) -> int:
    """Send every due email (beat); returns how many were sent. One transaction each."""
    now = now or timezone.now()
    sent = 0
    for scheduled_id in scheduled_emails_due(now=now):
        try:
            sent += scheduled_email_send(scheduled_id=scheduled_id, now=now)
        except Exception:
            # Left scheduled (its transaction rolled back): the next run tries it again.
            logger.exception("Scheduled email %s could not be sent", scheduled_id)
    return sent


def scheduled_email_send(*, scheduled_id: int, now: datetime | None = None) -> bool:
    """Claim one due email and send it; True when this call sent it. A refusal at send time
    (a limit, Setup, every recipient's privacy) is kept as Not sent with the reason, and the
    sender gets a task saying so."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = ScheduledEmail.objects.filter(
            pk=scheduled_id, status=ScheduledEmail.Status.SCHEDULED, send_at__lte=now
        ).update(status=ScheduledEmail.Status.SENDING)
        if not claimed:
            return False
        scheduled = ScheduledEmail.objects.select_related(
            "sender", "contact", "lead", "related_account", "related_opportunity", "template"
        ).get(pk=scheduled_id)
        try:
            with transaction.atomic():
                email = _send(scheduled)
        except SendRefused as refused:
            _record_failure(scheduled, str(refused), now=now)
            return False
        ScheduledEmail.objects.filter(pk=scheduled_id).update(
            status=ScheduledEmail.Status.SENT, email=email, updated_at=now
        )
    return True


def _send(scheduled: ScheduledEmail) -> EmailMessage:
    sender = scheduled.sender
    if not sender.is_active:
        raise SendRefused("The sender's user is deactivated.")
    if not sender.email:
        raise SendRefused("The sender's user has no email address to send from.")
    person = scheduled.person
    if person is not None and not (
        type(person).objects.visible_to(sender).filter(pk=person.pk).exists()
    ):
        # Reassigned since it was written: sent to as a plain address, as email_send decides.
        person = None

    def recipients(value: str) -> list[Contact | Lead | str]:
        # The person it was written to is named as that record, as the composer does.
        addresses = [part.strip() for part in value.split(",") if part.strip()]
        if person is None or not person.email:
            return list(addresses)
        mine = person.email.lower()
        return [person if address.lower() == mine else address for address in addresses]

    related_to: Account | Opportunity | None = (
        scheduled.related_opportunity or scheduled.related_account
    )
    return email_send(
        sender=sender,
        to=recipients(scheduled.to_addresses),
        cc=recipients(scheduled.cc_addresses),
        bcc=recipients(scheduled.bcc_addresses),
        subject=scheduled.subject,
        html_body=scheduled.html_body,
        related_to=related_to,
        campaign=scheduled.campaign,
        reply_to=scheduled.reply_to,
        forward=scheduled.forward,
        template=scheduled.template,
    )


def _record_failure(scheduled: ScheduledEmail, reason: str, *, now: datetime) -> None:
    ScheduledEmail.objects.filter(pk=scheduled.pk).update(
        status=ScheduledEmail.Status.FAILED, failure_reason=reason, updated_at=now
    )
    when = timezone.localtime(scheduled.send_at, user_zone(scheduled.sender))
    Task.objects.create(
        owner=scheduled.sender,
        subject=f"Scheduled email not sent: {scheduled.subject}"[:255],
        description=f"The email scheduled for {when:%b %d, %Y %H:%M} was not sent: {reason}",
        due_date=timezone.localdate(now),
        who_contact=scheduled.contact,
        who_lead=scheduled.lead,
    )
