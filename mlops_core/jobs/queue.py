"""The durable job queue: enqueue, claim, heartbeat, finish, cancel, reap; and schedules.

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
import os
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, or_, text, update
from sqlalchemy.orm import Session as _OrmSession
from sqlmodel import Session, col, select

from ..db import Database, utcnow
from ..errors import NotFound, ValidationError
from ..models.jobs import (
    FINAL_STATUSES,
    JOB_STATUSES,
    Job,
    JobPublic,
    Schedule,
    SchedulePublic,
    Worker,
    WorkerPublic,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD_NOTE = 500


class JobCancelled(Exception):
    """Raised by `ctx.check_cancelled()` when someone asked to cancel the job; the worker records "cancelled"."""


def _public(job: Job) -> JobPublic:
    return JobPublic.model_validate(job, from_attributes=True)


def _schedule_public(s: Schedule) -> SchedulePublic:
    return SchedulePublic.model_validate(s, from_attributes=True)


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
    from .handlers import HANDLERS

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
    _wake_workers_on_commit(session)
    payload = dict(payload or {})
    now = utcnow()
    values = dict(kind=kind, payload=payload, status="queued", dedupe_key=dedupe_key, attempts=0,
                  max_attempts=max_attempts, cancel_requested=False, progress=0.0, progress_message="",
                  created_at=now, available_at=available_at or now)
    if dedupe_key is None:
        job = Job(**values)
        session.add(job)
        session.flush()
        return int(job.id)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
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


# --- waking idle workers when a job is enqueued ---------------------------------------
#
# An idle worker polls the queue every MLOPS_WORKER_POLL_SECONDS; on top of that, enqueue wakes it at
# once, so a job starts within milliseconds instead of half a poll interval on average. Best effort:
# a lost wake-up only means the next poll finds the job. Postgres: NOTIFY on a channel the worker
# LISTENs to (delivered at commit, dropped on rollback). SQLite (one machine): after the commit,
# enqueue bumps the modification time of a small file next to the database, which the waiting
# worker checks every WAKE_CHECK_S (a stat, not a query).

WAKE_CHANNEL = "mlops_jobs"
WAKE_CHECK_S = 0.02
_WAKE_KEY = "mlops_jobs_wake_file"


def wake_file_for(url) -> str | None:
    """The wake-up file of a SQLite database URL (None for an in-memory or non-SQLite database)."""
    from sqlalchemy.engine import make_url

    url = make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(os.path.expanduser(database)) + "-jobs-wake"


def _wake_workers_on_commit(session: Session) -> None:
    try:
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})
        else:
            path = wake_file_for(bind.url)
            if path:
                session.info[_WAKE_KEY] = path
    except Exception as exc:  # noqa: BLE001 - the poll finds the job anyway
        log.debug("could not arrange to wake the workers: %s", exc)


@event.listens_for(_OrmSession, "after_commit")
def _wake_after_commit(session) -> None:
    path = session.info.pop(_WAKE_KEY, None)
    if path:
        _touch(path)


@event.listens_for(_OrmSession, "after_rollback")
def _no_wake_after_rollback(session) -> None:
    session.info.pop(_WAKE_KEY, None)


def _touch(path: str) -> None:
    now = time.time_ns()  # an explicit timestamp: two wake-ups never share a (coarse) mtime
    try:
        try:
            os.utime(path, ns=(now, now))
        except FileNotFoundError:
            with open(path, "a", encoding="utf-8"):
                pass
            os.utime(path, ns=(now, now))
    except OSError as exc:
        log.debug("could not touch the job wake-up file %s: %s", path, exc)


class EnqueueListener:
    """What an idle worker watches to learn that a job was enqueued (see above).

    `fileno()`: a descriptor to wait on (Postgres: the LISTEN connection), or None (SQLite: call
    `check()` every WAKE_CHECK_S). `check()` -> True when a job may have been enqueued since the
    last call. Never raises: on any error it falls back to "no news" and the worker's poll.
    """

    RECONNECT_S = 10.0

    def __init__(self, db: Database):
        self.db = db
        self.path = wake_file_for(db.engine.url) if db.is_sqlite else None
        self._stamp = self._file_stamp()
        self._conn = None
        self._retry_at = 0.0
        self.enabled = (self.path is not None) or db.dialect == "postgresql"

    def _file_stamp(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_ino)
        except (OSError, TypeError):
            return None

    def connect(self) -> bool:
        """Postgres: open the LISTEN connection if it is not open (True when it just opened: whatever
        was enqueued while it was closed must be looked for)."""
        if self.db.dialect != "postgresql" or self._conn is not None or time.monotonic() < self._retry_at:
            return False
        try:
            import psycopg

            conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {WAKE_CHANNEL}")
            self._conn = conn
            return True
        except Exception as exc:  # noqa: BLE001 - the database may be away; the poll goes on
            log.debug("could not LISTEN for enqueued jobs: %s", exc)
            self._retry_at = time.monotonic() + self.RECONNECT_S
            return False

    def fileno(self) -> int | None:
        if self._conn is None:
            return None
        try:
            return self._conn.fileno()
        except Exception:  # noqa: BLE001
            self.close()
            return None

    def check(self) -> bool:
        if self.path is not None:
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                return True
            return False
        if self._conn is None:
            return False
        try:
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            woken = False
            while pgconn.notifies() is not None:
                woken = True
            return woken
        except Exception as exc:  # noqa: BLE001 - the connection broke: reconnect later, poll meanwhile
            log.debug("the LISTEN connection broke: %s", exc)
            self.close()
            self._retry_at = time.monotonic() + self.RECONNECT_S
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - best effort, nothing to do if it fails
                pass


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
                .values(status="running", claimed_by=worker, attempts=Job.attempts + 1, started_at=now,
                        heartbeat_at=now, finished_at=None, progress=0.0, progress_message="started")
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
        res = s.execute(update(Job).where(*_ours(job_id, worker, attempt)).values(
            progress=fraction, progress_message=(message or "")[:500], heartbeat_at=utcnow()))
        return res.rowcount == 1


def is_cancel_requested(db: Database, job_id: int) -> bool:
    with db.read() as s:
        return bool(s.exec(select(Job.cancel_requested).where(Job.id == job_id)).first())


def _retry_delay(attempts: int) -> float:
    # 1 s, 2 s, 4 s ... capped at a minute: quick for a flaky moment, gentle for a broken dependency.
    return float(min(60, 2 ** max(0, attempts - 1)))


def finish_job(db: Database, *, job_id: int, worker: str, attempt: int, result: dict[str, Any] | None) -> bool:
    with db.unit_of_work() as s:
        res = s.execute(update(Job).where(*_ours(job_id, worker, attempt)).values(
            status="finished", result=result, error=None, progress=1.0, progress_message="finished",
            finished_at=utcnow(), heartbeat_at=utcnow()))
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
        values = dict(status="queued", error=error, available_at=now + timedelta(seconds=_retry_delay(job.attempts)),
                      progress_message=f"attempt {job.attempts} of {job.max_attempts} failed; retrying")
    else:
        values = dict(status="failed", error=error, finished_at=now, progress_message="failed")
    res = s.execute(update(Job).where(*conditions).values(**values))
    return values["status"] if res.rowcount == 1 else None


def mark_cancelled(db: Database, *, job_id: int, worker: str, attempt: int, message: str = "cancelled") -> bool:
    with db.unit_of_work() as s:
        res = s.execute(update(Job).where(*_ours(job_id, worker, attempt)).values(
            status="cancelled", cancel_requested=True, finished_at=utcnow(), progress_message=message[:500]))
        return res.rowcount == 1


def requeue_job(db: Database, *, job_id: int, worker: str, attempt: int, reason: str) -> bool:
    """Give a job back without counting the attempt (the worker is shutting down, not the job failing)."""
    with db.unit_of_work() as s:
        res = s.execute(update(Job).where(*_ours(job_id, worker, attempt)).values(
            status="queued", attempts=Job.attempts - 1, claimed_by=None, available_at=utcnow(),
            heartbeat_at=None, progress=0.0, progress_message=reason[:500]))
        return res.rowcount == 1


def reap_stale_jobs(db: Database, *, timeout_seconds: float, now: datetime | None = None) -> list[tuple[int, str]]:
    """Running jobs without a heartbeat for `timeout_seconds`: re-queue them while attempts are
    left, else mark them failed with the reason. Returns [(job_id, new_status)]."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    out: list[tuple[int, str]] = []
    with db.unit_of_work() as s:
        q = select(Job).where(Job.status == "running",
                              or_(col(Job.heartbeat_at).is_(None), col(Job.heartbeat_at) < cutoff))
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        for job in s.exec(q).all():
            last = job.heartbeat_at or job.started_at or job.created_at
            silent = max(timeout_seconds, (now - last).total_seconds())
            reason = f"worker {job.claimed_by or '?'} stopped responding (no heartbeat for {silent:.0f} s)"
            conditions = (Job.id == job.id, Job.status == "running", Job.claimed_by == job.claimed_by,
                          Job.attempts == job.attempts)
            status = _fail_in(s, job_id=int(job.id), conditions=conditions, error=reason, retry=True)
            if status:
                log.warning("job %s: %s -> %s", job.id, reason, status)
                out.append((int(job.id), status))
    return out


