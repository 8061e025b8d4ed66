"""Poll an IMAP mailbox for inbound mail (bounces, complaints, replies) and hand each message on.

A plain module on the standard library's ``imaplib``: it reads no settings and imports no
models; the caller passes the mailbox URL and a ``handle(raw) -> bool | Handled`` callback.

Delivery is at least once. A message is marked ``\\Seen`` only after ``handle`` returns True
(or ``Handled.KEPT``), so a crash between the two hands the same message over again on the next
poll: ``handle`` must be idempotent. A message ``handle`` declines (returns False or raises) is
moved to a folder for a person to look at. One that must not be kept anywhere (``Handled.ERASED``:
a forgotten person's mail) is deleted from the mailbox; nothing else is ever deleted outright.

Folder names use "/" between levels ("Openrate/Failed"); it is replaced by the server's own
hierarchy delimiter (Dovecot's maildir default is ".").
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"imaps": 993, "imap": 143}

_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<delimiter>\\.|[^"])"|NIL) ')


@dataclass(frozen=True)
class ImapTarget:
    """Where to poll, as read from an ``imap://`` or ``imaps://`` URL."""

    tls: bool
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str


@dataclass(frozen=True)
class PollResult:
    processed: int
    failed: int  # moved to the failed folder for a person to look at
    erased: int = 0  # handled, and deleted from the mailbox (Handled.ERASED)


class Handled(Enum):
    """What ``handle`` made of a message, beyond True (kept) and False (declined)."""

    KEPT = "kept"  # marked \Seen and left in the mailbox
    ERASED = "erased"  # not to be kept anywhere: deleted from the mailbox


