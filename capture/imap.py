"""Reading a user's mailbox over IMAP (the standard library's ``imaplib``), over TLS.

A plain module: it reads no settings and imports no models. Everything addresses messages by
UID and reads with EXAMINE and BODY.PEEK[], so syncing never changes a flag in the user's mail.
Failures are raised as ``MailboxError`` with what failed in words (DNS, connection, TLS,
authentication, folder), for the Mailbox page and its "Test connection" button.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

# RFC 6154's special-use attributes this module looks for.
SENT = "\\sent"
_LIST_LINE = re.compile(
    rb'^\((?P<flags>[^)]*)\) (?:"(?P<delimiter>\\.|[^"])"|NIL) (?P<name>.+)$', re.DOTALL
)
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class MailboxError(Exception):
    """What went wrong, in words; `kind` is one of dns, connect, tls, auth, folder, server."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Account:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    starttls: bool = False


@dataclass(frozen=True)
class Folder:
    name: str
    flags: frozenset[str]  # lower-cased, e.g. {"\\sent", "\\hasnochildren"}

    @property
    def selectable(self) -> bool:
        return not self.flags & {"\\noselect", "\\nonexistent"}


@dataclass(frozen=True)
class Fetched:
    uid: int
    flags: frozenset[str]
    raw: bytes


@contextlib.contextmanager
def session(
    account: Account, *, ssl_context: ssl.SSLContext, timeout: float = 30.0
) -> Iterator[Session]:
    """A logged-in session; logs out on exit (quietly: the work's outcome matters more)."""
    conn = _connect(account, ssl_context=ssl_context, timeout=timeout)
    try:
        try:
            conn.login(account.username, account.password)
        except imaplib.IMAP4.error as error:
            raise MailboxError(
                "auth", f"The server refused the user name or app password ({_said(error)})."
            ) from None
        yield Session(conn)
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError):
            conn.logout()


