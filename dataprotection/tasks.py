"""dataprotection's Celery tasks: thin wrappers over its services."""

from celery import shared_task

from dataprotection import export, forget, retention


@shared_task(acks_late=True)
def retention_enforce() -> dict[str, int]:
    """Every retention of Setup (beat, nightly); returns the counts it recorded."""
    return retention.retention_enforce().counts


@shared_task(acks_late=True)
def export_person(request_id: int) -> None:
    """Build the archive of one export request (queued by dataprotection.export)."""
    export.export_build(request_id=request_id)


@shared_task(acks_late=True)
def exports_expire() -> int:
    """Remove export archives past their expiry (beat, nightly); returns how many."""
    return export.exports_expire()


@shared_task(acks_late=True)
def forget_person(request_id: int) -> None:
    """Carry out one forget request (queued by dataprotection.forget.forget_request)."""
    forget.forget_request_run(request_id=request_id)
