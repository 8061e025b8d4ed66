"""A real Dovecot IMAP server on loopback (Debian package dovecot-imapd).

One Dovecot runs for the whole session (stopping one takes a second); each test gets a new user
with an empty INBOX through the ``imap_mailbox`` fixture. A test module imports
``imap_mailbox_fixture`` and ``dovecot_server_fixture`` by name (each such module gets its own
server). ``dovecot(...)`` starts a separate server, for other capabilities or TLS. The config is
written for Dovecot 2.3 (Debian 12); missing Dovecot skips, or fails under REQUIRE_SERVICES=1.
"""

import grp
import imaplib
import itertools
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import skip_or_fail

HOST = "127.0.0.1"
# Characters that must be percent-encoded in a URL, so every poll exercises the decoding.
PASSWORD = "p@ss/w:rd#?"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class StoredMessage:
    uid: int
    flags: frozenset[str]
    raw: bytes


@dataclass(frozen=True)
class ImapMailbox:
    """One user's mailbox on a running Dovecot, and a second client to look into it."""

    port: int
    user: str
    tls: bool
    cafile: Path

    @property
    def url(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}:{quote(PASSWORD, safe='')}@{HOST}:{self.port}/INBOX"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def connect(self) -> imaplib.IMAP4:
        """A new client session, logged in."""
        conn: imaplib.IMAP4
        if self.tls:
            conn = imaplib.IMAP4_SSL(HOST, self.port, ssl_context=self.ssl_context(), timeout=10)
        else:
            conn = imaplib.IMAP4(HOST, self.port, timeout=10)
        conn.login(self.user, PASSWORD)
        return conn

    def append(self, raw: bytes, *, folder: str = "INBOX", seen: bool = False) -> int:
        """Store a raw message in ``folder``; returns its UID."""
        conn = self.connect()
        try:
            typ, data = conn.append(_quoted(folder), r"(\Seen)" if seen else None, None, raw)
        finally:
            conn.logout()
        assert typ == "OK", data
        match = re.search(rb"APPENDUID \d+ (\d+)", data[0])
        assert match, data
        return int(match[1])

    def messages(self, folder: str = "INBOX") -> list[StoredMessage]:
        """What ``folder`` (its name on the server) holds, read without changing any flag."""
        conn = self.connect()
        try:
            typ, data = conn.select(_quoted(folder), readonly=True)
            assert typ == "OK", data
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            assert typ == "OK", data
        finally:
            conn.logout()
        stored = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = re.search(rb"UID (\d+)", item[0])
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
            assert uid and flags, item[0]
            stored.append(StoredMessage(int(uid[1]), frozenset(flags[1].decode().split()), item[1]))
        return sorted(stored, key=lambda message: message.uid)

    def flags(self, uid: int, folder: str = "INBOX") -> frozenset[str]:
        (message,) = [m for m in self.messages(folder) if m.uid == uid]
        return message.flags

    def folders(self) -> list[str]:
        conn = self.connect()
        try:
            typ, data = conn.list()
        finally:
            conn.logout()
        assert typ == "OK", data
        return sorted(line.decode().rsplit(" ", 1)[1].strip('"') for line in data)


@dataclass
class Dovecot:
    """A running Dovecot; each ``mailbox()`` is a new user with an empty INBOX."""

    port: int
    workdir: Path
    tls: bool
    uid: int
    gid: int
    _serial: Iterator[int] = field(default_factory=itertools.count)

    @property
    def log(self) -> str:
        path = self.workdir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mailbox(self) -> ImapMailbox:
        user = f"user{next(self._serial)}"
        return ImapMailbox(self.port, user, self.tls, self.workdir / "cert.pem")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _dovecot_binary() -> str:
    # Debian puts it in /usr/sbin, which a non-root PATH may lack.
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin")
    if not found:
        skip_or_fail("Dovecot is not installed (Debian package dovecot-imapd)")
    assert found
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not version.startswith("2.3."):
        skip_or_fail(f"the IMAP test server config is written for Dovecot 2.3, found {version}")
    return found


