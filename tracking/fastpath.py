"""The tracking endpoints, as a small WSGI application in front of Django.

    GET|HEAD /t/o/<token>.gif   the 43-byte transparent GIF, whatever the token
    GET|HEAD /t/c/<token>       302 to the link stored at send time, or a plain 404 page

No middleware, session, template or database write: verify the token (HMAC, no database),
append one raw event to the buffer, answer. An open goes to the worker's batching writer (one
Redis write per ~2 ms batch, from a thread of its own); a click is written to Redis before its
302 is sent (one round trip), so that a web host killed with SIGKILL loses no click it
answered: clicks are the rarer, the costlier to lose, and the pixel is nginx's in production.
When Redis is not configured or refuses, a click goes to the batching writer like an open (its
thread writes to the database table), never to the database from the request. A click reads
its destination from an in-process cache of TrackedLink rows, which never change after the
email is sent. Anything unexpected gets a fixed answer: this path never returns a 500 and never
redirects to a URL taken from the request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection
from django.utils.encoding import iri_to_uri

from mailkit.tokens import parse_token
from tracking.buffer import BatchingEventWriter, EventWriter, RawEvent

logger = logging.getLogger(__name__)

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NOT_FOUND = (
    b"<!doctype html><title>Link not found</title>"
    b"<p>This link is not valid. If you copied it from an email, check that it is complete.</p>"
)
NO_STORE = [
    ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0, private"),
    ("Pragma", "no-cache"),
    ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]
GIF_HEADERS = [("Content-Type", "image/gif"), ("Content-Length", str(len(GIF))), *NO_STORE]
NOT_FOUND_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", str(len(NOT_FOUND))),
    *NO_STORE,
]
MAX_USER_AGENT = 512
MAX_LINKS_CACHED = 100_000
# The balancer's stamp on a request: its request id and the time it received the request, as
# nginx sends them with `proxy_set_header X-Openrate-Request "$request_id $msec"` (README,
# "Running at scale"). nginx sends a request it retries on another web node (its
# `proxy_next_upstream`, when the connection to a dying node breaks) with the very headers it
# sent the first time, so a hit the dying node had already recorded and the next node answers
# is one event: both take their id and time from the stamp, and ingestion stores an id and a
# time once.
STAMP_HEADER = "X-Openrate-Request"
STAMP_ENVIRON = "HTTP_X_OPENRATE_REQUEST"
# The line for the balancer's `location` (the outermost nginx only: it replaces whatever the
# client sent; a web node's nginx passes the balancer's on).
STAMP_NGINX = f'proxy_set_header {STAMP_HEADER} "$request_id $msec";'
# How far the stamp's time may be behind the host's own: more than the balancer waits for a
# host before it retries on the next (nginx's proxy_read_timeout, 60 s by default); and ahead
# of it (clocks kept by NTP differ by far less).
STAMP_MAX_AGE_SECONDS = 300.0
STAMP_MAX_AHEAD_SECONDS = 5.0
# Exactly nginx's `$request_id $msec`: one spelling of a time, so one id is always one time.
_STAMP = re.compile(r"([0-9a-f]{32}) ([0-9]{10}\.[0-9]{3})")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class LinkCache:
    """TrackedLink id -> destination, read from the database once per process and kept."""

    def __init__(self) -> None:
        self._urls: dict[int, str | None] = {}
        self._lock = threading.Lock()

    def get(self, link_id: int) -> str | None:
        try:
            return self._urls[link_id]
        except KeyError:
            pass
        url = self._load(link_id)
        with self._lock:
            if len(self._urls) >= MAX_LINKS_CACHED:
                self._urls.clear()  # rare; a cold cache only costs one read per link
            self._urls[link_id] = url
        return url

    @staticmethod
    def _load(link_id: int) -> str | None:
        for attempt in (1, 2):
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT url FROM crm_trackedlink WHERE id = %s", [link_id])
                    row = cursor.fetchone()
                return iri_to_uri(row[0]) if row else None
            except Exception:
                connection.close()  # a dropped connection: reconnect once
                if attempt == 2:
                    raise
        return None


def client_ip(environ: dict[str, Any], trusted_proxies: int) -> str:
    """The client's address: REMOTE_ADDR, or with N trusted proxies the Nth X-Forwarded-For
    entry from the right (entries further left are whatever the client chose to send)."""
    address = environ.get("REMOTE_ADDR", "")
    if trusted_proxies > 0:
        forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= trusted_proxies:
            address = forwarded[-trusted_proxies]
        elif forwarded:
            address = forwarded[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def event_id(now: float, rand: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: the time in milliseconds, then 74 random bits
    (the low 74 bits of `rand` when given: the pixel log's shipper derives them from a line's
    place, so a line read twice is the same event).

    Time first, so the events table's unique index on it grows at its right-hand edge
    instead of being written at random pages (a random UUID touches a new page per insert
    once the index outgrows memory).
    """
    if rand is None:
        rand = int.from_bytes(os.urandom(10))
    value = (
        int(now * 1000) << 80
        | 0x7 << 76
        | (rand >> 62 & 0xFFF) << 64
        | 0b10 << 62
        | rand & 0x3FFF_FFFF_FFFF_FFFF
    )
    return f"{value:032x}"


