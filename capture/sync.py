"""Syncing one mailbox: its inbox and sent folders read incrementally, a batch at a time.

Each folder keeps its UIDVALIDITY and the last UID read (FolderState). A sync reads the UIDs
after that one, fetches them in batches (BODY.PEEK[]: nothing is marked read) and captures
each batch in one transaction together with the folder's new last UID, so a connection lost
mid-fetch resumes after the last committed batch. A first sync, or a folder whose UIDVALIDITY
changed (the server renumbered it), reads back Setup's "reach back" days; the ledger
(CapturedMessage) keeps what was captured before from being stored again.

Private mail: a message with the IMAP keyword $Private (any case) is never captured, and mail
the user files in their private folder (the Mailbox page's choice) is removed if it was.

One sync per mailbox at a time: a sync claims the mailbox with a conditional UPDATE of
`sync_started_at` (a claim older than SYNC_CLAIM_TIMEOUT is a dead worker's and is taken over).
A failed sync is counted; Setup's failure limit in a row pauses the mailbox and gives its owner
a task to reconnect it.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from capture import imap
from capture.credentials import KeyMissing, Undecryptable, password_decrypt
from capture.models import CapturedMessage, FolderState, Mailbox
from capture.reading import Unreadable, mail_read
from capture.storing import REFRESH_ACTIVITY, Item, Rules, mails_capture
from crm import jobs
from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, Task
from crm.sql import ids_of

logger = logging.getLogger(__name__)

BATCH = 200
SYNC_MAILBOX = "capture.tasks.sync_mailbox"  # the one mailbox's job, queued by name
SYNC_CLAIM_TIMEOUT = timedelta(minutes=30)
PRIVATE_KEYWORD = "$Private"


@dataclass
class SyncResult:
    ran: bool = True  # False: another sync holds the mailbox, or it is paused
    captured: int = 0
    read: int = 0
    unreadable: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    error: str = ""


def tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, plus MAILBOX_TLS_CA_FILE's (a private CA) when set."""
    context = ssl.create_default_context()
    if settings.MAILBOX_TLS_CA_FILE:
        context.load_verify_locations(cafile=settings.MAILBOX_TLS_CA_FILE)
    return context


def account_of(mailbox: Mailbox) -> imap.Account:
    return imap.Account(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password=password_decrypt(mailbox.password_token),
        starttls=mailbox.security == Mailbox.Security.STARTTLS,
    )


def mailbox_sync(*, mailbox_id: int, batch: int = BATCH, now: datetime | None = None) -> SyncResult:
    """Read what is new in the mailbox and capture it; never two at once for one mailbox."""
    now = now or timezone.now()
    claimed = (
        Mailbox.objects.filter(pk=mailbox_id, paused_at__isnull=True)
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=now - SYNC_CLAIM_TIMEOUT))
        .update(sync_started_at=now)
    )
    if not claimed:
        return SyncResult(ran=False)
    mailbox = Mailbox.objects.select_related("user").get(pk=mailbox_id)
    result = SyncResult()
    try:
        _sync(mailbox, result, batch=batch, now=now)
    except (
        imap.MailboxError,
        KeyMissing,
        Undecryptable,
        imaplib.IMAP4.error,
        OSError,
        EOFError,
    ) as error:
        result.error = _in_words(error)
        logger.warning("Mailbox %s: sync failed: %s", mailbox_id, result.error)
        _failure_record(mailbox, result.error, now)
    else:
        Mailbox.objects.filter(pk=mailbox_id).update(
            last_sync_at=timezone.now(), last_success_at=timezone.now(), failures_in_a_row=0
        )
    finally:
        Mailbox.objects.filter(pk=mailbox_id).update(sync_started_at=None)
    return result


def _in_words(error: BaseException) -> str:
    if isinstance(error, imap.MailboxError | KeyMissing | Undecryptable):
        return str(error)[:500]
    if isinstance(error, imaplib.IMAP4.abort | EOFError | ConnectionError):
        return (
            f"The server closed the connection during the sync ({error}); the next sync resumes."[
                :500
            ]
        )
    if isinstance(error, TimeoutError):
        return "The server stopped answering during the sync; the next sync resumes."
    return f"{type(error).__name__}: {error}"[:500]


def _sync(mailbox: Mailbox, result: SyncResult, *, batch: int, now: datetime) -> None:
    org = OrgSettings.load()
    rules = Rules.for_user(mailbox.user, mailbox)
    since = timezone.localdate(now) - timedelta(days=org.capture_reach_back_days)
    roles = [(FolderState.Role.INBOX, mailbox.inbox_folder)]
    if mailbox.sent_folder:
        roles.append((FolderState.Role.SENT, mailbox.sent_folder))
    with imap.session(account_of(mailbox), ssl_context=tls_context()) as session:
        for role, name in roles:
            private = _folder_sync(session, mailbox, role, name, rules, result, since, batch)
            flagged = session.uids_with_keyword(PRIVATE_KEYWORD)
            private_ids = set(session.message_ids(flagged).values()) | private
            _private_forget(mailbox, private_ids)
        if mailbox.private_folder:
            _private_folder_sync(session, mailbox)


def _state(mailbox: Mailbox, role: str, name: str) -> FolderState:
    state, _ = FolderState.objects.get_or_create(
        mailbox=mailbox, role=role, defaults={"name": name}
    )
    if state.name != name:  # the user chose another folder: read it from the start
        state.name, state.uidvalidity, state.last_uid = name, 0, 0
        state.save(update_fields=["name", "uidvalidity", "last_uid"])
    return state


