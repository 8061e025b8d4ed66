"""The hosts of bench/cluster.py and what runs on each: a private PostgreSQL and Redis on
"data", on "web1" and "web2" nginx (answering the pixel, writing its log), the log's shipper and
granian (everything else), as README's production setup; nginx balancing them on "lb", Celery
on "work1" and "work2" (beat on work1 only). Every process is started in a session of its own,
so a node is killed (`kill`) by signalling its process groups, and started again (`start`) with
the same commands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.env import ROOT
from bench.netns import GATEWAY, Network, inside
from bench.servers import UNRECORDED_PIXEL, granian_command, nginx_config, nginx_serving, stop

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
WEB_PORT = 8000
DATABASE = "openrate_cluster_bench"  # "bench": bench.env may drop it
HOSTS = {"lb": 5, "data": 10, "web1": 11, "web2": 12, "work1": 21, "work2": 22}
# Each worker node runs the queue layout of README's "Workers and queues", one process per
# queue group (two cores for the whole cluster): ingestion and list email on workers of their
# own, the rest on one.
WORKER_QUEUES = {
    "ingestion": "ingestion",
    "list_email": "list_email",
    "other": "celery,inbound,housekeeping",
}
# The nginx access log, one line per answer, tab-separated: what the balancer answered is read
# from it. The user agent is last: wrk's carries each request's own tag (bench/pixels.lua's tag).
LOG_FORMAT = "$msec\t$status\t$upstream_addr\t$upstream_status\t$uri\t$http_user_agent"


class NodeFailed(Exception):
    """A process did not come up; the message ends with the tail of its log."""


@dataclass
class Node:
    name: str
    address: str
    commands: dict[str, list[str]]  # label -> command, run inside the node's namespace
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


class Cluster:
    def __init__(self, workdir: Path, *, web_workers: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True)
        self.network = Network()
        self.nodes: dict[str, Node] = {}
        self.web_workers = web_workers
        self.address = {name: f"10.77.0.{octet}" for name, octet in HOSTS.items()}
        self.database_url = f"postgres://postgres@{self.address['data']}:5432/{DATABASE}"
        self.redis_url = f"redis://{self.address['data']}:6379/0"
        self.balancer = f"http://{self.address['lb']}"
        self.access_log = workdir / "nginx" / "access.log"

    # --- the whole cluster ---------------------------------------------------------------

    def open_network(self) -> None:
        self.network.open()
        for name, octet in HOSTS.items():
            self.network.add_host(name, octet)

    def start_data(self) -> None:
        """PostgreSQL (a fresh cluster, initdb'd here) and Redis with the production persistence."""
        pgdata, redis_dir = self.workdir / "pg", self.workdir / "redis"
        self.workdir.chmod(0o755)  # the postgres user reaches its folder through it
        pgdata.mkdir()
        redis_dir.mkdir()
        os.chown(pgdata, _uid("postgres"), _gid("postgres"))
        subprocess.run(
            [*AS_POSTGRES, str(POSTGRES_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        with (pgdata / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.77.0.0/24 trust\n")
        data = self.address["data"]
        self.nodes["data"] = Node(
            "data",
            data,
            {
                "postgres": [
                    *AS_POSTGRES, str(POSTGRES_BIN / "postgres"), "-D", str(pgdata),
                    "-c", f"listen_addresses={data}", "-c", f"unix_socket_directories={pgdata}",
                    "-c", "max_connections=200", "-c", "shared_buffers=256MB",
                ],
                "redis": [
                    "redis-server", "--bind", data, "--port", "6379", "--dir", str(redis_dir),
                    "--appendonly", "yes", "--appendfsync", "everysec",
                    "--maxmemory-policy", "noeviction", "--save", "", "--protected-mode", "no",
                ],
            },
            env=dict(os.environ),
        )  # fmt: skip
        self.start("data")
        self.wait_for_postgres()
        self.wait_for_redis()

    def start_app(self, variables: dict[str, str], tools: dict[str, str]) -> None:
        """The web nodes, the balancer and the worker nodes, each answering before the next."""
        celery = str(Path(sys.executable).with_name("celery"))
        for name in ("web1", "web2"):
            address = self.address[name]
            granian = [
                *granian_command(
                    tools["granian"],
                    "config.wsgi:application",
                    port=WEB_PORT,
                    workers=self.web_workers,
                    host=address,
                ),
                "--blocking-threads",
                "1",
            ]
            pixel_log = self.workdir / name / "pixel.log"
            shipper = [sys.executable, str(ROOT / "manage.py"), "ship_pixel_log", str(pixel_log)]
            commands = {
                "nginx": self._web_nginx(tools, name, pixel_log),
                "shipper": [*shipper, "--source", name],
                "granian": granian,
            }
            env = variables | {
                "TRACKING_TRUSTED_PROXIES": "2",  # the balancer, the node's nginx
                "TRACKING_BALANCER_STAMPS": "true",  # the balancer's X-Openrate-Request
            }
            self.nodes[name] = Node(name, address, commands, env)
            self.start(name)
        self.nodes["lb"] = Node("lb", self.address["lb"], {"nginx": self._nginx(tools)}, variables)
        self.start("lb")
        for name in ("web1", "web2", "lb"):
            self.wait_for_http(name)
        for name in ("work1", "work2"):
            commands = {
                label: [celery, "-A", "config", "worker", "--loglevel=WARNING",
                        "--concurrency=1", f"--hostname={label}@{name}", f"--queues={queues}"]
                for label, queues in WORKER_QUEUES.items()
            }  # fmt: skip
            if name == "work1":  # exactly one beat in the installation
                commands["beat"] = [celery, "-A", "config", "beat", "--loglevel=WARNING",
                                    f"--schedule={self.workdir / 'beat-schedule'}"]  # fmt: skip
            self.nodes[name] = Node(name, self.address[name], commands, variables)
            self.start(name)

    def close(self) -> None:
        """Stop every process (the app first, the data last), then remove the network."""
        try:
            for name in ("lb", "web1", "web2", "work1", "work2", "data"):
                node = self.nodes.get(name)
                for process in node.processes.values() if node else ():
                    stop(process)
        finally:
            self.network.close()

    # --- one node ------------------------------------------------------------------------

    def start(self, name: str, only: str | None = None) -> None:
        node = self.nodes[name]
        for label, command in node.commands.items():
            if only is not None and label != only:
                continue
            with (self.logs / f"{name}-{label}.log").open("ab") as log:
                node.processes[label] = subprocess.Popen(
                    inside(name, command),
                    cwd=ROOT,
                    env=node.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def kill(
        self, name: str, sig: signal.Signals = signal.SIGKILL, only: str | None = None
    ) -> None:
        """`sig` to every process group of the node (or of its process `only`) at once."""
        node = self.nodes[name]
        targets = [p for label, p in node.processes.items() if only in (None, label)]
        for process in targets:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        for process in targets:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def node_at(self, address: str) -> str:
        return next(name for name, a in self.address.items() if a == address)

    # --- readiness -----------------------------------------------------------------------

    def wait_for_postgres(self, seconds: float = 60) -> None:
        self._wait(
            "data",
            lambda: (
                subprocess.run(
                    [str(POSTGRES_BIN / "pg_isready"), "-q", "-h", self.address["data"]],
                    check=False,
                ).returncode
                == 0
            ),
            seconds,
        )

    def wait_for_redis(self, seconds: float = 60) -> None:
        import redis

        def ping() -> bool:
            try:
                return bool(redis.Redis.from_url(self.redis_url, socket_timeout=1).ping())
            except redis.RedisError:
                return False

        self._wait("data", ping, seconds)

    def wait_for_http(self, name: str, seconds: float = 60) -> None:
        """The balancer, or a web node's nginx (the pixel) and its granian (everything else)."""
        if name == "lb":
            urls = [self.balancer]
        else:
            urls = [f"http://{self.address[name]}", f"http://{self.address[name]}:{WEB_PORT}"]

        def answers() -> bool:
            for url in urls:
                try:
                    with urllib.request.urlopen(url + UNRECORDED_PIXEL, timeout=2) as response:
                        if response.status != 200:
                            return False
                except OSError:
                    return False
            return True

        self._wait(name, answers, seconds)

    def _wait(self, name: str, ready: object, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if callable(ready) and ready():
                return
            processes = self.nodes[name].processes
            exited = [label for label, p in processes.items() if p.poll() is not None]
            if exited:
                raise NodeFailed(f"{name}: {', '.join(exited)} exited" + self._tail(name))
            time.sleep(0.2)
        raise NodeFailed(f"{name} did not answer within {seconds:.0f} s" + self._tail(name))

    def _tail(self, name: str, lines: int = 15) -> str:
        text = ""
        for log in sorted(self.logs.glob(f"{name}-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            text += f"\n--- {log} ---\n" + "\n".join(tail)
        return text

    def _web_nginx(self, tools: dict[str, str], name: str, pixel_log: Path) -> list[str]:
        """A web node's nginx, as README's production setup: it answers the pixel itself and
        writes the pixel log its shipper follows; everything else goes to the node's granian.
        The client's address comes from the balancer's X-Forwarded-For (realip)."""
        from tracking.pixel_log import nginx_parts

        workdir = self.workdir / name
        workdir.mkdir(exist_ok=True)
        workdir.chmod(0o755)
        http, server = nginx_parts(pixel_log)
        address = self.address[name]
        config = nginx_config(
            workdir,
            workers=1,
            http=f"""
    access_log off;
    {http}
    upstream granian {{
        server {address}:{WEB_PORT};
        keepalive 32;
    }}
    server {{
        listen {address}:80;
        set_real_ip_from {self.address["lb"]};
        real_ip_header X-Forwarded-For;
        {server}
{_proxied_to("granian")}
    }}
""",
        )
        return nginx_serving(tools["nginx"], workdir, config)

    def _nginx(self, tools: dict[str, str]) -> list[str]:
        """nginx balancing the two web nodes, logging every answer (see LOG_FORMAT)."""
        workdir = self.workdir / "nginx"
        upstreams = "\n".join(
            f"        server {self.address[name]}:80 max_fails=1 fail_timeout=2s;"
            for name in ("web1", "web2")
        )
        log_format = LOG_FORMAT.replace("\t", "\\t")  # nginx reads \t in a quoted string
        config = nginx_config(
            workdir,
            workers=1,
            http=f"""
    log_format cluster "{log_format}";
    access_log {self.access_log} cluster buffer=256k flush=100ms;
    upstream web {{
{upstreams}
        keepalive 64;
    }}
    server {{
        listen {self.address["lb"]}:80;
{_proxied_to("web", stamp=True)}
    }}
""",
        )
        return nginx_serving(tools["nginx"], workdir, config)

    def environment(self, base: dict[str, str], *, sink_port: int) -> dict[str, str]:
        """The nodes' environment: the data host's PostgreSQL and Redis, mail to the sink."""
        hosts = ",".join([*self.address.values(), "127.0.0.1", "localhost"])
        return base | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CACHE_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "EMAIL_URL": f"smtp://{GATEWAY}:{sink_port}",
            "ALLOWED_HOSTS": hosts,
            "TRACKING_INGEST_INTERVAL": "5",
            # A list email whose batch died is resumed by beat once its lease is over.
            "LIST_EMAIL_RESUME_INTERVAL": "5",
        }


def _proxied_to(upstream: str, *, stamp: bool = False) -> str:
    """A `location /` passing everything to `upstream` over kept-alive connections, adding the
    client's address to X-Forwarded-For (the balancer's and the web nodes' nginx). The balancer
    (`stamp`) stamps each request as README's "Running at scale" says, so that a request it
    retries on the other web node is one event."""
    from tracking.fastpath import STAMP_NGINX

    stamping = f"\n            {STAMP_NGINX}" if stamp else ""
    return f"""        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;{stamping}
        }}"""


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid
