"""Periodic jobs: the `schedules` table and the scheduler, APScheduler 3.x inside the worker, run by one
elected leader. This is the only module that uses APScheduler; it is imported inside the functions that
need it (about 0.15 s), because every service that keeps a schedule imports this module.

Election: a row of `leases` named "scheduler" with `holder` and `expires_at`. Each worker
that may schedule calls `Scheduler.tick()` every few seconds: it takes the lease when it is
free or expired, renews it while it holds it, and starts or stops its BackgroundScheduler
accordingly. A leader that dies stops renewing; another worker takes over once the lease
expires.

Exactly once per firing: APScheduler tells us the *scheduled* fire time of each run
(JobSubmissionEvent.scheduled_run_times), and the job is enqueued with
dedupe_key = f"schedule:{id}:{fire_time_iso}" under a unique constraint. Fire times are
deterministic across processes (cron in UTC; intervals on a grid anchored at a fixed
instant), so two schedulers that overlap during a takeover enqueue a firing once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, select

from ..db import Database, utcnow
from ..errors import ValidationError
from ..models.jobs import Lease, Schedule, SchedulePublic
from .queue import _check_kind, _UnitOfWork, enqueue

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
# Interval schedules fire on a grid anchored here, so every scheduler computes the same instants.
INTERVAL_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
# A firing missed while no scheduler was leader is caught up (once, coalesced) if this recent.
CATCH_UP_WINDOW = timedelta(hours=1)
MISFIRE_GRACE_S = 300


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _schedule_public(s: Schedule) -> SchedulePublic:
    return SchedulePublic.model_validate(s, from_attributes=True)


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
        s.execute(
            update(Schedule).where(Schedule.id == schedule_id).values(last_fired_at=fire_time, last_job_id=job_id)
        )
        return job_id


# --- the lease ----------------------------------------------------------------------------


def try_acquire_lease(db: Database, *, holder: str, ttl_seconds: float, name: str = LEASE_NAME) -> bool:
    """Take or renew the lease for `ttl_seconds`; True when `holder` holds it afterwards."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    with db.unit_of_work() as s:
        res = s.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
            .values(holder=holder, expires_at=expires)
        )
        if res.rowcount == 1:
            return True
        if s.get(Lease, name) is not None:
            return False
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        s.execute(
            dialect_insert(Lease)
            .values(name=name, holder=holder, acquired_at=now, expires_at=expires)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        # (rowcount of an ORM-enabled INSERT is not reliable on every driver: read the winner back)
        return s.exec(select(Lease.holder).where(Lease.name == name)).one() == holder


def release_lease(db: Database, *, holder: str, name: str = LEASE_NAME) -> None:
    """Give the lease up at once (clean shutdown), so another worker takes over without waiting."""
    with db.unit_of_work() as s:
        s.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def lease_holder(db: Database, name: str = LEASE_NAME) -> tuple[str, datetime] | None:
    with db.read() as s:
        row = s.get(Lease, name)
        return (row.holder, _aware(row.expires_at)) if row else None


# --- triggers ---------------------------------------------------------------------------


def trigger_for(schedule: Schedule):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.interval_seconds:
        return IntervalTrigger(seconds=int(schedule.interval_seconds), start_date=INTERVAL_ANCHOR, timezone=UTC)
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


def last_fire_time(trigger, *, after: datetime, now: datetime, limit: int = 10_000) -> datetime | None:
    """The latest fire time of `trigger` in (after, now], or None."""
    t = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    last = None
    for _ in range(limit):
        if t is None or t > now:
            break
        last = t
        t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))
    return last


def _noop() -> None:
    """APScheduler's job body; the enqueueing happens in the submission listener (it knows the fire time)."""


# --- the scheduler ----------------------------------------------------------------------