def _folder_sync(
    session: imap.Session,
    mailbox: Mailbox,
    role: str,
    name: str,
    rules: Rules,
    result: SyncResult,
    since: object,
    batch: int,
) -> set[str]:
    """Capture the folder's new messages; returns the Message-IDs of those marked private."""
    state = _state(mailbox, role, name)
    validity, count = session.examine(name)
    if validity != state.uidvalidity:
        # First read, or the server renumbered the folder: read back again from `since`; the
        # ledger keeps what was captured before from being stored twice.
        if state.uidvalidity:
            logger.info("Mailbox %s: %s has a new UIDVALIDITY; reading it again", mailbox.pk, name)
        uids = session.uids_since(since) if count else []  # type: ignore[arg-type]
        FolderState.objects.filter(pk=state.pk).update(uidvalidity=validity, last_uid=0)
        state.uidvalidity, state.last_uid = validity, 0
    else:
        uids = session.uids_after(state.last_uid) if count else []
    private: set[str] = set()
    for start in range(0, len(uids), batch):
        chunk = uids[start : start + batch]
        items: list[Item] = []
        for fetched in session.fetch(chunk):
            result.read += 1
            mail = mail_read(fetched.raw)
            if isinstance(mail, Unreadable):
                result.unreadable += 1
                logger.warning(
                    "Mailbox %s: %s UID %s is not readable mail, left out: %s",
                    mailbox.pk,
                    name,
                    fetched.uid,
                    mail.reason,
                )
                continue
            if PRIVATE_KEYWORD.lower() in fetched.flags:
                private.add(mail.message_id)
                continue
            items.append(Item(mail=mail, raw=fetched.raw))
        with transaction.atomic():
            _private_record(mailbox, private)
            captured = mails_capture(user=mailbox.user, items=items, rules=rules)
            FolderState.objects.filter(pk=state.pk).update(
                last_uid=max(chunk), synced_at=timezone.now()
            )
            Mailbox.objects.filter(pk=mailbox.pk).update(
                messages_captured=F("messages_captured") + captured.captured
            )
        result.captured += captured.captured
        for why, n in captured.skipped.items():
            result.skipped[why] = result.skipped.get(why, 0) + n
    if not uids:
        FolderState.objects.filter(pk=state.pk).update(synced_at=timezone.now())
    return private


def _private_folder_sync(session: imap.Session, mailbox: Mailbox) -> None:
    state = _state(mailbox, FolderState.Role.PRIVATE, mailbox.private_folder)
    validity, count = session.examine(mailbox.private_folder)
    last = state.last_uid if validity == state.uidvalidity else 0
    uids = session.uids_after(last) if count else []
    ids = session.message_ids(uids)
    _private_forget(mailbox, set(ids.values()))
    FolderState.objects.filter(pk=state.pk).update(
        uidvalidity=validity, last_uid=max(uids, default=last), synced_at=timezone.now()
    )


def _private_record(mailbox: Mailbox, message_ids: set[str]) -> None:
    CapturedMessage.objects.bulk_create(
        [
            CapturedMessage(
                user=mailbox.user, message_id=i, outcome=CapturedMessage.Outcome.PRIVATE
            )
            for i in message_ids
        ],
        ignore_conflicts=True,
    )


def _private_forget(mailbox: Mailbox, message_ids: set[str]) -> None:
    """The user marked these private: never capture them, and remove any captured before."""
    if not message_ids:
        return
    with transaction.atomic():
        ledger = CapturedMessage.objects.filter(
            user=mailbox.user,
            message_id__in=message_ids,
            outcome=CapturedMessage.Outcome.CAPTURED,
        )
        emails = EmailMessage.objects.filter(
            pk__in=ledger.values("email_id"),
            source=EmailMessage.Source.CAPTURED,
            captured_for=mailbox.user,
        )
        relations = EmailMessageRelation.objects.filter(email__in=emails)
        contact_ids = ids_of(relations.filter(contact__isnull=False), "contact_id")
        lead_ids = ids_of(relations.filter(lead__isnull=False), "lead_id")
        removed = emails.delete()[1].get("crm.EmailMessage", 0)
        CapturedMessage.objects.filter(user=mailbox.user, message_id__in=message_ids).update(
            outcome=CapturedMessage.Outcome.PRIVATE, email=None
        )
        _private_record(mailbox, message_ids)
        if removed:
            Mailbox.objects.filter(pk=mailbox.pk).update(
                messages_captured=Greatest(F("messages_captured") - removed, Value(0))
            )
        if contact_ids or lead_ids:
            jobs.enqueue(
                REFRESH_ACTIVITY, contact_ids=sorted(contact_ids), lead_ids=sorted(lead_ids)
            )


def _failure_record(mailbox: Mailbox, error: str, now: datetime) -> None:
    """Count a failed sync; Setup's limit in a row pauses the mailbox and tells its owner."""
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            failures_in_a_row=F("failures_in_a_row") + 1,
            last_error=error,
            last_error_at=now,
            last_sync_at=now,
        )
        limit = OrgSettings.load().mailbox_failure_limit
        paused = Mailbox.objects.filter(
            pk=mailbox.pk, paused_at__isnull=True, failures_in_a_row__gte=limit
        ).update(paused_at=now)
        if paused:
            Task.objects.create(
                owner=mailbox.user,
                subject="Your mailbox stopped syncing: reconnect it"[:255],
                description=f"Openrate could not read {mailbox} {limit} times in a row, so it "
                f"paused capturing your email. The last error: {error} Open the Mailbox page, "
                "fix the connection and resume.",
                priority=Task.Priority.HIGH,
                due_date=timezone.localdate(now),
            )
