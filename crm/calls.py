"""Calls a rep logs: a completed Task of type Call on the record, counted as activity."""

from __future__ import annotations

from django.utils import timezone

from crm.activity import activity_changed
from crm.models import Account, Contact, Lead, Opportunity, Task, User


def call_log(
    *, owner: User, record: Contact | Lead | Account | Opportunity, subject: str, comments: str
) -> Task:
    """Log a call that happened: a completed Task of type Call on the record."""
    now = timezone.now()
    task = Task.objects.create(
        owner=owner,
        subject=subject or "Call",
        description=comments,
        subtype=Task.Subtype.CALL,
        status=Task.Status.COMPLETED,
        completed_at=now,
        due_date=timezone.localdate(now),
        who_contact=record if isinstance(record, Contact) else None,
        who_lead=record if isinstance(record, Lead) else None,
        what_account=record if isinstance(record, Account) else None,
        what_opportunity=record if isinstance(record, Opportunity) else None,
    )
    activity_changed(
        contact_ids=[record.pk] if isinstance(record, Contact) else [],
        lead_ids=[record.pk] if isinstance(record, Lead) else [],
        account_ids=[record.pk] if isinstance(record, Account) else [],
        opportunity_ids=[record.pk] if isinstance(record, Opportunity) else [],
    )
    return task
