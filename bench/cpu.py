"""Where the machine's CPU went while wrk loaded a server: CPU time by process group, read
from /proc before and after (Linux only; elsewhere nothing is reported).

The groups say where a request's time goes (the server's Python threads, its Rust threads,
wrk, Redis, PostgreSQL) and how much went to processes the bench did not start ("other"): a
run that shared the cores with someone else's work shows it there.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class CpuUse:
    seconds: dict[str, float] = field(default_factory=dict)  # group -> CPU seconds
    wall: float = 0.0

    def per_request_us(self, requests: int) -> dict[str, float]:
        """Microseconds of CPU per request by group, largest first."""
        if not requests:
            return {}
        return {
            group: round(seconds / requests * 1e6, 1)
            for group, seconds in sorted(self.seconds.items(), key=lambda item: -item[1])
            if seconds >= 0.01
        }

    def summary(self, requests: int) -> str:
        parts = [f"{group} {us:.0f}" for group, us in self.per_request_us(requests).items()]
        return "CPU us/request: " + ", ".join(parts) if parts else ""


@contextmanager
def measured(server_pid: int) -> Iterator[CpuUse]:
    """CPU time by group over the block: the server is the process group `server_pid` leads
    (the bench starts each server in a session of its own), wrk this process's children that
    finished in the block."""
    use = CpuUse()
    if not PROC.is_dir():
        yield use
        return
    children = _children_seconds()
    before = _threads(server_pid)
    yield use
    after = _threads(server_pid)
    for key, (group, seconds) in after.items():
        spent = seconds - before.get(key, (group, 0.0))[1]
        if spent > 0:
            use.seconds[group] = use.seconds.get(group, 0.0) + spent
    use.seconds["wrk"] = _children_seconds() - children


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _threads(server_pid: int) -> dict[tuple[str, str], tuple[str, float]]:
    """(pid, tid) -> (group, CPU seconds so far) for every thread on the machine."""
    found: dict[tuple[str, str], tuple[str, float]] = {}
    for process in PROC.iterdir():
        if not process.name.isdigit():
            continue
        try:
            command = (
                (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
            for thread in (process / "task").iterdir():
                stat = (thread / "stat").read_text()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                seconds = (int(fields[11]) + int(fields[12])) / _TICKS
                group = _group(command, name, server=int(fields[2]) == server_pid)
                found[(process.name, thread.name)] = (group, seconds)
        except (OSError, ValueError, IndexError):
            continue  # gone while being read
    return found


def _group(command: str, thread: str, *, server: bool) -> str:
    if server:
        # granian's Rust I/O threads are tokio's; the others run Python (the request thread,
        # the event flusher, the main thread).
        if "granian" in command:
            return "server rust" if thread.startswith("tokio") else "server python"
        if "ship_pixel_log" in command:
            return "server shipper"
        return "server"
    if not command:
        return "kernel"
    for prefix, group in (("redis", "redis"), ("postgres", "postgresql")):
        if command.startswith(prefix):
            return group
    return "other"