def _connect(account: Account, *, ssl_context: ssl.SSLContext, timeout: float) -> imaplib.IMAP4:
    try:
        socket.getaddrinfo(account.host, account.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise MailboxError("dns", f"No such mail server: {account.host} is not in DNS.") from None
    where = f"{account.host}:{account.port}"
    try:
        if account.starttls:
            conn = imaplib.IMAP4(account.host, account.port, timeout=timeout)
            try:
                conn.starttls(ssl_context=ssl_context)
            except imaplib.IMAP4.error as error:
                conn.shutdown()
                raise MailboxError(
                    "tls", f"{where} does not offer STARTTLS ({_said(error)})."
                ) from None
            return conn
        return imaplib.IMAP4_SSL(
            account.host, account.port, ssl_context=ssl_context, timeout=timeout
        )
    except ssl.SSLCertVerificationError as error:
        raise MailboxError(
            "tls", f"The TLS certificate of {where} is not trusted: {error.verify_message}."
        ) from None
    except ssl.SSLError as error:
        raise MailboxError(
            "tls",
            f"No TLS connection with {where} ({error.reason or error}): is this the IMAPS "
            "port, or does the server want STARTTLS?",
        ) from None
    except TimeoutError:
        raise MailboxError("connect", f"{where} did not answer in {timeout:g} seconds.") from None
    except ConnectionRefusedError:
        raise MailboxError("connect", f"{where} refused the connection: wrong port?") from None
    except (OSError, EOFError, imaplib.IMAP4.abort) as error:
        raise MailboxError("connect", f"Could not connect to {where}: {error}.") from None


def _said(error: BaseException) -> str:
    text = str(error)
    return text.strip("[]b'\"") or "no reason given"


def _ok(result: tuple[str, list], what: str, kind: str = "server") -> list:
    typ, data = result
    if typ != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise MailboxError(kind, f"The server refused {what}: {said or typ}.")
    return data


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquoted(name: bytes) -> str:
    text = name.decode(errors="replace").strip()
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def uid_set(uids: list[int]) -> str:
    """UIDs as an IMAP sequence set with ranges ("1:5,8,10:12"): short commands for big batches."""
    parts: list[str] = []
    start = previous = None
    for uid in sorted(uids):
        if start is None:
            start = previous = uid
        elif uid == previous + 1:  # type: ignore[operator]
            previous = uid
        else:
            parts.append(f"{start}:{previous}" if start != previous else str(start))
            start = previous = uid
    if start is not None:
        parts.append(f"{start}:{previous}" if start != previous else str(start))
    return ",".join(parts)


class Session:
    """One logged-in connection."""

    def __init__(self, conn: imaplib.IMAP4) -> None:
        self.conn = conn

    def folders(self) -> list[Folder]:
        """Every folder, with its flags (RFC 6154 special-use ones included when offered)."""
        # RFC 6154: a server with SPECIAL-USE puts \Sent and the others on plain LIST replies.
        data = _ok(self.conn.list('""', "*"), "LIST", "folder")
        found = []
        for line in data:
            if not isinstance(line, bytes) or not (match := _LIST_LINE.match(line)):
                continue
            flags = frozenset(f.lower() for f in match["flags"].decode().split())
            found.append(Folder(_unquoted(match["name"]), flags))
        return found

    def examine(self, folder: str) -> tuple[int, int]:
        """Open the folder read-only; its UIDVALIDITY and message count."""
        typ, data = self.conn.select(quoted(folder), readonly=True)
        if typ != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise MailboxError("folder", f"The folder “{folder}” cannot be opened: {said}.")
        validity = self.conn.response("UIDVALIDITY")[1][-1]
        return int(validity or 0), int(data[0] or 0)

    def uids_since(self, day: date) -> list[int]:
        """UIDs of the messages received on or after the day (INTERNALDATE)."""
        when = f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"
        return self._search(f"SINCE {when}")

    def uids_after(self, last_uid: int) -> list[int]:
        # "n:*" always names the last message, even when its UID is below n: filter it out.
        return [uid for uid in self._search(f"UID {last_uid + 1}:*") if uid > last_uid]

    def uids_with_keyword(self, keyword: str) -> list[int]:
        return self._search(f"KEYWORD {keyword}")

    def _search(self, criteria: str) -> list[int]:
        data = _ok(self.conn.uid("SEARCH", criteria), "UID SEARCH")
        return sorted(int(uid) for uid in b" ".join(d for d in data if d).split())

    def fetch(self, uids: list[int]) -> list[Fetched]:
        """The messages with these UIDs (those still there), bodies unread: no \\Seen set."""
        if not uids:
            return []
        data = _ok(self.conn.uid("FETCH", uid_set(uids), "(UID FLAGS BODY.PEEK[])"), "UID FETCH")
        return _fetched(data)

    def message_ids(self, uids: list[int]) -> dict[int, str]:
        """The Message-ID header of each of these messages (for private ones: nothing more)."""
        if not uids:
            return {}
        data = _ok(
            self.conn.uid("FETCH", uid_set(uids), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
            "UID FETCH",
        )
        found = {}
        for item in _fetched(data):
            value = item.raw.decode(errors="replace").partition(":")[2]
            found[item.uid] = " ".join(value.split()).strip("<>")
        return found


def _fetched(data: list) -> list[Fetched]:
    """Read FETCH responses; the server may put FLAGS after the literal, or slip in an
    unsolicited FETCH of another client's flag change (no literal: skipped)."""
    found: list[Fetched] = []
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        head = item[0]
        after = data[index + 1] if index + 1 < len(data) else b""
        tail = after if isinstance(after, bytes) else b""
        uid = _UID.search(head) or _UID.search(tail)
        flags = _FLAGS.search(head) or _FLAGS.search(tail)
        if uid is None:
            continue
        names = frozenset(f.lower() for f in flags[1].decode().split()) if flags else frozenset()
        found.append(Fetched(int(uid[1]), names, bytes(item[1])))
    return found
