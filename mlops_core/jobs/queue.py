"""The durable job queue: enqueue, claim, heartbeat, finish, cancel, reap.

Waking idle workers at enqueue is in wake.py; schedules (the only APScheduler user) in schedules.py.

Jobs are rows of `jobs`. A worker claims the oldest queued job with
`SELECT ... FOR UPDATE SKIP LOCKED` on Postgres (several workers never wait on each other
nor take the same row) followed, on both databases, by the conditional update
`UPDATE jobs SET status='running', claimed_by=? WHERE id=? AND status='queued'` whose
rowcount decides who won (the whole guarantee on SQLite, where writers are serialised).

Every later write by a worker is conditional on `status='running' AND claimed_by=<me> AND
attempts=<my attempt>`, so a job that the reaper took away from a stalled worker cannot be
overwritten by it when it wakes up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from ..config import get_settings
from ..db import Database, utcnow
from ..errors import NotFound, ValidationError
from ..models.jobs import (
    FINAL_STATUSES,
    JOB_STATUSES,
    Job,
    JobPublic,
    Worker,
    WorkerPublic,
)
from . import wake

log = logging.getLogger(__name__)

MAX_PAYLOAD_NOTE = 500


class JobCancelled(Exception):
    """Raised by `ctx.check_cancelled()` when someone asked to cancel the job; the worker records "cancelled"."""


def _public(job: Job) -> JobPublic:
    return JobPublic.model_validate(job, from_attributes=True)


class _UnitOfWork:
    """Accept either a Database (one transaction of our own) or a Session (the caller's transaction)."""

    def __init__(self, db_or_session: Database | Session, *, write: bool = True):
        self.target = db_or_session
        self.write = write
        self._cm = None

    def __enter__(self) -> Session:
        if isinstance(self.target, Session):
            return self.target
        self._cm = self.target.unit_of_work(write=self.write)
        return self._cm.__enter__()

    def __exit__(self, *exc):
        if self._cm is not None:
            return self._cm.__exit__(*exc)
        return False


def _known_kinds() -> dict[str, str]:
    from .handlers import HANDLERS  # a real cycle: the handlers import the services, which import this package

    return HANDLERS


def _check_kind(kind: str) -> None:
    kinds = _known_kinds()
    if kind not in kinds:
        raise ValidationError(
            f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(kinds))}. "
            "Add it to mlops_core/jobs/handlers.py::HANDLERS"
        )


# --- enqueue / read / cancel ---------------------------------------------------------


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    max_attempts: int = 1,
    dedupe_key: str | None = None,
    available_at: datetime | None = None,
) -> int:
    """Add a job inside the caller's transaction and return its id.

    With a `dedupe_key` that is already taken, no new job is added and the id of the
    existing job is returned (INSERT ... ON CONFLICT DO NOTHING, so the caller's
    transaction is never aborted by the unique constraint).
    """
    _check_kind(kind)
    if max_attempts < 1:
        raise ValidationError(f"max_attempts must be at least 1 (got {max_attempts})")
    wake.wake_workers_on_commit(session)
    payload = dict(payload or {})
    now = utcnow()
    values = dict(
        kind=kind,
        payload=payload,
        status="queued",
        dedupe_key=dedupe_key,
        attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        progress=0.0,
        progress_message="",
        created_at=now,
        available_at=available_at or now,
    )
    if dedupe_key is None:
        job = Job(**values)
        session.add(job)
        session.flush()
        return int(job.id)
    dialect = session.get_bind().dialect.name
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = dialect_insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(stmt)
    existing = session.exec(select(Job.id).where(Job.dedupe_key == dedupe_key)).one()
    return int(existing)


def get_job(db: Database | Session, job_id: int) -> JobPublic:
    with _UnitOfWork(db, write=False) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist; it may have been deleted — pick one from the jobs list")
        return _public(job)


def list_jobs(
    db: Database | Session,
    *,
    status: str | list[str] | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JobPublic]:
    """Newest first; filter by status (one or several) and kind."""
    with _UnitOfWork(db, write=False) as s:
        q = select(Job)
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = [x for x in statuses if x not in JOB_STATUSES]
            if bad:
                raise ValidationError(f"unknown job status {bad[0]!r}; use one of {', '.join(JOB_STATUSES)}")
            q = q.where(col(Job.status).in_(statuses))
        if kind:
            q = q.where(Job.kind == kind)
        q = q.order_by(col(Job.id).desc()).offset(max(0, offset)).limit(max(1, min(limit, 1000)))
        return [_public(j) for j in s.exec(q).all()]


