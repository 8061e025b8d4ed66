"""Where the bench runs: its own PostgreSQL database and Redis db, the tools it needs, and
starting Django there.

Nothing here imports Django models, so it can run before Django is set up.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import environ
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
# A database and a Redis db of the bench's own: the bench truncates tables and deletes the
# event stream, so it must never point at data anyone keeps.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/openrate_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
# Fixed so that the tokens the bench signs verify in every server process it starts.
SECRET_KEY = "bench-only-secret-key-never-use-it-in-production-0123456789"


class PrerequisiteMissing(Exception):
    """Something the bench needs is not installed or not running; the message says how to fix it."""


@dataclass(frozen=True)
class BenchEnv:
    database_url: str
    redis_url: str

    @classmethod
    def from_environ(cls) -> BenchEnv:
        return cls(
            database_url=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        )

    def with_database(self, name: str) -> BenchEnv:
        """The same server and Redis db, and a database of one benchmark's own."""
        return BenchEnv(
            database_url=_database_url(name, like=self.database_url), redis_url=self.redis_url
        )

    @property
    def database_name(self) -> str:
        return str(environ.Env.db_url_config(self.database_url)["NAME"])

    def variables(self, settings_module: str = "config.settings") -> dict[str, str]:
        """The environment for the servers the bench starts and for the bench process itself."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CACHE_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "SECRET_KEY": SECRET_KEY,
            "TRACKING_SIGNING_KEYS": "",
            "TRACKING_TRUSTED_PROXIES": "0",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONN_MAX_AGE": "600",
            "LOG_LEVEL": "WARNING",
        }


def find_tools() -> dict[str, str]:
    """Paths of wrk, nginx and granian, or PrerequisiteMissing naming what to install."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    tools: dict[str, str] = {}
    missing: list[str] = []
    for tool, package in (("wrk", "wrk"), ("nginx", "nginx")):
        found = shutil.which(tool, path=search)
        if found is None:
            missing.append(f"{tool} is not installed: apt-get install -y {package}")
        else:
            tools[tool] = found
    granian = Path(sys.executable).parent / "granian"
    if granian.is_file():
        tools["granian"] = str(granian)
    else:
        missing.append(f"granian is not in {granian.parent}: make install")
    if missing:
        raise PrerequisiteMissing("\n".join(missing))
    return tools


def check_services(bench: BenchEnv) -> None:
    """PostgreSQL and Redis answer, and the database is one the bench may wipe."""
    problems: list[str] = []
    if "bench" not in bench.database_name:
        problems.append(
            f"refusing to use database {bench.database_name!r}: the bench truncates tables, so "
            "its database name must contain 'bench' (set BENCH_DATABASE_URL)"
        )
    try:
        with _admin_connection(bench.database_url):
            pass
    except psycopg.Error as error:
        problems.append(
            f"PostgreSQL is not reachable ({error}): apt-get install -y postgresql and start it"
        )
    try:
        redis.Redis.from_url(bench.redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        problems.append(
            f"Redis is not reachable at {bench.redis_url} ({error}): "
            "apt-get install -y redis-server and start it"
        )
    if problems:
        raise PrerequisiteMissing("\n".join(problems))


def ensure_database(bench: BenchEnv) -> None:
    """Create the bench database if it does not exist yet (migrations run afterwards)."""
    name = bench.database_name
    with _admin_connection(bench.database_url) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def recreate_database(url: str) -> None:
    """Drop the database at `url` and create it empty (migrations run afterwards)."""
    name = str(environ.Env.db_url_config(url)["NAME"])
    if "bench" not in name:
        raise PrerequisiteMissing(
            f"refusing to drop database {name!r}: its name must contain 'bench'"
        )
    with _admin_connection(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def _database_url(name: str, *, like: str = DEFAULT_DATABASE_URL) -> str:
    """The URL of database `name` on the server of `like`, as the same user."""
    return like.rsplit("/", 1)[0] + "/" + name


def start_django(variables: dict[str, str], *, collectstatic: bool = False) -> None:
    """Set this process's environment to `variables`, set Django up and migrate its database."""
    os.environ.update(variables)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if collectstatic:
        call_command("collectstatic", interactive=False, verbosity=0)  # as in production


def start_in_process(database: str, *, renders_pages: bool = False, **variables: str) -> None:
    """Start Django in this process on `database`, dropped and created empty on the local server.

    Redis is off unless REDIS_URL is set. A benchmark that `renders_pages` through Django's test
    client gets its host allowed and the static files collected, as in production.
    """
    url = _database_url(database)
    recreate_database(url)
    defaults = {"REDIS_URL": ""} | ({"ALLOWED_HOSTS": "testserver"} if renders_pages else {})
    start_django(
        {
            **defaults,
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **variables,
        },
        collectstatic=renders_pages,
    )


def _admin_connection(database_url: str) -> psycopg.Connection:
    """A connection to the server's `postgres` database, for creating the bench database."""
    config = environ.Env.db_url_config(database_url)
    return psycopg.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        connect_timeout=3,
        autocommit=True,
    )
