"""Uploading a file as a user would, and running its job as the worker would."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import User
from imports.models import ImportJob
from imports.run import import_job_run, import_start
from imports.uploads import upload_receive


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Path) -> Path:
    settings.IMPORT_DIR = tmp_path / "imports"
    return settings.IMPORT_DIR


def as_bytes(content: str | bytes, encoding: str = "utf-8") -> bytes:
    return content.encode(encoding) if isinstance(content, str) else content


@pytest.fixture
def upload(manager: User) -> Callable[..., ImportJob]:
    """A draft job of `content` (text or bytes) uploaded by the manager."""

    def make(
        content: str | bytes, *, kind: str = "contact", name: str = "people.csv", **job: Any
    ) -> ImportJob:
        uploaded = SimpleUploadedFile(name, as_bytes(content))
        made = upload_receive(file=uploaded, kind=kind, user=job.pop("user", manager))
        for field, value in job.items():
            setattr(made, field, value)
        made.save()
        return made

    return make


@pytest.fixture
def run_import(
    upload: Callable[..., ImportJob], django_capture_on_commit_callbacks: Any
) -> Callable[..., ImportJob]:
    """Upload, start and run a job (the task runs inline); the job as it ended."""

    def run(content: str | bytes, **job: Any) -> ImportJob:
        made = upload(content, **job)
        with django_capture_on_commit_callbacks(execute=True):
            assert import_start(job=made)
        made.refresh_from_db()
        return made

    return run


__all__ = ["import_job_run"]
