"""/api/v1/jobs: a job's status, progress and error; cancel it (same role as the action that started it)."""

from __future__ import annotations

from fastapi import APIRouter

from ...services import jobcontrol
from .deps import DB, CurrentActor, dump

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", summary="Status, progress and error of a job")
def get_job(job_id: int, actor: CurrentActor, db: DB):
    return dump(jobcontrol.get_job(db, actor=actor, job_id=job_id))


@router.post("/{job_id}/cancel", summary="Ask a queued or running job to stop")
def cancel_job(job_id: int, actor: CurrentActor, db: DB):
    return dump(jobcontrol.cancel_job(db, actor=actor, job_id=job_id))
