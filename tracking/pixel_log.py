"""The open pixel as production serves it: nginx answers, its access log is shipped to the buffer.

nginx answers `GET|HEAD /t/o/<token>.gif` itself with a 43-byte GIF (its empty_gif module,
the fast path's no-store headers) and writes one line per hit to a log of its own
(`nginx_parts`; `ship_pixel_log --print-nginx-config` prints it). `manage.py ship_pixel_log`
follows that log and puts each hit whose token verifies on the buffer's Redis stream, in the
fast path's own format, so ingestion cannot tell the two apart. Clicks stay on the Python fast
path: their answer needs the link's destination.

Why: the pixel is most of the tracking traffic, and measured on two shared cores (`bench/run.py`)
the fast path's Python and granian's WSGI bridge cost 2-4.5 times nginx's CPU per request: no
Python request path reaches half of nginx's rate on every run. Verifying the token moves off the
request into the shipper, where it still happens before an event reaches the buffer (an
unverifiable hit gets the GIF and no event, as before).

Nothing lost, nothing twice:
- nginx writes each line with its own write() (no `buffer=` on this log), microseconds after it
  wrote the hit's answer (its log phase comes last): a logged hit is in the kernel's page cache,
  so killing the shipper loses nothing, and killing nginx (SIGKILL) loses only a hit answered in
  those microseconds (the several-host run measures it: bench/cluster.py). A line such a kill
  cut short (a write() stopped at a page's edge) is followed by the next hit's whole line with no
  line end between them: `event_from_line` reads that hit from the joined line's end. Only the
  machine going down can lose what was not yet on disk.
- The shipper's place in the log (the file's inode and a byte offset, always at a line's end) is
  stored in Redis in the same MULTI/EXEC as the stream entries it ships, so a shipper killed at
  any moment resumes at the end of the last batch it wrote: no line skipped, none shipped twice.
- Each event's id is derived from the source's name, the inode and the line's offset (and its
  time; `place_bits`): a line read again for any reason (its place lost with Redis's data)
  becomes the same event, which ingestion stores once (it is unique on id and time).
- Behind a balancer that stamps its requests (`fastpath.STAMP_HEADER`, logged as the fifth
  field; TRACKING_BALANCER_STAMPS), the id and time are the stamp's instead: a hit the balancer
  retried on a second web node, after the first had logged it and died before answering, is
  one event from both logs.
- Rotation: when the log's path names a new file, the shipper finishes the old one (it keeps it
  open) and moves on once the old file has not grown for ROTATION_SETTLE_SECONDS (nginx writes
  to it until it reopens its logs on USR1). A shipper started after a rotation finds the file it
  was reading as `<path>.1` (logrotate with `delaycompress`). A file truncated in place
  (`copytruncate`) is read again from its start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import redis

from mailkit.tokens import parse_token
from tracking.buffer import STREAM, RawEvent
from tracking.fastpath import MAX_USER_AGENT, NO_STORE, event_id, stamped

logger = logging.getLogger(__name__)

# Tab-separated: nginx escapes a tab (and every byte below 32 or above 126, and " and \) in a
# variable's value as \xXX, so a field never holds one.
LOG_FORMAT_NAME = "openrate_pixel"
LOG_FORMAT = (
    "$msec\\t$remote_addr\\t$request_method\\t$uri\\t$http_x_openrate_request\\t$http_user_agent"
)
# Read at most this much of the log per batch; a batch is one MULTI/EXEC.
READ_BYTES = 1 << 20
# Events per stream entry (the fast path's entries hold a few milliseconds' worth).
EVENTS_PER_ENTRY = 500
ROTATION_SETTLE_SECONDS = 2.0
_OFFSET_BITS = 42
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1
_ESCAPED = re.compile(rb"\\x([0-9A-Fa-f]{2})")
# nginx's $msec: ten digits of seconds (until 2286), a point, three of milliseconds.
_TRAILING_MSEC = re.compile(rb"[0-9]{10}\.[0-9]{3}$")
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}


def nginx_parts(log_path: str | Path) -> tuple[str, str]:
    """The nginx configuration that serves the pixel and writes the log the shipper reads: a
    `log_format` for the http block and a `location` for the server block."""
    headers = "\n".join(f'    add_header {name} "{value}" always;' for name, value in NO_STORE)
    http = f"log_format {LOG_FORMAT_NAME} '{LOG_FORMAT}';\n"
    server = (
        f"location ^~ /t/o/ {{\n"
        f"    # One write() per hit, no buffer: a hit answered is a line in the page cache.\n"
        f"    access_log {log_path} {LOG_FORMAT_NAME};\n"
        f"    empty_gif;\n"
        f"{headers}\n"
        f"}}\n"
    )
    return http, server


def nginx_config(log_path: str | Path) -> str:
    """`nginx_parts` as `ship_pixel_log --print-nginx-config` prints them."""
    http, server = nginx_parts(log_path)
    return (
        f"# In the http block:\n{http}"
        f"# In the server block, before the location that sends /t/ to the fast path:\n{server}"
    )


def event_from_line(
    line: bytes,
    *,
    keys: Sequence[bytes],
    source: str,
    inode: int,
    offset: int,
    stamps: bool = False,
) -> RawEvent | None:
    """The event one log line records, or None for a line that records none (another path or
    method, a token that does not verify, a click's token, a malformed line)."""
    parts = line.split(b"\t")
    # A line is six fields (five before the stamp was logged: a log nginx wrote before its
    # configuration was updated, told by the URI's place, which always starts with "/"). A
    # longer one is a line a kill cut short, then the next hit's whole line: that hit is the
    # last fields, its time at the end of the field before them.
    fields = 6 if len(parts) >= 6 and parts[-3][:1] == b"/" else 5
    if len(parts) < fields:
        return None
    ended = _TRAILING_MSEC.search(parts[-fields])
    if ended is None:
        return None
    msec = ended.group()
    ip, method_bytes, uri = parts[1 - fields : 4 - fields]
    stamp, agent = (parts[-2], parts[-1]) if fields == 6 else (b"-", parts[-1])
    method = _METHODS.get(method_bytes)
    if method is None or not uri.startswith(b"/t/o/") or not uri.endswith(b".gif"):
        return None
    token = uri[5:-4].decode("ascii", "replace")
    data = parse_token(token, keys=keys)
    if data is None or data.link_id:
        return None
    try:
        received = float(msec)
    except ValueError:
        return None
    identity = (
        stamped(stamp.decode("ascii", "replace"), "open", token, received)
        if stamps and stamp != b"-"
        else None
    )
    if identity is None:
        identity = event_id(received, place_bits(source, inode) | offset & _OFFSET_MASK), received
    return RawEvent(
        identity[0],
        "open",
        token,
        identity[1],
        "" if ip == b"-" else ip.decode("ascii", "replace"),
        _unescaped(agent)[:MAX_USER_AGENT],
        method,
        data.recipient_id,
        0,
    )


@lru_cache(maxsize=64)
def place_bits(source: str, inode: int) -> int:
    """The high 32 of an event id's 74 random bits: the log file's (a hash of its source and
    inode); the low 42 are the line's offset in it (up to 4 TiB)."""
    digest = hashlib.blake2b(f"{source}:{inode}".encode(), digest_size=4).digest()
    return int.from_bytes(digest) << _OFFSET_BITS


def _unescaped(value: bytes) -> str:
    """A variable as nginx logged it: "-" when empty, other bytes escaped as \\xXX."""
    if value == b"-":
        return ""
    if b"\\x" in value:
        value = _ESCAPED.sub(lambda match: bytes([int(match[1], 16)]), value)
    return value.decode("utf-8", "replace")


@dataclass
class _Reading:
    file: IO[bytes]
    inode: int
    offset: int
    grown_at: float  # when the file last had more to read


class PixelLogShipper:
    """Follows one nginx pixel log and ships its hits to the stream (see the module's doc)."""

    def __init__(
        self,
        path: str | Path,
        *,
        client: redis.Redis,
        keys: Sequence[bytes],
        source: str,
        read_bytes: int = READ_BYTES,
        stamps: bool = False,
    ) -> None:
        self.path = Path(path)
        self.client = client
        self.keys = tuple(keys)
        self.source = source
        self.stamps = stamps  # TRACKING_BALANCER_STAMPS
        self.read_bytes = read_bytes
        self.state_key = f"openrate:pixel-log:{source}:{self.path}"
        self._reading: _Reading | None = None
        # The last read filled its READ_BYTES: more is waiting, read again at once.
        self.behind = False

    def ship_once(self) -> int:
        """Ship the complete lines written since the last call; the number of lines read (0 when
        there was nothing new, or the log does not exist yet)."""
        reading = self._reading or self._open()
        if reading is None:
            return 0
        if os.fstat(reading.file.fileno()).st_size < reading.offset:
            logger.warning("%s was truncated: reading it again from its start", self.path)
            reading.offset = 0
        reading.file.seek(reading.offset)
        chunk = reading.file.read(self.read_bytes)
        self.behind = len(chunk) == self.read_bytes
        end = chunk.rfind(b"\n") + 1
        if not end and self.behind:
            # No line nginx writes is this long: not a log line (a corrupted file). Skip it
            # rather than stop shipping.
            logger.error("%s: no line end in %d bytes from byte %d: skipped", self.path,
                         len(chunk), reading.offset)  # fmt: skip
            reading.offset += len(chunk)
            self.client.hset(
                self.state_key, mapping={"inode": reading.inode, "offset": reading.offset}
            )
            return 1
        if not end:
            self._follow_rotation(reading)
            return 0
        reading.grown_at = time.monotonic()
        events: list[RawEvent] = []
        offset = reading.offset
        lines = chunk[:end].split(b"\n")[:-1]
        for line in lines:
            event = event_from_line(
                line,
                keys=self.keys,
                source=self.source,
                inode=reading.inode,
                offset=offset,
                stamps=self.stamps,
            )
            if event is not None:
                events.append(event)
            offset += len(line) + 1
        pipe = self.client.pipeline(transaction=True)
        for start in range(0, len(events), EVENTS_PER_ENTRY):
            pipe.xadd(STREAM, {"batch": json.dumps(events[start : start + EVENTS_PER_ENTRY])})
        pipe.hset(self.state_key, mapping={"inode": reading.inode, "offset": offset})
        pipe.execute()
        reading.offset = offset
        return len(lines)

    def close(self) -> None:
        if self._reading is not None:
            self._reading.file.close()
            self._reading = None

    def _open(self) -> _Reading | None:
        """Where the last shipper stopped: the saved inode and offset, in the file at the path or
        in the one rotated out of it; the start of the file at the path otherwise."""
        saved: dict[bytes, bytes] = self.client.hgetall(self.state_key)  # type: ignore[assignment]
        saved_inode = int(saved.get(b"inode", 0))
        saved_offset = int(saved.get(b"offset", 0))
        for candidate in (self.path, self.path.with_name(self.path.name + ".1")):
            try:
                file = candidate.open("rb")
            except FileNotFoundError:
                continue
            inode = os.fstat(file.fileno()).st_ino
            if saved and inode == saved_inode:
                self._reading = _Reading(file, inode, saved_offset, time.monotonic())
                return self._reading
            file.close()
        if saved:
            logger.warning(
                "%s: the file this shipper was reading (inode %d) is gone; what it held past "
                "byte %d was not shipped. Starting at the start of the current file.",
                self.path,
                saved_inode,
                saved_offset,
            )
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return None  # nginx has not written a hit yet
        self._reading = _Reading(file, os.fstat(file.fileno()).st_ino, 0, time.monotonic())
        return self._reading

    def _follow_rotation(self, reading: _Reading) -> None:
        """At the end of the file: if the path now names another file and this one has stopped
        growing, move to the new one (its place is saved with its first batch)."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return
        if inode == reading.inode:
            return
        if time.monotonic() - reading.grown_at < ROTATION_SETTLE_SECONDS:
            return
        reading.file.close()
        file = self.path.open("rb")
        self._reading = _Reading(file, os.fstat(file.fileno()).st_ino, 0, time.monotonic())