# --- schedules ------------------------------------------------------------------------

def validate_cron(expr: str):
    """The APScheduler trigger for a 5-field crontab expression (UTC), or a ValidationError."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expr, timezone="UTC")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"cron expression {expr!r} is not valid ({exc}); use 5 fields: minute hour day month weekday, "
            "e.g. '0 * * * *' for every hour"
        ) from None


def upsert_schedule(
    db: Database | Session,
    *,
    name: str,
    kind: str,
    payload: dict[str, Any] | None = None,
    interval_seconds: int | None = None,
    cron: str | None = None,
    enabled: bool = True,
) -> SchedulePublic:
    """Create or replace the schedule called `name` (exactly one of interval_seconds / cron)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("a schedule needs a name")
    _check_kind(kind)
    if (interval_seconds is None) == (cron is None or not cron.strip()):
        raise ValidationError("give a schedule either interval_seconds or a cron expression (exactly one)")
    if interval_seconds is not None:
        if int(interval_seconds) < 1:
            raise ValidationError(f"interval_seconds must be at least 1 (got {interval_seconds})")
        interval_seconds = int(interval_seconds)
    else:
        cron = cron.strip()
        validate_cron(cron)
    with _UnitOfWork(db) as s:
        row = s.exec(select(Schedule).where(Schedule.name == name)).first()
        now = utcnow()
        if row is None:
            row = Schedule(name=name, kind=kind, created_at=now)
        row.kind = kind
        row.payload = dict(payload or {})
        row.interval_seconds = interval_seconds
        row.cron = cron if interval_seconds is None else None
        row.enabled = bool(enabled)
        row.updated_at = now
        s.add(row)
        s.flush()
        return _schedule_public(row)


