"""`python -m mlops_core worker`: run queued jobs, keep them alive, and (if elected) schedule.

One worker process = one loop that
- claims queued jobs while it has free slots (`--concurrency`), each run in its own child
  process (a fork server with the handler modules preloaded, so a job starts in milliseconds;
  a job that crashes or is cancelled cannot take the worker with it);
- heartbeats its running jobs and its own `workers` row (CPU, memory, current job);
- watches for cancel requests: a job that does not stop by itself within CANCEL_GRACE_S is
  terminated, and recorded "cancelled";
- reaps jobs of dead workers (no heartbeat for MLOPS_JOB_HEARTBEAT_TIMEOUT seconds): failed
  with the reason, or re-queued while attempts are left;
- runs the APScheduler scheduler when it holds the scheduler lease (schedules.py).

It survives a lost database (retries with back-off, the jobs keep running) and stops cleanly
on SIGTERM/SIGINT: it stops claiming, lets the running jobs finish for up to `drain_seconds`,
gives back the rest to the queue, and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import wait as mp_wait

import psutil
from sqlalchemy import delete, update
from sqlmodel import col, select

from ..config import get_settings
from ..db import Database, check_schema, get_database, utcnow
from ..models.jobs import Job, Worker as WorkerRow
from . import queue
from .runner import STATUS_BY_EXIT_CODE, child_main
from .schedules import Scheduler
from .wake import WAKE_CHECK_S, EnqueueListener

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 2.0  # a cancelled job gets this long to stop by itself before it is terminated
KILL_AFTER_S = 3.0  # a killed job process is waited for this long
CANCEL_POLL_S = 0.5  # how often running jobs are checked for cancel requests
MAX_BACKOFF_S = 30.0
WORKER_ROWS_KEPT_FOR = timedelta(days=7)


@dataclass
class RunningJob:
    job_id: int
    kind: str
    attempt: int
    proc: object
    started: float = field(default_factory=time.monotonic)
    cancel_seen: float | None = None
    terminated_at: float | None = None
    stop_reason: str | None = None  # "cancel" | "drain" | "lost"


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except (ValueError, TypeError):
        return str(-code)


def _mp_context():
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["mlops_core.jobs._preload"])
        return ctx
    except ValueError:  # no fork server on this platform
        return mp.get_context("spawn")


def _child_entry(database_url, job_id, kind, payload, worker, attempt, worker_pid):  # pragma: no cover - child
    _die_with_worker(worker_pid)
    child_main(database_url, job_id, kind, payload, worker, attempt)


def _warm_up() -> None:  # pragma: no cover - runs in the child
    """A first, empty job process: returns once the fork server has preloaded the handlers."""


def _die_with_worker(worker_pid: int) -> None:  # pragma: no cover - runs in the child
    """A job must not outlive its worker (a SIGKILLed worker would leave it running unsupervised,
    and the reaper would hand the job to another worker meanwhile). The job's parent is the fork
    server, not the worker, so a small thread watches the worker's pid."""

    def watch():
        while True:
            time.sleep(0.5)
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                os._exit(70)
            except PermissionError:  # pid reused by another user's process: ours is gone
                os._exit(70)

    threading.Thread(target=watch, name="worker-watchdog", daemon=True).start()


