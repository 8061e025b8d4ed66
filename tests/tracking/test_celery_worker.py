"""A real Celery worker process drains the buffer: through Redis, and on the embedded broker."""

import time
from pathlib import Path

import pytest
from celery import Celery

from crm.models import EmailMessageRelation
from tests.conftest import celery_worker
from tests.tracking.conftest import CHROME, call

# The worker is another process: it only sees committed rows.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


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
    with celery_worker(broker, hostname="test"):
        yield sender


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