def count_jobs_by_status(db: Database | Session) -> dict[str, int]:
    with _UnitOfWork(db, write=False) as s:
        rows = s.exec(select(Job.status, func.count()).group_by(Job.status)).all()
        return {st: int(n) for st, n in rows}


def request_cancel(db: Database | Session, job_id: int) -> JobPublic:
    """Ask for a job to stop. A queued job is cancelled at once; a running one is stopped by
    its worker (the handler sees it at `ctx.check_cancelled()`, or the worker terminates it).
    A finished job is left as it is."""
    with _UnitOfWork(db) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist; it may have been deleted — pick one from the jobs list")
        now = utcnow()
        if job.status == "queued":
            job.status = "cancelled"
            job.cancel_requested = True
            job.finished_at = now
            job.progress_message = "cancelled before it started"
        elif job.status == "running":
            job.cancel_requested = True
        s.add(job)
        s.flush()
        return _public(job)


# --- worker side: claim, heartbeat, progress, finish --------------------------------


def claim_next(db: Database, *, worker: str, kinds: list[str] | None = None) -> JobPublic | None:
    """Take the oldest queued job whose time has come, or None. Never gives one job to two workers."""
    now = utcnow()
    # A cheap read first, so an idle worker polling an empty queue never takes the SQLite write lock.
    with db.read() as s:
        probe = select(Job.id).where(Job.status == "queued", Job.available_at <= now)
        if kinds:
            probe = probe.where(col(Job.kind).in_(kinds))
        if s.exec(probe.limit(1)).first() is None:
            return None
    with db.unit_of_work() as s:
        now = utcnow()  # after the write lock (SQLite) is ours: the heartbeat starts fresh
        q = select(Job.id).where(Job.status == "queued", Job.available_at <= now)
        if kinds:
            q = q.where(col(Job.kind).in_(kinds))
        q = q.order_by(col(Job.available_at), col(Job.id)).limit(5)
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        for job_id in s.exec(q).all():
            res = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(
                    status="running",
                    claimed_by=worker,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    finished_at=None,
                    progress=0.0,
                    progress_message="started",
                )
            )
            if res.rowcount == 1:
                job = s.get(Job, job_id)
                s.refresh(job)
                return _public(job)
    return None


def _ours(job_id: int, worker: str, attempt: int):
    return (Job.id == job_id, Job.status == "running", Job.claimed_by == worker, Job.attempts == attempt)


def heartbeat_jobs(db: Database, *, worker: str, jobs: dict[int, int]) -> dict[int, dict[str, Any]]:
    """Refresh the heartbeat of the running jobs `{job_id: attempt}` held by `worker`.

    Returns, per job id, {"ours": bool, "cancel_requested": bool}: a job that is no longer
    ours (reaped, or finished by its process) must not be touched by this worker again.
    """
    if not jobs:
        return {}
    now = utcnow()
    out: dict[int, dict[str, Any]] = {}
    with db.unit_of_work() as s:
        for job_id, attempt in jobs.items():
            res = s.execute(update(Job).where(*_ours(job_id, worker, attempt)).values(heartbeat_at=now))
            row = s.exec(select(Job.cancel_requested).where(Job.id == job_id)).first()
            out[job_id] = {"ours": res.rowcount == 1, "cancel_requested": bool(row)}
    return out


def set_progress(db: Database, *, job_id: int, worker: str, attempt: int, fraction: float, message: str = "") -> bool:
    fraction = max(0.0, min(1.0, float(fraction)))
    with db.unit_of_work() as s:
        res = s.execute(
            update(Job)
            .where(*_ours(job_id, worker, attempt))
            .values(progress=fraction, progress_message=(message or "")[:500], heartbeat_at=utcnow())
        )
        return res.rowcount == 1


def is_cancel_requested(db: Database, job_id: int) -> bool:
    with db.read() as s:
        return bool(s.exec(select(Job.cancel_requested).where(Job.id == job_id)).first())


def _retry_delay(attempts: int) -> float:
    # 1 s, 2 s, 4 s ... capped at a minute: quick for a flaky moment, gentle for a broken dependency.
    return float(min(60, 2 ** max(0, attempts - 1)))


def finish_job(db: Database, *, job_id: int, worker: str, attempt: int, result: dict[str, Any] | None) -> bool:
    with db.unit_of_work() as s:
        res = s.execute(
            update(Job)
            .where(*_ours(job_id, worker, attempt))
            .values(
                status="finished",
                result=result,
                error=None,
                progress=1.0,
                progress_message="finished",
                finished_at=utcnow(),
                heartbeat_at=utcnow(),
            )
        )
        return res.rowcount == 1