def parse_imap_url(url: str) -> ImapTarget:
    """Read ``imaps://user:pass@host[:port]/FOLDER`` or ``imap://...``; FOLDER defaults to INBOX."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"IMAP URL must start with imaps:// or imap://, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("IMAP URL has no host")
    if not parts.username or parts.password is None:
        raise ValueError("IMAP URL needs a user and a password: imaps://user:pass@host/INBOX")
    if parts.query or parts.fragment:
        raise ValueError("IMAP URL takes no query string or fragment")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as error:
        raise ValueError(f"IMAP URL has a bad port: {error}") from None
    folder = unquote(parts.path.removeprefix("/")) or "INBOX"
    _check_folder_name(folder)
    return ImapTarget(
        tls=parts.scheme == "imaps",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def poll_mailbox(
    url: str,
    handle: Callable[[bytes], bool | Handled],
    *,
    failed_folder: str = "Openrate/Failed",
    limit: int = 200,
    timeout: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
) -> PollResult:
    """Hand each unseen message (oldest first, at most ``limit``) to ``handle`` and file it.

    Raises ``ValueError`` for a bad URL or argument, ``imaplib.IMAP4.error`` when the server
    refuses a command, and ``OSError`` for network trouble; ``handle``'s own errors are caught.
    """
    target = parse_imap_url(url)
    _check_folder_name(failed_folder)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if failed_folder == target.folder:
        raise ValueError("failed_folder must differ from the folder being polled")

    conn: imaplib.IMAP4
    if target.tls:
        conn = imaplib.IMAP4_SSL(
            target.host,
            target.port,
            ssl_context=ssl_context or ssl.create_default_context(),
            timeout=timeout,
        )
    else:
        conn = imaplib.IMAP4(target.host, target.port, timeout=timeout)
    try:
        conn.login(target.user, target.password)
        session = _Session(conn)
        return session.poll(target.folder, handle, failed_folder=failed_folder, limit=limit)
    finally:
        # The poll's outcome (or its error) matters more than a clean goodbye.
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


class _Session:
    """One logged-in connection; everything addresses messages by UID."""

    def __init__(self, conn: imaplib.IMAP4) -> None:
        self.conn = conn
        self.capabilities = frozenset(
            word.upper() for word in _ok(conn.capability(), "CAPABILITY")[0].decode().split()
        )
        self._delimiter: str | None = None
        self._failed_folder_ready = False

    def poll(
        self,
        folder: str,
        handle: Callable[[bytes], bool | Handled],
        *,
        failed_folder: str,
        limit: int,
    ) -> PollResult:
        _ok(self.conn.select(self._mailbox(folder)), f"SELECT {folder}")
        # UNDELETED: a message copied out and flagged \Deleted but not yet expunged is done.
        found = _ok(self.conn.uid("SEARCH", "UNSEEN UNDELETED"), "UID SEARCH")
        uids = sorted(int(uid) for uid in b" ".join(d for d in found if d).split())[:limit]
        processed = failed = erased = 0
        for uid in uids:
            raw = self._fetch(uid)
            if raw is None:
                continue  # expunged by another client since the search
            where = (folder, uid, failed_folder)
            try:
                handled = handle(raw)
            except Exception:
                logger.exception("IMAP %s UID %s: handler failed; moving it to %s", *where)
                handled = False
            else:
                if not handled:
                    logger.warning("IMAP %s UID %s: handler declined it; moving it to %s", *where)
            if handled is Handled.ERASED:
                self._delete(uid)
                erased += 1
            elif handled:
                _ok(self.conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
                processed += 1
            else:
                self._move(uid, failed_folder)
                failed += 1
        return PollResult(processed=processed, failed=failed, erased=erased)

    def _fetch(self, uid: int) -> bytes | None:
        # BODY.PEEK[] leaves \Seen alone: only a handled message gets it.
        data = _ok(self.conn.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")
        # The server may slip in unsolicited FETCH responses (flag changes from other clients);
        # ours is the one carrying the body literal.
        for item in data:
            if isinstance(item, tuple) and b"BODY[]" in item[0]:
                return bytes(item[1])
        return None

    def _move(self, uid: int, folder: str) -> None:
        self._ensure_folder(folder)
        mailbox = self._mailbox(folder)
        if "MOVE" in self.capabilities:
            _ok(self.conn.uid("MOVE", str(uid), mailbox), "UID MOVE")
            return
        _ok(self.conn.uid("COPY", str(uid), mailbox), "UID COPY")
        self._delete(uid)

    def _delete(self, uid: int) -> None:
        _ok(self.conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            _ok(self.conn.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
        else:
            _ok(self.conn.expunge(), "EXPUNGE")

    def _ensure_folder(self, folder: str) -> None:
        if self._failed_folder_ready:
            return
        mailbox = self._mailbox(folder)
        listed = _ok(self.conn.list('""', mailbox), "LIST")
        exists = any(
            (match := _LIST_LINE.match(line))
            and b"\\noselect" not in match["flags"].lower()
            and b"\\nonexistent" not in match["flags"].lower()
            for line in listed
            if isinstance(line, bytes)
        )
        if not exists:
            typ, data = self.conn.create(mailbox)
            # Another poller may have created it between our LIST and CREATE.
            if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if d):
                raise imaplib.IMAP4.error(f"CREATE {folder} failed: {data!r}")
            # Many mail clients show only subscribed folders; a person must find this one.
            self.conn.subscribe(mailbox)
        self._failed_folder_ready = True

    def _mailbox(self, folder: str) -> str:
        """The quoted name to send, with "/" replaced by the server's delimiter."""
        if "/" in folder:
            folder = folder.replace("/", self._server_delimiter())
        return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _server_delimiter(self) -> str:
        if self._delimiter is None:
            self._delimiter = "/"
            for line in _ok(self.conn.list('""', '""'), "LIST"):
                match = _LIST_LINE.match(line) if isinstance(line, bytes) else None
                if match and match["delimiter"]:
                    self._delimiter = match["delimiter"].decode()[-1]
                    break
        return self._delimiter


def _ok(result: tuple[str, list], what: str) -> list:
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what} failed: {typ} {data!r}")
    return data


def _check_folder_name(folder: str) -> None:
    # Non-ASCII names need IMAP's modified UTF-7, which imaplib does not do for us.
    if not folder.isascii() or not folder.isprintable():
        raise ValueError(f"IMAP folder name must be printable ASCII: {folder!r}")