def stamped(stamp: str, kind: str, token: str, now: float) -> tuple[str, float] | None:
    """The event id and time of a hit the balancer stamped (STAMP_HEADER), or None when `stamp`
    is not a stamp (the hit then keeps an id and time of its own).

    The id's random bits hash the request id with the hit's kind and token: two hits are one
    event only if they are the same request for the same token. Honoured only where
    TRACKING_BALANCER_STAMPS says the balancer stamps every request (it replaces what a client
    sent), and only within STAMP_MAX_AGE_SECONDS before `now` and STAMP_MAX_AHEAD_SECONDS after.
    """
    match = _STAMP.fullmatch(stamp)
    if match is None:
        return None
    request_id, msec = match.groups()
    received = float(msec)
    if not now - STAMP_MAX_AGE_SECONDS <= received <= now + STAMP_MAX_AHEAD_SECONDS:
        return None
    digest = hashlib.blake2b(f"{request_id} {kind} {token}".encode(), digest_size=10).digest()
    return event_id(received, int.from_bytes(digest)), received


class TrackingApp:
    """Serves /t/ itself and hands every other path to `fallback` (Django)."""

    def __init__(
        self,
        fallback: WSGIApp,
        *,
        keys: Sequence[bytes],
        writer: EventWriter | BatchingEventWriter,
        links: LinkCache,
        trusted_proxies: int = 0,
        click_writer: EventWriter | None = None,
        stamps: bool = False,
    ) -> None:
        self.fallback = fallback
        self.keys = tuple(keys)
        self.writer = writer
        # Clicks are written to Redis at once (see the module's doc); to `writer` when None.
        self.click_writer = click_writer
        self.stamps = stamps  # TRACKING_BALANCER_STAMPS
        self.links = links
        self.trusted_proxies = trusted_proxies

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/t/"):
            return self.fallback(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        is_pixel = path.startswith("/t/o/")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), *NOT_FOUND_HEADERS])
            return [] if method == "HEAD" else [NOT_FOUND]
        try:
            if is_pixel:
                return self._open(environ, path, method, start_response)
            if path.startswith("/t/c/"):
                return self._click(environ, path, method, start_response)
        except Exception:
            logger.exception("Tracking endpoint failed on %r", path[:200])
            if is_pixel:
                start_response("200 OK", GIF_HEADERS)
                return [] if method == "HEAD" else [GIF]
        return self._not_found(method, start_response)

    def _open(
        self, environ: dict[str, Any], path: str, method: str, start_response: StartResponse
    ) -> Iterable[bytes]:
        # Whatever the token, the answer is the GIF: a broken image helps nobody.
        if path.endswith(".gif"):
            data = parse_token(path[5:-4], keys=self.keys)
            if data is not None and data.link_id == 0:
                self._record("open", path[5:-4], environ, method, data.recipient_id, 0)
        start_response("200 OK", GIF_HEADERS)
        return [] if method == "HEAD" else [GIF]

    def _click(
        self, environ: dict[str, Any], path: str, method: str, start_response: StartResponse
    ) -> Iterable[bytes]:
        token = path[5:]
        data = parse_token(token, keys=self.keys)
        url = self.links.get(data.link_id) if data is not None and data.link_id else None
        if data is None or url is None:
            return self._not_found(method, start_response)
        self._record("click", token, environ, method, data.recipient_id, data.link_id)
        start_response("302 Found", [("Location", url), ("Content-Length", "0"), *NO_STORE])
        return []

    def _record(
        self,
        kind: str,
        token: str,
        environ: dict[str, Any],
        method: str,
        relation_id: int,
        link_id: int,
    ) -> None:
        # Every microsecond here is paid on each hit: a plain tuple, a time-ordered random id,
        # and with no proxy the address the server itself saw (it needs no checking).
        ip = (
            client_ip(environ, self.trusted_proxies)
            if self.trusted_proxies
            else environ.get("REMOTE_ADDR", "")
        )
        now = time.time()
        stamp = environ.get(STAMP_ENVIRON) if self.stamps else None
        identity = stamped(stamp, kind, token, now) if stamp else None
        eid, received = identity or (event_id(now), now)
        event = RawEvent(
            eid,
            kind,
            token,
            received,
            ip,
            environ.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT],
            method,
            relation_id,
            link_id,
        )
        if link_id and self.click_writer is not None and self.click_writer.write_now([event]):
            return
        self.writer.append(event)

    @staticmethod
    def _not_found(method: str, start_response: StartResponse) -> Iterable[bytes]:
        start_response("404 Not Found", NOT_FOUND_HEADERS)
        return [] if method == "HEAD" else [NOT_FOUND]
