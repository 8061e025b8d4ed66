"""imports's Celery task: running one import job."""

from celery import shared_task

from imports.run import import_job_run


@shared_task(acks_late=True)
def run_import(job_id: int) -> None:
    import_job_run(job_id=job_id)
