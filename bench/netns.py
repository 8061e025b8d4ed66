"""Hosts on one machine: Linux network namespaces joined by a bridge (needs root).

Each host is a namespace with its own loopback and one veth whose other end is on the bridge;
the bridge carries the first address of the subnet, so this process (in the machine's own
namespace) reaches every host directly and they reach it. Everything is named with PREFIX, so
what a run that died left behind is found and removed by the next one (`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ocl-"
BRIDGE = f"{PREFIX}br"
SUBNET = "10.77.0"
GATEWAY = f"{SUBNET}.1"  # the bridge's address: this process, the load generator, the sink
# Only one run at a time may own the names: a second waits for the first.
LOCK_FILE = Path("/run/openrate-cluster.lock")


@dataclass
class Network:
    """The bridge and the hosts added to it; `close` removes them all."""

    hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    _lock: int = -1

    def open(self) -> None:
        self._lock = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"Another cluster run holds {LOCK_FILE}; waiting for it...", flush=True)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        remove_leftovers()
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")

    def add_host(self, name: str, last_octet: int) -> str:
        """A namespace `ocl-<name>` at 10.77.0.<last_octet>; returns its address."""
        namespace, outside = f"{PREFIX}{name}", f"{PREFIX}{name}-h"
        address = f"{SUBNET}.{last_octet}"
        _ip("netns", "add", namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", outside, "master", BRIDGE)
        _ip("link", "set", outside, "up")
        for command in (
            ("addr", "add", f"{address}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("-n", namespace, *command)
        self.hosts[name] = address
        return address

    def close(self) -> None:
        remove_leftovers()
        self.hosts.clear()
        if self._lock >= 0:
            os.close(self._lock)  # releases the lock
            self._lock = -1


def inside(host: str, command: list[str]) -> list[str]:
    """`command` run in host `host`'s namespace (ip execs it: the pid is the command's)."""
    return ["ip", "netns", "exec", f"{PREFIX}{host}", *command]


def remove_leftovers() -> None:
    """Kill whatever still runs in an `ocl-` namespace, delete the namespaces and the bridge.

    Only this bench creates such namespaces, so every process in one is one it started.
    """
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    namespaces = [line.split()[0] for line in listed.stdout.splitlines() if line.startswith(PREFIX)]
    for namespace in namespaces:
        pids = subprocess.run(
            ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
        )
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    # A namespace's veth pairs go away after `netns del` returns (the kernel tears them down
    # on its own time): delete the host ends outright and wait, so the next run can add them.
    for _ in range(50):
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
        ends = [
            line.split(":")[1].strip().split("@")[0]
            for line in links.stdout.splitlines()
            if line.split(":")[1].strip().startswith(PREFIX)
        ]
        if not ends:
            return
        for end in ends:
            subprocess.run(["ip", "link", "del", end], capture_output=True, check=False)
        time.sleep(0.1)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
