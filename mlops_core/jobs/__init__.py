"""The durable job queue (see docs/CONTRACTS_INTERNAL.md, "Jobs").

    from mlops_core import jobs
    job_id = jobs.enqueue(session, kind="train", payload={"run_id": 7})   # inside your unit of work
    jobs.get_job(db, job_id).status / .progress / .progress_message
    jobs.request_cancel(db, job_id)

`python -m mlops_core worker` runs the jobs (mlops_core/jobs/worker.py).
"""

from .queue import (
    JobCancelled,
    enqueue,
    get_job,
    list_jobs,
    list_workers,
    request_cancel,
)
from .runner import JobContext
from .schedules import delete_schedule, list_schedules, upsert_schedule

__all__ = [
    "JobCancelled",
    "JobContext",
    "delete_schedule",
    "enqueue",
    "get_job",
    "list_jobs",
    "list_schedules",
    "list_workers",
    "request_cancel",
    "upsert_schedule",
]
