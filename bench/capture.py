"""Benchmark: the first sync of a 20,000-message mailbox on a local Dovecot (IMAPS), and the
sync of the same mailbox once nothing has changed.

The mailbox is filled by writing maildir files directly (far faster than APPEND), then Dovecot
indexes it once before anything is timed. The floor, measured in the same run against the same
server: fetching the same messages with `imaplib` (the same TLS, batches and FETCH items) and
parsing each with the standard library's `email` package (headers, bodies, attachments),
storing nothing. The capture: `capture.sync.mailbox_sync`, which fetches, reads, matches every
party against the contacts and leads, and stores what matches (about half: the rest is
newsletters, internal mail and strangers), with its ledger, relations and threads. Each is run
3 times (the captured email is deleted between runs); the medians are compared. Queued tasks
(the activity refresh) go to an in-memory broker and are not run here.

    .venv/bin/python bench/capture.py       (make bench runs it)

Target: capture within 3x of the floor; a sync of the unchanged mailbox under 1 s.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage as Message
from email.utils import format_datetime
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, not bench/

from cryptography.fernet import Fernet

from bench.env import start_in_process
from bench.measure import write_results

DATABASE = os.environ.get("BENCH_DATABASE", "openrate_bench_capture")
MESSAGES = int(os.environ.get("BENCH_CAPTURE_MESSAGES", "20000"))
CONTACTS = 2_000
RUNS = 3
BATCH = 200
SPECIAL_USE = r"""namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
}"""


def main() -> int:
    os.environ.setdefault("MAILBOX_ENCRYPTION_KEY", Fernet.generate_key().decode())
    start_in_process(DATABASE, CELERY_BROKER_URL="memory://")
    from django.conf import settings

    from tests.inbound.imap_server import PASSWORD, dovecot

    with dovecot(tls=True, extra=SPECIAL_USE) as server:
        settings.MAILBOX_TLS_CA_FILE = str(server.workdir / "cert.pem")
        box = server.mailbox()
        home = server.workdir / "mail" / box.user
        started = time.perf_counter()
        _fill_maildir(home, uid=server.uid, gid=server.gid)
        filled = time.perf_counter() - started
        mailbox_id = _data(box.user, PASSWORD, server.port)
        _warm_up(box)
        floors, captures, captured = [], [], 0
        for _ in range(RUNS):
            floors.append(_floor(box))
            seconds, captured = _capture(mailbox_id)
            captures.append(seconds)
        steady = [_steady(mailbox_id) for _ in range(RUNS)]
    floor, capture = statistics.median(floors), statistics.median(captures)
    ratio = capture / floor
    print(f"\nFirst sync of a {MESSAGES:,}-message mailbox (Dovecot over IMAPS, PostgreSQL)")
    print(f"maildir written in {filled:.1f} s; {captured:,} messages captured per run")
    print(f"{'path':<62} {'median s':>9} {'msg/s':>7}  runs (s)")
    print(
        f"{'floor: imaplib fetch + email parse, nothing stored':<62} {floor:>9.2f} "
        f"{MESSAGES / floor:>7.0f}  {', '.join(f'{s:.2f}' for s in floors)}"
    )
    print(
        f"{'capture: fetch, read, match, store (capture.sync)':<62} {capture:>9.2f} "
        f"{MESSAGES / capture:>7.0f}  {', '.join(f'{s:.2f}' for s in captures)}"
    )
    print(f"\nCapture costs {ratio:.2f}x the floor (target: within 3x).")
    print(
        f"Sync of the unchanged mailbox: median {statistics.median(steady) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{s * 1000:.0f}' for s in steady)} ms; target: under 1 s)."
    )
    write_results(
        "capture",
        {
            "messages": MESSAGES,
            "captured": captured,
            "floor_seconds": floors,
            "capture_seconds": captures,
            "floor_messages_per_second": MESSAGES / floor,
            "capture_messages_per_second": MESSAGES / capture,
            "ratio": ratio,
            "steady_state_seconds": steady,
        },
    )
    return 0 if ratio <= 3 and max(steady) < 1 else 1


def _message(n: int, rng: random.Random, now: object) -> bytes:
    """A realistic mix: customers' threads (half), newsletters, colleagues, strangers."""
    msg = Message()
    kind = rng.random()
    rep = "Bench Rep <bench@openrate.example>"
    if kind < 0.5:
        person = f"Person {n % CONTACTS} <person{n % CONTACTS}@customer{n % 50}.example>"
        msg["From"], msg["To"] = (person, rep) if n % 3 else (rep, person)
        msg["Subject"] = f"Re: Order {n % 700}"
        root = f"<order{n % 700}.root@customer.example>"
        msg["In-Reply-To"], msg["References"] = root, root
    elif kind < 0.8:
        msg["From"], msg["To"] = f"news@list{n % 30}.example", rep
        msg["Subject"] = f"Weekly digest {n}"
    elif kind < 0.9:
        msg["From"], msg["To"] = "Colleague <otto@openrate.example>", rep
        msg["Subject"] = f"Lunch {n}"
    else:
        msg["From"], msg["To"] = f"someone{n}@stranger.example", rep
        msg["Subject"] = f"Hello {n}"
    msg["Date"] = format_datetime(now - timedelta(minutes=n))  # type: ignore[operator]
    msg["Message-ID"] = f"<bench{n}@mail.example>"
    text = f"Hello,\n\n{'Some words about the order and what comes next. ' * 20}\n\nRegards\n"
    msg.set_content(text)
    msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    if n % 10 == 0:
        msg.add_attachment(b"%PDF-1.4 " + b"x" * 20_000, "application", "pdf", filename="q.pdf")
    return msg.as_bytes()