def _config(server: Dovecot, *, capability: str | None, extra: str = "") -> str:
    workdir = server.workdir
    if os.geteuid() == 0:
        # Dovecot will not run login processes as root.
        login_user, internal_user, internal_group = "nobody", "root", "dovecot"
        unchrooted: tuple[str, ...] = ()
    else:
        # Unprivileged: every process runs as us, and nothing can chroot.
        login_user = internal_user = pwd.getpwuid(os.getuid()).pw_name
        internal_group = grp.getgrgid(os.getgid()).gr_name
        unchrooted = ("imap-login", "anvil", "ipc", "old-stats")
    lines = [
        "protocols = imap",
        f"listen = {HOST}",
        f"base_dir = {workdir / 'run'}",
        f"state_dir = {workdir / 'state'}",
        f"log_path = {workdir / 'dovecot.log'}",
        f"default_login_user = {login_user}",
        f"default_internal_user = {internal_user}",
        f"default_internal_group = {internal_group}",
        "mail_location = maildir:~",
        "mail_fsync = never",
        "auth_mechanisms = plain",
        "auth_failure_delay = 0",
        "disable_plaintext_auth = no",
        # Any user name logs in with PASSWORD and gets its own maildir: a mailbox per test.
        "passdb {",
        "  driver = static",
        f'  args = "password={PASSWORD}"',  # quoted: a bare "#" would start a comment
        "}",
        "userdb {",
        "  driver = static",
        f"  args = uid={server.uid} gid={server.gid} home={workdir / 'mail'}/%u",
        "}",
        "service imap-login {",
        "  inet_listener imap {",
        f"    port = {0 if server.tls else server.port}",
        "  }",
        "  inet_listener imaps {",
        f"    port = {server.port if server.tls else 0}",
        "  }",
        "}",
        # No auth penalty: else one wrong-password test slows every later login by seconds.
        "service anvil {",
        "  unix_listener anvil-auth-penalty {",
        "    mode = 0",
        "  }",
        "}",
    ]
    lines += [f"service {name} {{\n  chroot =\n}}" for name in unchrooted]
    if server.tls:
        lines += [
            "ssl = required",
            f"ssl_cert = <{workdir / 'cert.pem'}",
            f"ssl_key = <{workdir / 'key.pem'}",
        ]
    else:
        lines.append("ssl = no")
    if capability is not None:
        # Replaces what Dovecot advertises after login (it still understands every command).
        lines.append(f"imap_capability = {capability}")
    if extra:
        lines.append(extra)  # e.g. a namespace with RFC 6154 special-use folders
    return "\n".join(lines) + "\n"


def _make_certificate(workdir: Path) -> None:
    if not shutil.which("openssl"):
        skip_or_fail("openssl is not installed (Debian package openssl)")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", f"/CN={HOST}"),
            *("-addext", f"subjectAltName=IP:{HOST}"),
            *("-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")),
        ],
        capture_output=True,
        check=True,
    )


@contextmanager
def dovecot(
    *, capability: str | None = None, tls: bool = False, extra: str = ""
) -> Iterator[Dovecot]:
    """Run Dovecot in the foreground on a free loopback port; stop it on exit."""
    binary = _dovecot_binary()
    # Not pytest's tmp_path: its parent is private to us, and the mail processes run as nobody.
    workdir = Path(tempfile.mkdtemp(prefix="openrate-dovecot-"))
    workdir.chmod(0o755)
    # Dovecot refuses mail access as UID 0, so as root the mail belongs to nobody.
    owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
    server = Dovecot(_free_port(), workdir, tls, owner.pw_uid, owner.pw_gid)
    process = None
    try:
        (workdir / "mail").mkdir()
        os.chown(workdir / "mail", server.uid, server.gid)
        if tls:
            _make_certificate(workdir)
        config = workdir / "dovecot.conf"
        config.write_text(_config(server, capability=capability, extra=extra))
        with (workdir / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        _wait_until_listening(process, server)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen, server: Dovecot) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            stderr = (server.workdir / "stderr.log").read_text(errors="replace")
            pytest.fail(f"Dovecot exited with {process.returncode}:\n{stderr}\n{server.log}")
        try:
            socket.create_connection((HOST, server.port), timeout=0.5).close()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"Dovecot did not listen on {HOST}:{server.port}:\n{server.log}")
            time.sleep(0.05)
        else:
            return


@pytest.fixture(scope="session", name="dovecot_server")
def dovecot_server_fixture() -> Iterator[Dovecot]:
    """One plain-IMAP Dovecot on loopback for the whole session."""
    with dovecot() as server:
        yield server


@pytest.fixture(name="imap_mailbox")
def imap_mailbox_fixture(dovecot_server: Dovecot) -> ImapMailbox:
    """A new user on the session's Dovecot, with an empty INBOX; ``.url`` logs in as it."""
    return dovecot_server.mailbox()
