"""Posting a delivery without being turned against our own network (pure: no models).

The host is resolved once, at delivery time; every address it resolves to must be public
unless Setup allows private ones, and the connection goes to the address that was checked
(with the Host header, and for TLS the host name for SNI and the certificate), so a second DNS
answer cannot change the target. Only http and https; redirects are not followed (a 3xx is an
answer like any other); one timeout for connecting and reading.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 10.0
RESPONSE_KEPT = 200
USER_AGENT = "Openrate-Webhooks/1"


class Refused(Exception):
    """The URL may not be reached; the message says why, in words."""


@dataclass(frozen=True)
class Answer:
    status: int
    body_start: str
    elapsed_ms: int


def _address_refusal(address: str) -> str | None:
    """Why this address is not public, or None."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, words in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return words
    return None


def address_checked(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to: the first `host` resolves to, after checking them all."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"The host {host} could not be resolved ({error}).") from error
    addresses = [str(sockaddr[0]) for *_, sockaddr in answers]
    if not addresses:
        raise Refused(f"The host {host} has no address.")
    if not allow_private:
        for address in addresses:
            refusal = _address_refusal(address)
            if refusal:
                raise Refused(
                    f"{host} resolves to {address}, {refusal}; Setup does not allow webhooks "
                    "to reach private addresses."
                )
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the host name for SNI and the certificate check."""

    def __init__(self, address: str, port: int, *, hostname: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._hostname = hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)  # type: ignore[attr-defined]


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout: float = TIMEOUT_SECONDS,
) -> Answer:
    """POST `body` to `url`; raises Refused (before connecting) or OSError / HTTPException."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("Only http and https URLs are allowed.")
    host = parts.hostname
    if not host:
        raise Refused("The URL has no host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = address_checked(host, port, allow_private=allow_private)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(address, port, hostname=host, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    default_port = 443 if parts.scheme == "https" else 80
    host_header = host if ":" not in host else f"[{host}]"
    if port != default_port:
        host_header = f"{host_header}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            target,
            body=body,
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        response = connection.getresponse()
        kept = response.read(RESPONSE_KEPT * 4)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        return Answer(
            status=response.status,
            body_start=kept.decode("utf-8", "replace")[:RESPONSE_KEPT],
            elapsed_ms=elapsed_ms,
        )
    finally:
        connection.close()
