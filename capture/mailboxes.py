"""Connecting, testing, resuming and disconnecting a user's mailbox."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from capture import imap
from capture.credentials import password_encrypt
from capture.models import FolderState, Mailbox
from capture.sync import tls_context
from crm.models import User

INBOX = "INBOX"


@dataclass(frozen=True)
class Probe:
    """What a test connection found: the folders, and the sent folder by its \\Sent flag."""

    folders: list[str]
    sent: str  # "" when no folder carries \\Sent (RFC 6154): the user chooses one

    @property
    def summary(self) -> str:
        sent = (
            f"the sent folder is “{self.sent}” (marked \\Sent by the server)"
            if self.sent
            else "the server marks no folder as Sent: choose it below"
        )
        return f"Connected and signed in: {len(self.folders)} folders; {sent}."


def mailbox_probe(*, account: imap.Account, timeout: float = 20.0) -> Probe:
    """Connect, sign in, list the folders and open the inbox; raises imap.MailboxError."""
    with imap.session(account, ssl_context=tls_context(), timeout=timeout) as session:
        folders = [f for f in session.folders() if f.selectable]
        session.examine(INBOX)
    sent = next((f.name for f in folders if imap.SENT in f.flags), "")
    return Probe(sorted(f.name for f in folders), sent)


def mailbox_connect(
    *,
    user: User,
    account: imap.Account,
    security: str,
    probe: Probe,
    other_addresses: str = "",
) -> Mailbox:
    """Store the (tested) connection, its password encrypted; a new server or user starts
    the folders again. Connecting again also resumes a paused mailbox."""
    token = password_encrypt(account.password)
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(user=user).first()
        if mailbox is not None and (mailbox.host, mailbox.username) != (
            account.host,
            account.username,
        ):
            FolderState.objects.filter(mailbox=mailbox).delete()
        fields = {
            "host": account.host,
            "port": account.port,
            "security": security,
            "username": account.username,
            "password_token": token,
            "known_folders": probe.folders,
            "other_addresses": other_addresses,
            "paused_at": None,
            "failures_in_a_row": 0,
        }
        if mailbox is None or not mailbox.sent_folder or mailbox.host != account.host:
            fields["sent_folder"] = probe.sent
        mailbox, _ = Mailbox.objects.update_or_create(user=user, defaults=fields)
    return mailbox


def mailbox_folders_set(*, mailbox: Mailbox, inbox: str, sent: str, private: str) -> None:
    mailbox.inbox_folder, mailbox.sent_folder, mailbox.private_folder = inbox, sent, private
    mailbox.save(update_fields=["inbox_folder", "sent_folder", "private_folder"])


def mailbox_resume(*, mailbox: Mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(paused_at=None, failures_in_a_row=0)


def mailbox_disconnect(*, user: User) -> bool:
    """Delete the connection and its credentials; captured email stays on the records."""
    deleted, _ = Mailbox.objects.filter(user=user).delete()
    return bool(deleted)