class JobWorker:
    """The worker loop. `run()` returns the process exit code."""

    def __init__(
        self,
        db: Database,
        *,
        name: str | None = None,
        concurrency: int = 1,
        scheduler: bool | None = None,
        once: bool = False,
        poll_seconds: float | None = None,
        heartbeat_timeout: float | None = None,
        drain_seconds: float = 15.0,
        kinds: list[str] | None = None,
    ):
        settings = get_settings()
        self.db = db
        self.name = name or default_worker_name()
        self.concurrency = max(1, int(concurrency))
        self.scheduler_allowed = settings.scheduler_enabled if scheduler is None else bool(scheduler)
        self.once = once
        if once:
            self.scheduler_allowed = False  # a worker that drains the queue and exits schedules nothing
        self.poll_seconds = max(0.05, float(poll_seconds if poll_seconds is not None else settings.worker_poll_seconds))
        self.heartbeat_timeout = float(heartbeat_timeout or settings.job_heartbeat_timeout)
        # Heartbeat well inside the timeout: three missed beats before anyone gives up on us.
        self.heartbeat_seconds = max(0.5, min(5.0, self.heartbeat_timeout / 4))
        self.reap_seconds = max(1.0, self.heartbeat_timeout / 3)
        self.drain_seconds = float(drain_seconds)
        self.kinds = kinds
        self.running: dict[int, RunningJob] = {}
        # Shared with the heartbeat thread: the jobs this worker holds {job_id: attempt}, and the
        # ones it found taken away from it (reaped while this worker was stalled).
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._lost: set[int] = set()
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._loop_tick = time.monotonic()
        # Past this, the loop is considered wedged and the heartbeat stops vouching for its jobs.
        self._wedged_after = max(60.0, 2 * self.heartbeat_timeout)
        self.stop_requested = threading.Event()
        self._hard_stop = False
        self._drain_deadline: float | None = None
        self._registered = False
        self._db_failures = 0
        self._db_retry_at = 0.0
        self._jobs_done = 0
        self._jobs_failed = 0
        self._mp = None
        self._psutil_proc = None
        self._listener: EnqueueListener | None = None
        self.scheduler = None
        if self.scheduler_allowed:
            self.scheduler = Scheduler(db, holder=self.name, lease_seconds=self.heartbeat_timeout)

    # ---- lifecycle --------------------------------------------------------------------
    def request_stop(self, *, hard: bool = False) -> None:
        if self.stop_requested.is_set() and not hard:
            hard = True  # a second Ctrl-C: do not wait for the jobs
        self.stop_requested.set()
        self._hard_stop = self._hard_stop or hard

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def _on_signal(signum, _frame):
            log.warning("worker %s: %s received, stopping", self.name, signal.Signals(signum).name)
            self.request_stop(hard=self.stop_requested.is_set())

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    def run(self) -> int:
        self.install_signal_handlers()
        self._mp = _mp_context()
        if self._mp.get_start_method() == "forkserver":
            # Start the fork server (and its preloading of the handler modules) now, not at the first job.
            from multiprocessing import forkserver  # only where a fork server exists (not on Windows)

            forkserver.ensure_running()
            # Wait for the fork server to finish preloading now: starting a job must not block the loop.
            warm = self._mp.Process(target=_warm_up, name="warm-up")
            warm.start()
            warm.join()
        self._say(
            f"starting (concurrency {self.concurrency}, scheduler "
            f"{'candidate' if self.scheduler_allowed else 'off'}, poll {self.poll_seconds:g} s)"
        )
        next_reap = next_lease = next_cancel = 0.0
        try:
            while True:
                now = self._loop_tick = time.monotonic()
                if self.stop_requested.is_set():
                    if self._drain_deadline is None:
                        self._drain_deadline = now + (0 if self._hard_stop else self.drain_seconds)
                        if self.running:
                            self._say(
                                f"stopping: waiting up to {self.drain_seconds:g} s for "
                                f"{len(self.running)} running job(s)"
                            )
                    if self._hard_stop or now >= self._drain_deadline:
                        self._give_back_running()
                    if not self.running:
                        break
                    if now >= self._drain_deadline + KILL_AFTER_S + 10:
                        # The database is gone: leave the rest to the reaper of another worker.
                        self._say("could not give the running jobs back; the reaper will recover them")
                        break
                self._collect_finished()
                if not self._db_ready(now):
                    self._wait(min(1.0, self.poll_seconds))
                    continue
                if not self._registered:
                    self._guard(self._register)
                    if not self._registered:
                        continue
                    self._start_heartbeat()
                    self._listener = EnqueueListener(self.db)
                self._handle_lost()
                if now >= next_cancel and self._guard(self._enforce_cancels)[0]:
                    next_cancel = now + CANCEL_POLL_S
                if now >= next_reap and self._guard(self._reap)[0]:
                    next_reap = now + self.reap_seconds
                if self.scheduler is not None and not self.stop_requested.is_set() and now >= next_lease:
                    was_leader = self.scheduler.is_leader
                    if self._guard(self.scheduler.tick)[0]:
                        next_lease = now + self.scheduler.renew_seconds
                    if self.scheduler.is_leader != was_leader:
                        self._say(
                            "is now the scheduler of periodic jobs"
                            if self.scheduler.is_leader
                            else "is no longer the scheduler (another worker holds the lease)"
                        )
                claimed = 0
                if not self.stop_requested.is_set():
                    claimed = self._guard(self._fill)[1] or 0
                if self.once and not claimed and not self.running and not self._guard(self._any_queued)[1]:
                    break
                if not claimed:
                    # With a free slot, an enqueued job wakes the worker at once (not at the next poll).
                    self._wait(
                        self.poll_seconds,
                        wake=len(self.running) < self.concurrency and not self.stop_requested.is_set(),
                    )
        finally:
            self._shutdown()
        return 0

    # ---- the loop's parts --------------------------------------------------------------
    def _wait(self, seconds: float, *, wake: bool = False) -> None:
        """Sleep until `seconds` pass, a job process ends, or a stop is requested; with `wake`, also
        until a job is enqueued (EnqueueListener)."""
        sentinels = [rj.proc.sentinel for rj in self.running.values() if rj.proc.exitcode is None]
        listener = self._listener if wake and self._listener is not None and self._listener.enabled else None
        listen_fd = None
        if listener is not None:
            if self._db_failures == 0 and listener.connect():
                return  # (re)connected: look at the queue once, jobs may have come meanwhile
            listen_fd = listener.fileno()
        waitables = sentinels + ([listen_fd] if listen_fd is not None else [])
        # Nothing to wait on for a wake-up (SQLite): look at the wake-up file every WAKE_CHECK_S.
        max_step = WAKE_CHECK_S if listener is not None and listen_fd is None else 0.25
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, max_step)
            if waitables:
                ready = mp_wait(waitables, timeout=step)
                if any(r in sentinels for r in ready):
                    return
            elif self.stop_requested.is_set():
                return
            else:
                self.stop_requested.wait(step)
            if listener is not None and (listener.check() or (listen_fd is not None and listener.fileno() is None)):
                return  # woken (or the LISTEN connection broke: wait again without it)
            if not sentinels and self.stop_requested.is_set():
                return

    def _db_ready(self, now: float) -> bool:
        return now >= self._db_retry_at

    def _guard(self, fn) -> tuple[bool, object]:
        """Run one database step -> (succeeded, its value). On a database error back off
        (1, 2, 4 ... 30 s) instead of crashing: the running jobs go on meanwhile."""
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - the worker must outlive any one failure
            self._db_failures += 1
            delay = min(MAX_BACKOFF_S, 2 ** (self._db_failures - 1))
            self._db_retry_at = time.monotonic() + delay
            level = logging.WARNING if self._db_failures <= 3 or self._db_failures % 10 == 0 else logging.DEBUG
            log.log(
                level,
                "worker %s: %s failed (%s); retrying in %.0f s",
                self.name,
                getattr(fn, "__name__", "step"),
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                delay,
            )
            if self._db_failures == 1:
                self._say(
                    f"database step failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                    "retrying with back-off"
                )
            return False, None
        if self._db_failures:
            self._say("database reachable again")
        self._db_failures = 0
        return True, out

    def _register(self) -> None:
        check_schema(self.db)
        self._psutil_proc = psutil.Process()
        self._psutil_proc.cpu_percent(None)
        now = utcnow()
        with self.db.unit_of_work() as s:
            row = s.exec(select(WorkerRow).where(WorkerRow.name == self.name)).first()
            if (
                row is not None
                and row.status in ("running", "stopping")
                and (row.hostname, row.pid) != (socket.gethostname(), os.getpid())
            ):
                hb = row.heartbeat_at if row.heartbeat_at.tzinfo else row.heartbeat_at.replace(tzinfo=now.tzinfo)
                if (now - hb).total_seconds() < self.heartbeat_timeout:
                    raise SystemExit(
                        f"error: a worker named {self.name!r} is already running on {row.hostname} "
                        f"(pid {row.pid}); give this one another --name"
                    )
            if row is None:
                row = WorkerRow(name=self.name)
            row.hostname = socket.gethostname()
            row.pid = os.getpid()
            row.status = "running"
            row.started_at = now
            row.heartbeat_at = now
            row.stopped_at = None
            row.is_scheduler = False
            row.concurrency = self.concurrency
            row.current_job_id = None
            row.jobs_done = 0
            row.jobs_failed = 0
            s.add(row)
            # Jobs still "running" under this name belong to an earlier process of the same name that died.
            orphans = s.exec(select(Job).where(Job.status == "running", Job.claimed_by == self.name)).all()
            for job in orphans:
                queue._fail_in(
                    s,
                    job_id=int(job.id),
                    conditions=(Job.id == job.id, Job.status == "running", Job.claimed_by == self.name),
                    error=f"worker {self.name} restarted while running it",
                    retry=True,
                )
        self._registered = True

    def _fill(self) -> int:
        claimed = 0
        while len(self.running) < self.concurrency and not self.stop_requested.is_set():
            job = queue.claim_next(self.db, worker=self.name, kinds=self.kinds)
            if job is None:
                break
            self._start_job(job)
            claimed += 1
        return claimed

    def _any_queued(self) -> bool:
        """Queued jobs, including retries waiting for their back-off (`--once` waits for those)."""
        with self.db.read() as s:
            q = select(Job.id).where(Job.status == "queued")
            if self.kinds:
                q = q.where(col(Job.kind).in_(self.kinds))
            return s.exec(q.limit(1)).first() is not None

    def _start_job(self, job) -> None:
        with self._lock:
            self._held[job.id] = job.attempts  # heartbeated from now on, even while the process starts
        proc = self._mp.Process(
            target=_child_entry,
            args=(self.db.url, job.id, job.kind, job.payload, self.name, job.attempts, os.getpid()),
            name=f"job-{job.id}",
            daemon=False,
        )
        try:
            proc.start()
        except Exception as exc:  # noqa: BLE001 - cannot fork: give the job back and back off
            with self._lock:
                self._held.pop(job.id, None)
            queue.fail_job(
                self.db,
                job_id=job.id,
                worker=self.name,
                attempt=job.attempts,
                error=f"the worker could not start a process for the job: {exc}",
            )
            raise
        self.running[job.id] = RunningJob(job_id=job.id, kind=job.kind, attempt=job.attempts, proc=proc)
        log.info("worker %s: job %s (%s) started, attempt %s", self.name, job.id, job.kind, job.attempts)

    def _collect_finished(self) -> None:
        for job_id, rj in list(self.running.items()):
            proc = rj.proc
            if proc.exitcode is None:
                continue
            code = proc.exitcode
            if not self._guard(lambda rj=rj, code=code: self._settle(rj, code))[0]:
                return  # database down: try again on the next round
            proc.join(timeout=0)
            try:
                proc.close()
            except (ValueError, AttributeError):
                pass
            del self.running[job_id]
            with self._lock:
                self._held.pop(job_id, None)
                self._lost.discard(job_id)

    def _settle(self, rj: RunningJob, code: int) -> None:
        """Record what the job's process could not: its death, a cancel we enforced, a drain."""
        took = time.monotonic() - rj.started
        if code in STATUS_BY_EXIT_CODE:
            status = STATUS_BY_EXIT_CODE[code]  # recorded by the job process itself
            if status == "lost":
                status = "taken over by another worker"
        elif rj.stop_reason == "cancel":
            queue.mark_cancelled(
                self.db,
                job_id=rj.job_id,
                worker=self.name,
                attempt=rj.attempt,
                message=f"cancelled: stopped by worker {self.name} (the job did not stop "
                f"by itself within {CANCEL_GRACE_S:g} s)",
            )
            status = "cancelled"
        elif rj.stop_reason == "drain":
            queue.requeue_job(
                self.db,
                job_id=rj.job_id,
                worker=self.name,
                attempt=rj.attempt,
                reason=f"given back to the queue: worker {self.name} shut down",
            )
            status = "queued"
        elif rj.stop_reason == "lost":
            job = queue.get_job(self.db, rj.job_id)
            mine = job.claimed_by == self.name and job.attempts == rj.attempt
            status = job.status if mine else "taken over by another worker"
        else:
            why = f"killed by {_signal_name(code)}" if code < 0 else f"exit code {code}"
            status = (
                queue.fail_job(
                    self.db,
                    job_id=rj.job_id,
                    worker=self.name,
                    attempt=rj.attempt,
                    error=f"the job process died ({why}) on worker {self.name}",
                )
                or "failed"
            )
        if status == "finished":
            self._jobs_done += 1
        elif status == "failed":
            self._jobs_failed += 1
        log.info("worker %s: job %s (%s) %s after %.2f s", self.name, rj.job_id, rj.kind, status, took)

    def _start_heartbeat(self) -> None:
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._hb_thread.start()

    def _heartbeat_loop(self) -> None:
        """A thread, so that jobs stay alive while the loop is busy (starting a process, a slow query)."""
        failures = 0
        while not self._hb_stop.is_set():
            try:
                self._heartbeat()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the database may be away; keep trying
                failures += 1
                if failures <= 3 or failures % 20 == 0:
                    log.warning(
                        "worker %s: heartbeat failed (%s)",
                        self.name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
            self._hb_stop.wait(self.heartbeat_seconds)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._loop_tick > self._wedged_after:
            log.error(
                "worker %s: its loop has been stuck for %.0f s; no longer vouching for its jobs",
                self.name,
                time.monotonic() - self._loop_tick,
            )
            return
        with self._lock:
            held = {jid: att for jid, att in self._held.items() if jid not in self._lost}
        states = queue.heartbeat_jobs(self.db, worker=self.name, jobs=held)
        lost = {jid for jid, st in states.items() if not st["ours"]}
        if lost:
            with self._lock:
                self._lost |= lost
        cpu, rss = self._usage()
        current = min(held) if held else None
        is_sched = bool(self.scheduler is not None and self.scheduler.is_leader)
        with self.db.unit_of_work() as s:
            s.execute(
                update(WorkerRow)
                .where(WorkerRow.name == self.name)
                .values(
                    heartbeat_at=utcnow(),
                    cpu_percent=cpu,
                    rss_mb=rss,
                    current_job_id=current,
                    is_scheduler=is_sched,
                    status="stopping" if self.stop_requested.is_set() else "running",
                    jobs_done=self._jobs_done,
                    jobs_failed=self._jobs_failed,
                )
            )

    def _handle_lost(self) -> None:
        """Jobs no longer ours (finished by their process, or reaped and handed to another worker):
        a copy still running here is stopped, so a job never runs twice at once."""
        with self._lock:
            lost = set(self._lost)
        for jid in lost:
            rj = self.running.get(jid)
            if rj is not None and rj.proc.exitcode is None and rj.stop_reason is None:
                rj.stop_reason = "lost"
                self._terminate(rj)

    def _usage(self) -> tuple[float, float]:
        """CPU % and resident memory (MB) of the worker and its job processes."""
        p = self._psutil_proc
        if p is None:
            return 0.0, 0.0
        try:
            cpu = p.cpu_percent(None)
            rss = p.memory_info().rss
            for child in p.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except Exception:  # noqa: BLE001, S110 - the child just ended
                    pass
            return round(float(cpu), 1), round(rss / 1e6, 1)
        except Exception:  # noqa: BLE001
            return 0.0, 0.0

    def _enforce_cancels(self) -> None:
        ids = [jid for jid, rj in self.running.items() if rj.stop_reason is None and rj.proc.exitcode is None]
        if not ids:
            return
        with self.db.read() as s:
            wanted = set(s.exec(select(Job.id).where(col(Job.id).in_(ids), Job.cancel_requested == True)).all())  # noqa: E712
        now = time.monotonic()
        for jid in wanted:
            rj = self.running[jid]
            if rj.cancel_seen is None:
                rj.cancel_seen = now
                log.info("worker %s: cancel requested for job %s", self.name, jid)
            elif now - rj.cancel_seen >= CANCEL_GRACE_S:
                rj.stop_reason = "cancel"
                self._terminate(rj)

    def _terminate(self, rj: RunningJob) -> None:
        if rj.proc.exitcode is None and rj.terminated_at is None:
            rj.terminated_at = time.monotonic()
            try:
                rj.proc.kill()  # job processes ignore SIGTERM (see runner.child_main)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass

    def _reap(self) -> None:
        reaped = queue.reap_stale_jobs(self.db, timeout_seconds=self.heartbeat_timeout)
        for job_id, status in reaped:
            self._say(f"job {job_id} had no heartbeat for {self.heartbeat_timeout:g} s: now {status}")
        cutoff = utcnow() - timedelta(seconds=self.heartbeat_timeout)
        with self.db.unit_of_work() as s:
            s.execute(
                update(WorkerRow)
                .where(
                    WorkerRow.status.in_(("running", "stopping")),
                    WorkerRow.heartbeat_at < cutoff,
                    WorkerRow.name != self.name,
                )
                .values(status="lost", is_scheduler=False, current_job_id=None)
            )
            # Forget worker processes that ended long ago (one row per process start would pile up).
            s.execute(
                delete(WorkerRow).where(
                    WorkerRow.status.in_(("stopped", "lost")), WorkerRow.heartbeat_at < utcnow() - WORKER_ROWS_KEPT_FOR
                )
            )

    def _give_back_running(self) -> None:
        for rj in self.running.values():
            if rj.stop_reason is None and rj.proc.exitcode is None:
                rj.stop_reason = "drain"
                self._terminate(rj)

    def _shutdown(self) -> None:
        # Processes still running here (e.g. an exception in the loop) are stopped and given back.
        self._give_back_running()
        deadline = time.monotonic() + KILL_AFTER_S + 1
        while self.running and time.monotonic() < deadline:
            self._collect_finished()
            if self.running:
                time.sleep(0.1)
        for rj in self.running.values():
            if rj.proc.exitcode is None:
                rj.proc.kill()
        if self.scheduler is not None:
            self.scheduler.shutdown(release=True)
        if self._listener is not None:
            self._listener.close()
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=10)
        if self._registered:
            try:
                with self.db.unit_of_work() as s:
                    s.execute(
                        update(WorkerRow)
                        .where(WorkerRow.name == self.name)
                        .values(
                            status="stopped",
                            stopped_at=utcnow(),
                            heartbeat_at=utcnow(),
                            is_scheduler=False,
                            current_job_id=None,
                            jobs_done=self._jobs_done,
                            jobs_failed=self._jobs_failed,
                        )
                    )
            except Exception as exc:  # noqa: BLE001
                log.warning("worker %s: could not record its stop: %s", self.name, exc)
        self._say("stopped")

    def _say(self, message: str) -> None:
        print(f"[worker {self.name}] {message}", flush=True)


def run_worker(
    *,
    name: str | None = None,
    once: bool = False,
    scheduler: bool | None = None,
    concurrency: int = 1,
    drain_seconds: float = 15.0,
    database_url: str | None = None,
) -> int:
    """Entry point of `python -m mlops_core worker`."""
    db = get_database(database_url)
    return JobWorker(
        db, name=name, once=once, scheduler=scheduler, concurrency=concurrency, drain_seconds=drain_seconds
    ).run()
