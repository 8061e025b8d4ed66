"""Starting and stopping the servers under test: granian and nginx, on loopback ports.

Each server runs in its own process group (a new session), so stopping it reaches its workers
too and nothing else. `serve` stops it on the way out of the `with` block, whatever happened.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tracking.fastpath import GIF, NO_STORE

# A path that gets the GIF but records nothing: the servers are probed with it.
UNRECORDED_PIXEL = "/t/o/not-a-token.gif"
STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


class ServerFailed(Exception):
    """A server did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def granian_command(
    granian: str, target: str, *, port: int, workers: int, host: str = "127.0.0.1"
) -> list[str]:
    """The production server invocation (see config/wsgi.py), on a loopback port by default."""
    return [
        granian,
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-ws",
        "--log-level",
        "warning",
        target,
    ]


def nginx_command(nginx: str, workdir: Path, *, port: int, workers: int) -> list[str]:
    """nginx serving the same 43-byte GIF as a file for every pixel path, in the foreground.

    Everything it writes stays in `workdir`; it needs no root and touches no system config.
    """
    www = workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "pixel.gif").write_bytes(GIF)
    # Started by root, nginx's workers run as `nobody`: they must be able to reach the file.
    for path in (workdir.parent, workdir, www):
        path.chmod(0o755)
    (www / "pixel.gif").chmod(0o644)
    # The fast path's own response headers, so both answers are the same size.
    headers = "\n".join(f'            add_header {name} "{value}";' for name, value in NO_STORE)
    config = nginx_config(
        workdir,
        workers=workers,
        http=f"""
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        location /t/o/ {{
            root {www};
            default_type image/gif;
{headers}
            try_files /pixel.gif =404;
        }}
    }}
""",
    )
    return nginx_serving(nginx, workdir, config)


def nginx_pixel_log_command(
    nginx: str, workdir: Path, *, port: int, workers: int, log: Path, shipper: list[str]
) -> list[str]:
    """The pixel as production serves it: nginx answering `/t/o/` with the configuration
    `manage.py ship_pixel_log --print-nginx-config` prints, and the shipper following its log,
    both in one process group (so the CPU lines count both as the server)."""
    from tracking.pixel_log import nginx_parts

    for path in (workdir.parent, workdir):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
    http, server = nginx_parts(log)
    config = nginx_config(
        workdir,
        workers=workers,
        http=f"""
    access_log off;
    {http}
    server {{
        listen 127.0.0.1:{port};
        {server}
    }}
""",
    )
    serve_nginx = nginx_serving(nginx, workdir, config)
    return ["bash", "-c", f"{shlex.join(shipper)} & exec {shlex.join(serve_nginx)}"]


def nginx_serving(nginx: str, workdir: Path, config: str) -> list[str]:
    """Write `config` into `workdir`; the command running nginx on it in the foreground."""
    path = workdir / "nginx.conf"
    path.write_text(config)
    return [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(path),
            "-g", "daemon off;"]  # fmt: skip


def nginx_config(workdir: Path, *, workers: int, http: str) -> str:
    """An nginx configuration that keeps everything it writes in `workdir`, with `http` (its
    access log, upstreams and servers) inside the http block."""
    temp = workdir / "temp"
    temp.mkdir(parents=True, exist_ok=True)
    return f"""
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    # granian never closes a keep-alive connection on its own; nginx by default would after
    # 1,000 requests, and make wrk reconnect.
    keepalive_requests 100000000;
{http}}}
"""


@contextmanager
def serve(
    name: str, command: list[str], *, port: int, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[Server]:
    """Start `command`, wait until it answers the pixel URL, yield it, then stop it."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not gone after a while."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, STOP_SECONDS)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.name} exited with {server.process.returncode}" + _tail(server)
            )
        try:
            # A path that gets the GIF without recording an event, so probing changes no count.
            with urllib.request.urlopen(server.url + UNRECORDED_PIXEL, timeout=2) as response:
                # nginx's empty_gif is another 43-byte transparent GIF than the fast path's.
                body = response.read()
                if response.status == 200 and len(body) == len(GIF) and body[:6] == GIF[:6]:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerFailed(
        f"{server.name} did not answer within {STARTUP_SECONDS:.0f} s" + _tail(server)
    )


def _tail(server: Server, lines: int = 20) -> str:
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return ""
    return (
        "\n--- last lines of " + str(server.log) + " ---\n" + "\n".join(text.splitlines()[-lines:])
    )
