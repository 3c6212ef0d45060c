"""Jobs as the Hub API shows them: read a job, and cancel it with the same role rule as the action that
started it (the queue itself, jobs.request_cancel, knows no roles and writes no audit row)."""

from __future__ import annotations

from .. import jobs
from ..db import Database
from ..errors import Conflict
from ..models.jobs import FINAL_STATUSES, JobPublic
from . import audit, experiments
from .auth import Actor, require

# Who may cancel a job of each kind: the action that starts such a job. Kinds not listed are the system's
# own (webhooks, reports, retraining steps): only an admin may cancel them.
CANCEL_ACTION = {
    "train": "run.cancel",
    "monitor": "monitor.run",
    "batch_score": "batch.score",
    "ingest": "ingestion.schedule",
}


def get_job(db: Database, *, actor: Actor, job_id: int) -> JobPublic:
    """Status, progress and error of one job (everyone may look, as on the pages)."""
    return jobs.get_job(db, job_id)


def cancel_job(db: Database, *, actor: Actor, job_id: int) -> JobPublic:
    """Ask a queued or running job to stop. A training job is cancelled through its run (experiments.cancel_run),
    so the run's status and the audit log say the same as when the Cancel button is used."""
    job = jobs.get_job(db, job_id)
    require(actor, CANCEL_ACTION.get(job.kind, "user.manage"))
    if job.status in FINAL_STATUSES:
        raise Conflict(f"job {job_id} has already ended ({job.status}); there is nothing to cancel")
    run_id = job.payload.get("run_id") if job.kind == "train" else None
    if run_id is not None:
        experiments.cancel_run(db, actor=actor, run_id=int(run_id))
        return jobs.get_job(db, job_id)
    with db.unit_of_work() as s:
        out = jobs.request_cancel(s, job_id)
        audit.record(
            s,
            actor=actor,
            action="job.cancel",
            entity_type="job",
            entity_id=job_id,
            summary=f"cancel {job.kind} job {job_id} (was {job.status})",
            before={"status": job.status},
            after={"status": out.status, "cancel_requested": True},
        )
        return out