def delete_schedule(db: Database | Session, name: str) -> bool:
    """Remove a schedule; True when it existed. Jobs it already enqueued stay."""
    with _UnitOfWork(db) as s:
        row = s.exec(select(Schedule).where(Schedule.name == name)).first()
        if row is None:
            return False
        s.delete(row)
        return True


def list_schedules(db: Database | Session, *, enabled_only: bool = False) -> list[SchedulePublic]:
    with _UnitOfWork(db, write=False) as s:
        q = select(Schedule).order_by(Schedule.name)
        if enabled_only:
            q = q.where(Schedule.enabled == True)  # noqa: E712
        return [_schedule_public(r) for r in s.exec(q).all()]


def schedule_dedupe_key(schedule_id: int, fire_time: datetime) -> str:
    from datetime import UTC

    return f"schedule:{schedule_id}:{fire_time.astimezone(UTC).isoformat()}"


def enqueue_firing(db: Database, *, schedule_id: int, fire_time: datetime) -> int | None:
    """Enqueue the job of one firing of a schedule; exactly once per (schedule, fire time),
    however many schedulers fire it. Returns the job id (None if the schedule is gone or disabled)."""
    with db.unit_of_work() as s:
        sched = s.get(Schedule, schedule_id)
        if sched is None or not sched.enabled:
            return None
        payload = {**sched.payload, "schedule": sched.name, "fire_time": fire_time.isoformat()}
        job_id = enqueue(s, kind=sched.kind, payload=payload, dedupe_key=schedule_dedupe_key(schedule_id, fire_time))
        s.execute(update(Schedule).where(Schedule.id == schedule_id).values(last_fired_at=fire_time, last_job_id=job_id))
        return job_id


__all__ = [
    "FINAL_STATUSES", "JobCancelled", "claim_next", "count_jobs_by_status", "delete_schedule", "enqueue",
    "enqueue_firing", "fail_job", "finish_job", "get_job", "heartbeat_jobs", "is_cancel_requested",
    "list_jobs", "list_schedules", "mark_cancelled", "reap_stale_jobs", "request_cancel", "requeue_job",
    "set_progress", "upsert_schedule", "validate_cron", "list_workers",
]


# --- workers (read by the Infrastructure page) ------------------------------------------

def list_workers(db: Database | Session, *, include_stopped: bool = True, limit: int = 200) -> list[WorkerPublic]:
    """Worker processes, newest heartbeat first. A worker whose heartbeat is older than
    MLOPS_JOB_HEARTBEAT_TIMEOUT is reported with status "lost" even before a reaper noticed."""
    from ..config import get_settings

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