class Scheduler:
    """One per worker process. Call `tick()` every `renew_seconds`; `shutdown()` on exit."""

    def __init__(self, db: Database, *, holder: str, lease_seconds: float = 30.0, elect: bool = True):
        self.db = db
        self.holder = holder
        self.lease_seconds = float(lease_seconds)
        # elect=False: always act as leader (tests that make two schedulers overlap on purpose).
        self.elect = elect
        self.is_leader = False
        self._aps = None
        self._signatures: dict[int, tuple] = {}
        self._pending: deque[tuple[int, datetime]] = deque(maxlen=10_000)
        self._lock = threading.Lock()
        self.fired: list[tuple[int, datetime, int | None]] = []  # (schedule id, fire time, job id), for tests/logs

    @property
    def renew_seconds(self) -> float:
        return max(0.5, self.lease_seconds / 3)

    def tick(self) -> bool:
        """Take/renew the lease and keep APScheduler in line with the `schedules` table."""
        leader = (
            True if not self.elect else try_acquire_lease(self.db, holder=self.holder, ttl_seconds=self.lease_seconds)
        )
        if leader and not self.is_leader:
            log.info("%s is now the scheduler", self.holder)
            self._start()
        elif not leader and self.is_leader:
            log.info("%s lost the scheduler lease; stopping its scheduler", self.holder)
            self._stop()
        self.is_leader = leader
        if leader:
            self._sync()
            self._flush_pending()
        return leader

    def shutdown(self, *, release: bool = True) -> None:
        self._stop()
        if release and self.is_leader and self.elect:
            try:
                release_lease(self.db, holder=self.holder)
            except Exception as exc:  # noqa: BLE001 - the lease expires by itself anyway
                log.warning("could not release the scheduler lease: %s", exc)
        self.is_leader = False

    # -- internals --
    def _start(self) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED
        from apscheduler.schedulers.background import BackgroundScheduler

        self._signatures = {}
        self._aps = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S}
        )
        self._aps.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
        self._aps.start()

    def _stop(self) -> None:
        if self._aps is not None:
            try:
                self._aps.shutdown(wait=False)
            except Exception:  # noqa: BLE001, S110 - already stopped
                pass
            self._aps = None
        self._signatures = {}

    def _sync(self) -> None:
        if self._aps is None:
            return
        with self.db.read() as s:
            rows = [
                Schedule.model_validate(r.model_dump())
                for r in s.exec(select(Schedule).where(Schedule.enabled == True)).all()  # noqa: E712 - SQL
            ]
        now = utcnow()
        seen = set()
        for row in rows:
            sid = int(row.id)
            seen.add(sid)
            sig = (row.kind, row.interval_seconds, row.cron, _aware(row.updated_at))
            if self._signatures.get(sid) == sig:
                continue
            try:
                trigger = trigger_for(row)
            except Exception as exc:  # noqa: BLE001 - a bad row must not stop the other schedules
                log.error("schedule %s (%s) has an invalid trigger: %s", sid, row.name, exc)
                self._signatures[sid] = sig
                continue
            kwargs = {}
            last = _aware(row.last_fired_at)
            if last is not None and sid not in self._signatures:
                # Catch up one firing missed while no scheduler was leader (e.g. during a takeover).
                missed = last_fire_time(trigger, after=max(last, now - CATCH_UP_WINDOW), now=now)
                if missed is not None:
                    kwargs["next_run_time"] = missed
            self._aps.add_job(_noop, trigger, id=f"schedule-{sid}", name=row.name, replace_existing=True, **kwargs)
            self._signatures[sid] = sig
        for sid in list(self._signatures):
            if sid not in seen:
                try:
                    self._aps.remove_job(f"schedule-{sid}")
                except Exception:  # noqa: BLE001, S110 - never added (invalid trigger)
                    pass
                del self._signatures[sid]

    def _on_submitted(self, event) -> None:
        try:
            sid = int(str(event.job_id).removeprefix("schedule-"))
        except ValueError:
            return
        for fire_time in event.scheduled_run_times:
            self.fire(sid, fire_time)

    def fire(self, schedule_id: int, fire_time: datetime) -> int | None:
        """Enqueue one firing (idempotent per fire time). On a database error it is kept and retried."""
        fire_time = _aware(fire_time).astimezone(UTC)
        try:
            job_id = enqueue_firing(self.db, schedule_id=schedule_id, fire_time=fire_time)
        except Exception as exc:  # noqa: BLE001 - retried on the next tick
            log.warning("could not enqueue firing %s of schedule %s (%s); will retry", fire_time, schedule_id, exc)
            with self._lock:
                self._pending.append((schedule_id, fire_time))
            return None
        with self._lock:
            self.fired.append((schedule_id, fire_time, job_id))
            del self.fired[:-1000]
        return job_id

    def _flush_pending(self) -> None:
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        for sid, t in pending:
            self.fire(sid, t)
