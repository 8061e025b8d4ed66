"""Receiving an uploaded file: stored under IMPORT_DIR, inspected, made an ImportJob."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files import File

from crm.models import User
from imports.mapping import guess
from imports.models import ImportJob, ImportMapping
from imports.reading import UnreadableFile, inspect


def max_bytes() -> int:
    return int(settings.IMPORT_MAX_MB) * 1024 * 1024


def upload_receive(*, file: File, kind: str, user: User) -> ImportJob:
    """Store the file and make a draft job of it, its mapping prefilled (the user's last one
    for this kind where its columns are in the file, else guessed from the column names).
    UnreadableFile (nothing kept) when it is too big or not a CSV / XLSX we can read."""
    if (file.size or 0) > max_bytes():
        raise UnreadableFile(
            f"The file is {(file.size or 0) / 1024 / 1024:.1f} MB; the limit is "
            f"{settings.IMPORT_MAX_MB} MB. Split it into smaller files."
        )
    folder = Path(settings.IMPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.upload"
    with path.open("wb") as stored:
        for chunk in file.chunks():
            stored.write(chunk)
    try:
        info = inspect(path)
    except (UnreadableFile, OSError) as error:
        path.unlink(missing_ok=True)
        raise UnreadableFile(str(error)) from error
    remembered = ImportMapping.objects.filter(user=user, kind=kind).first()
    # A remembered choice wins, "don't import" ("") included; other columns are guessed.
    mapping = {
        c: f for c, f in (remembered.mapping if remembered else {}).items() if c in info.header
    }
    for column, name in guess(info.header, kind, user).items():
        if column not in mapping and name not in mapping.values():
            mapping[column] = name
    rule = (
        ImportJob.DuplicateRule.NAME_ACCOUNT if kind == "account" else ImportJob.DuplicateRule.EMAIL
    )
    return ImportJob.objects.create(
        kind=kind,
        file_path=str(path),
        original_name=(file.name or "upload")[:255],
        format=info.format,
        encoding=info.encoding,
        delimiter=info.delimiter,
        header=info.header,
        rows_estimate=info.rows_estimate,
        mapping=mapping,
        duplicate_rule=rule,
        owner=user,
        requested_by=user,
    )


def mapping_remember(*, job: ImportJob) -> None:
    """The job's mapping becomes the user's remembered one for its kind."""
    ImportMapping.objects.update_or_create(
        user=job.requested_by, kind=job.kind, defaults={"mapping": job.mapping}
    )


def job_delete(*, job: ImportJob) -> None:
    """Delete a job with its failed rows and, if it never ran, its uploaded file."""
    if job.file_path:
        Path(job.file_path).unlink(missing_ok=True)
    job.delete()