def _fill_maildir(home: Path, *, uid: int, gid: int) -> None:
    from django.utils import timezone

    rng = random.Random(17)
    now = timezone.now()
    for folder in (home, home / "cur", home / "new", home / "tmp"):
        folder.mkdir(exist_ok=True)
        os.chown(folder, uid, gid)
    base = int(time.time()) - MESSAGES * 60
    for n in range(MESSAGES):
        path = home / "cur" / f"{base + n}.M{n}P1.bench:2,S"
        path.write_bytes(_message(n, rng, now))
        os.chown(path, uid, gid)
        # The file's time is the message's INTERNALDATE: within the 30 days a first sync reads.
        os.utime(path, (base + n, base + n))


def _data(username: str, password: str, port: int) -> int:
    from bench.data import analyze, create_user
    from capture import imap
    from capture.mailboxes import mailbox_connect, mailbox_probe
    from crm.models import Account, Contact

    user = create_user("bench", first_name="Bench", last_name="Rep")
    account = Account.objects.create(name="Customers", owner=user)
    Contact.objects.bulk_create(
        (
            Contact(
                first_name="Person",
                last_name=str(i),
                email=f"person{i}@customer{i % 50}.example",
                account=account,
                owner=user,
            )
            for i in range(CONTACTS)
        ),
        batch_size=2000,
    )
    account_ = imap.Account(host="127.0.0.1", port=port, username=username, password=password)
    mailbox = mailbox_connect(
        user=user, account=account_, security="tls", probe=mailbox_probe(account=account_)
    )
    analyze()
    return mailbox.pk


def _connect(box: object) -> object:
    import imaplib

    from capture.sync import tls_context
    from tests.inbound.imap_server import HOST, PASSWORD

    conn = imaplib.IMAP4_SSL(HOST, box.port, ssl_context=tls_context())  # type: ignore[attr-defined]
    conn.login(box.user, PASSWORD)  # type: ignore[attr-defined]
    return conn


def _warm_up(box: object) -> None:
    """Dovecot indexes the new maildir on its first SELECT: not part of either measure."""
    conn = _connect(box)
    conn.select('"INBOX"', readonly=True)  # type: ignore[attr-defined]
    conn.uid("SEARCH", "ALL")  # type: ignore[attr-defined]
    conn.logout()  # type: ignore[attr-defined]


def _floor(box: object) -> float:
    """The same messages fetched as the sync fetches them and parsed; nothing stored."""
    from datetime import date

    from capture.imap import _fetched, uid_set

    started = time.perf_counter()
    conn = _connect(box)
    conn.select('"INBOX"', readonly=True)  # type: ignore[attr-defined]
    since = date.today() - timedelta(days=30)
    _, data = conn.uid("SEARCH", f"SINCE {since.strftime('%d-%b-%Y')}")  # type: ignore[attr-defined]
    uids = [int(u) for u in data[0].split()]
    parsed = 0
    for start in range(0, len(uids), BATCH):
        chunk = uids[start : start + BATCH]
        _, data = conn.uid("FETCH", uid_set(chunk), "(UID FLAGS BODY.PEEK[])")  # type: ignore[attr-defined]
        for item in _fetched(data):
            msg = message_from_bytes(item.raw, policy=email_policy.default)
            for kind in ("plain", "html"):
                body = msg.get_body(preferencelist=(kind,))
                if body is not None:
                    body.get_content()
            for part in msg.iter_attachments():
                part.get_payload(decode=True)
            parsed += 1
    conn.logout()  # type: ignore[attr-defined]
    assert parsed == MESSAGES, parsed
    return time.perf_counter() - started


def _capture(mailbox_id: int) -> tuple[float, int]:
    from capture.models import CapturedMessage, FolderState, Mailbox
    from capture.sync import mailbox_sync
    from crm.models import EmailMessage

    EmailMessage.objects.filter(source="captured").delete()
    CapturedMessage.objects.all().delete()
    FolderState.objects.all().delete()
    Mailbox.objects.filter(pk=mailbox_id).update(messages_captured=0)
    started = time.perf_counter()
    result = mailbox_sync(mailbox_id=mailbox_id, batch=BATCH)
    seconds = time.perf_counter() - started
    assert not result.error and result.read == MESSAGES, result
    return seconds, result.captured


def _steady(mailbox_id: int) -> float:
    from capture.sync import mailbox_sync

    started = time.perf_counter()
    result = mailbox_sync(mailbox_id=mailbox_id, batch=BATCH)
    seconds = time.perf_counter() - started
    assert not result.error and result.read == 0, result
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
