"""An SMTP server that counts the messages it receives, by recipient (aiosmtpd, in a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bench.servers import free_port


class Sink:
    """Counts what it receives by recipient; `on_message(peer_address, messages_in_session)`
    is called after each message (the cluster bench kills a worker node from it)."""

    def __init__(self, hostname: str = "127.0.0.1", port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.received: dict[str, int] = {}
        self.lock = threading.Lock()
        self.port = port or free_port()
        self.on_message: Callable[[str, int], None] | None = None
        self._in_session: dict[int, int] = {}  # id(session) -> messages it carried
        self.first_at = self.last_at = 0.0  # time.monotonic() of the first and last message
        self.controller = Controller(self, hostname=hostname, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for address in envelope.rcpt_tos:
                self.received[address] = self.received.get(address, 0) + 1
            count = self._in_session[id(session)] = self._in_session.get(id(session), 0) + 1
            self.last_at = time.monotonic()
            self.first_at = self.first_at or self.last_at
        if self.on_message is not None:
            self.on_message(str(session.peer[0]), count)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> int:
        with self.lock:
            return sum(self.received.values())

    def twice(self) -> int:
        """Recipients who received more than one message."""
        with self.lock:
            return sum(1 for n in self.received.values() if n > 1)
