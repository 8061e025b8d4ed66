"""Personas (a rep, another rep, a manager, an admin, an outsider) and small record factories."""

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from django.core.cache import cache
from django.core.mail.backends import locmem
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from crm.models import Account, Contact, Lead, Opportunity, Role, Task, User
from crm.roles import roles_sync
from privacy.models import Individual

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def test_database_url() -> str:
    """The test database as a DATABASE_URL, for a process a test starts (a Celery worker)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@contextmanager
def celery_worker(environment: dict[str, str], *, hostname: str) -> Iterator[None]:
    """A real Celery worker process on the test database; its log is printed when it stops.

    Only committed rows are visible to it: use it from `django_db(transaction=True)` tests.
    """
    env = {
        **os.environ,
        **environment,
        "DATABASE_URL": test_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += [f"--queues={','.join(settings.CELERY_QUEUE_NAMES)}"]
    command += ["--loglevel=INFO", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    process = subprocess.Popen(
        [*command, f"--hostname={hostname}@%h"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
        print(output[-3000:])


class Killed(BaseException):
    """A worker's SIGKILL: nothing it would have written after is kept."""


def killed_while_handing_over(monkeypatch: Any, run: Callable[[], object], *, at: int) -> list[str]:
    """Run `run` in a worker killed as it hands the mail backend its `at`th message: the mail
    backend raises after taking a savepoint, which is rolled back, so the database is exactly
    what the worker had written (committed) when it died. Returns the addresses the backend
    had taken before, and empties the outbox."""
    import crm.delivery

    handed = 0
    savepoint = ""

    class Dying(locmem.EmailBackend):
        def send_messages(self, messages: Any) -> int:
            nonlocal handed, savepoint
            handed += len(messages)
            if handed == at:
                savepoint = transaction.savepoint()
                raise Killed
            return super().send_messages(messages)

    with monkeypatch.context() as patch:
        patch.setattr(crm.delivery, "get_connection", Dying)
        with pytest.raises(Killed):
            run()
    transaction.savepoint_rollback(savepoint)
    sent = [message.to[0] for message in mail.outbox]
    mail.outbox.clear()
    return sent


def run_at_once(*work: Callable[[], object]) -> list[BaseException]:
    """Run each callable in a thread of its own, all released at the same moment (a race),
    each with its own database connection; returns what they raised. For tests marked
    django_db(transaction=True): the threads see only committed rows."""
    start = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(function: Callable[[], object]) -> None:
        try:
            start.wait(timeout=10)
            function()
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(function,)) for function in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def skip_or_fail(reason: str) -> None:
    """Skip locally when a service is missing; under REQUIRE_SERVICES=1 (CI) fail instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _test_settings(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.TRACKING_BASE_URL = "https://t.openrate.test"
    cache.clear()
    # Tasks run inline unless a test starts a real worker.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


def _ensure_roles() -> None:
    """The roles are synced after migrate (crm.roles); a transactional test's flush removes
    them."""
    if not Group.objects.filter(name=Role.REP.value).exists():
        roles_sync()


@pytest.fixture
def roles(db: None) -> None:
    """The three roles, for tests that need them without a persona."""
    _ensure_roles()


def _make_user(username: str, role: Role | None) -> User:
    _ensure_roles()
    user = User.objects.create_user(
        username=username,
        password="pw",
        first_name=username.capitalize(),
        email=f"{username}@openrate.example",
        is_staff=role == Role.ADMIN,
    )
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user


@pytest.fixture
def rep(db: None) -> User:
    user = _make_user("rita", Role.REP)
    user.last_name = "Rep"
    user.save(update_fields=["last_name"])
    return user


@pytest.fixture
def other_rep(db: None) -> User:
    return _make_user("otto", Role.REP)


@pytest.fixture
def manager(db: None) -> User:
    return _make_user("mona", Role.MANAGER)


@pytest.fixture
def admin_user(db: None) -> User:
    return _make_user("ada", Role.ADMIN)


@pytest.fixture
def outsider(db: None) -> User:
    """A logged-in user with no role at all."""
    return _make_user("olga", None)


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def make_account(rep: User) -> Callable[..., Account]:
    def make(**overrides: Any) -> Account:
        return Account.objects.create(**{"name": "Acme", "owner": rep, **overrides})

    return make


@pytest.fixture
def make_contact(rep: User) -> Callable[..., Contact]:
    def make(**overrides: Any) -> Contact:
        fields = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "owner": rep,
        }
        return Contact.objects.create(**{**fields, **overrides})

    return make


@pytest.fixture
def make_lead(rep: User) -> Callable[..., Lead]:
    def make(**overrides: Any) -> Lead:
        fields = {
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Navy Labs",
            "email": "grace@example.com",
            "owner": rep,
        }
        return Lead.objects.create(**{**fields, **overrides})

    return make


@pytest.fixture
def make_opportunity(rep: User) -> Callable[..., Opportunity]:
    def make(**overrides: Any) -> Opportunity:
        fields = {
            "name": "Acme - Pilot",
            "owner": rep,
            "close_date": timezone.localdate() + timedelta(days=30),
        }
        return Opportunity.objects.create(**{**fields, **overrides})

    return make


@pytest.fixture
def make_task(rep: User) -> Callable[..., Task]:
    def make(**overrides: Any) -> Task:
        return Task.objects.create(**{"subject": "Call back", "owner": rep, **overrides})

    return make


@pytest.fixture
def make_individual(db: None) -> Callable[..., Individual]:
    def make(**overrides: Any) -> Individual:
        return Individual.objects.create(**{"last_name": "Lovelace", **overrides})

    return make