def fail_job(db: Database, *, job_id: int, worker: str, attempt: int, error: str, retry: bool = True) -> str | None:
    """Record a failed attempt: back to "queued" while attempts are left (and `retry`), else "failed".
    Returns the new status, or None when the job was no longer held by this worker."""
    with db.unit_of_work() as s:
        return _fail_in(s, job_id=job_id, conditions=_ours(job_id, worker, attempt), error=error, retry=retry)


def _fail_in(s: Session, *, job_id: int, conditions, error: str, retry: bool) -> str | None:
    job = s.exec(select(Job).where(*conditions)).first()
    if job is None:
        return None
    now = utcnow()
    if job.cancel_requested:
        values = dict(status="cancelled", finished_at=now, error=error, progress_message="cancelled")
    elif retry and job.attempts < job.max_attempts:
        values = dict(
            status="queued",
            error=error,
            available_at=now + timedelta(seconds=_retry_delay(job.attempts)),
            progress_message=f"attempt {job.attempts} of {job.max_attempts} failed; retrying",
        )
    else:
        values = dict(status="failed", error=error, finished_at=now, progress_message="failed")
    res = s.execute(update(Job).where(*conditions).values(**values))
    return values["status"] if res.rowcount == 1 else None


def mark_cancelled(db: Database, *, job_id: int, worker: str, attempt: int, message: str = "cancelled") -> bool:
    with db.unit_of_work() as s:
        res = s.execute(
            update(Job)
            .where(*_ours(job_id, worker, attempt))
            .values(status="cancelled", cancel_requested=True, finished_at=utcnow(), progress_message=message[:500])
        )
        return res.rowcount == 1


def requeue_job(db: Database, *, job_id: int, worker: str, attempt: int, reason: str) -> bool:
    """Give a job back without counting the attempt (the worker is shutting down, not the job failing)."""
    with db.unit_of_work() as s:
        res = s.execute(
            update(Job)
            .where(*_ours(job_id, worker, attempt))
            .values(
                status="queued",
                attempts=Job.attempts - 1,
                claimed_by=None,
                available_at=utcnow(),
                heartbeat_at=None,
                progress=0.0,
                progress_message=reason[:500],
            )
        )
        return res.rowcount == 1


def reap_stale_jobs(db: Database, *, timeout_seconds: float, now: datetime | None = None) -> list[tuple[int, str]]:
    """Running jobs without a heartbeat for `timeout_seconds`: re-queue them while attempts are
    left, else mark them failed with the reason. Returns [(job_id, new_status)]."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    out: list[tuple[int, str]] = []
    with db.unit_of_work() as s:
        q = select(Job).where(
            Job.status == "running", or_(col(Job.heartbeat_at).is_(None), col(Job.heartbeat_at) < cutoff)
        )
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        for job in s.exec(q).all():
            last = job.heartbeat_at or job.started_at or job.created_at
            silent = max(timeout_seconds, (now - last).total_seconds())
            reason = f"worker {job.claimed_by or '?'} stopped responding (no heartbeat for {silent:.0f} s)"
            conditions = (
                Job.id == job.id,
                Job.status == "running",
                Job.claimed_by == job.claimed_by,
                Job.attempts == job.attempts,
            )
            status = _fail_in(s, job_id=int(job.id), conditions=conditions, error=reason, retry=True)
            if status:
                log.warning("job %s: %s -> %s", job.id, reason, status)
                out.append((int(job.id), status))
    return out


__all__ = [
    "FINAL_STATUSES",
    "JobCancelled",
    "claim_next",
    "count_jobs_by_status",
    "enqueue",
    "fail_job",
    "finish_job",
    "get_job",
    "heartbeat_jobs",
    "is_cancel_requested",
    "list_jobs",
    "mark_cancelled",
    "reap_stale_jobs",
    "request_cancel",
    "requeue_job",
    "set_progress",
    "list_workers",
]


# --- workers (read by the Infrastructure page) ------------------------------------------


def list_workers(db: Database | Session, *, include_stopped: bool = True, limit: int = 200) -> list[WorkerPublic]:
    """Worker processes, newest heartbeat first. A worker whose heartbeat is older than
    MLOPS_JOB_HEARTBEAT_TIMEOUT is reported with status "lost" even before a reaper noticed."""
    timeout = get_settings().job_heartbeat_timeout
    now = utcnow()
    with _UnitOfWork(db, write=False) as s:
        q = select(Worker).order_by(col(Worker.heartbeat_at).desc()).limit(limit)
        if not include_stopped:
            q = q.where(Worker.status != "stopped")
        out = []
        for w in s.exec(q).all():
            p = WorkerPublic.model_validate(w, from_attributes=True)
            if p.status in ("running", "stopping") and (now - p.heartbeat_at).total_seconds() > timeout:
                p.status = "lost"
            out.append(p)
        return out
