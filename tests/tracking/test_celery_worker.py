"""A real Celery worker process drains the buffer: through Redis, and on the embedded broker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from crm.models import EmailMessageRelation
from tests.conftest import REPO_ROOT
from tests.tracking.conftest import CHROME, call

# The worker is another process: it only sees committed rows.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture(params=["redis", "embedded"])
def broker(request, tmp_path: Path) -> dict[str, str]:
    """Environment for a worker: Redis as broker and buffer, or the filesystem broker."""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        request.getfixturevalue("redis_client")
        return {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    request.getfixturevalue("embedded")
    return {
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "queue"),
    }


@pytest.fixture
def worker(broker):
    env = {
        **os.environ,
        **broker,
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    sender = Celery("test-sender", broker=broker["CELERY_BROKER_URL"], set_as_current=False)
    if broker["CELERY_BROKER_URL"].startswith("filesystem"):
        folder = broker["CELERY_FILESYSTEM_DIR"]
        Path(folder, "control").mkdir(parents=True, exist_ok=True)
        sender.conf.broker_transport_options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": f"{folder}/control",
        }
    sender.control.purge()  # nothing left over from an earlier run
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--hostname=test@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield sender
    process.terminate()
    output, _ = process.communicate(timeout=20)
    print(output[-3000:])


def test_a_worker_process_ingests_buffered_events(worker, tracking_app, sent_email) -> None:
    app = tracking_app()
    assert call(app, sent_email.pixel, headers={"User-Agent": CHROME}).status == 200

    worker.send_task("tracking.tasks.ingest_events")

    deadline = time.monotonic() + 60
    relation = EmailMessageRelation.objects.get(pk=sent_email.relation.pk)
    while relation.human_opens == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        relation.refresh_from_db()
    assert relation.human_opens == 1
    sent_email.email.refresh_from_db()
    assert sent_email.email.is_opened
