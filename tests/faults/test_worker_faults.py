"""Real worker processes (`python -m mlops_core worker`): shared queue, SIGKILL mid-job,
cancel, graceful SIGTERM, and a database that drops its connections."""

from __future__ import annotations

import signal
import time

import psutil
from sqlalchemy import create_engine, text

from mlops_core import jobs
from mlops_core.db import Database
from tests.conftest import _truncate_all
from tests.faults.workers import enqueue, status, wait_for


def test_two_workers_share_twenty_jobs_and_run_each_exactly_once(db_url, workers_for, tmp_path):
    db = Database(db_url)
    runs = tmp_path / "runs.log"
    ids = [enqueue(db, "sleep", {"seconds": 0.1, "log_file": str(runs)}) for _ in range(20)]
    w = workers_for(db_url)
    a = w.start("wA", "--concurrency", "2")
    b = w.start("wB", "--concurrency", "2")
    wait_for(lambda: all(j.status == "finished" for j in jobs.list_jobs(db)), 90, "all 20 jobs to finish")

    executions = [int(line.split()[0]) for line in runs.read_text().splitlines()]
    assert sorted(executions) == sorted(ids), "each job ran exactly once"
    done = jobs.list_jobs(db)
    assert all(j.attempts == 1 for j in done)
    assert {j.claimed_by for j in done} == {"wA", "wB"}, "both workers took jobs"
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
    assert a.wait(timeout=30) == 0 and b.wait(timeout=30) == 0
    assert {x.name: x.status for x in jobs.list_workers(db)} == {"wA": "stopped", "wB": "stopped"}
    db.dispose()


def test_a_worker_killed_mid_job_leaves_nothing_running(sqlite_url, workers_for, tmp_path):
    """SIGKILL the worker: its job process dies with it; another worker fails the job with the
    reason, or re-runs it when it has attempts left."""
    db = Database(sqlite_url)
    runs = tmp_path / "runs.log"
    once = enqueue(db, "sleep", {"seconds": 60, "log_file": str(runs)}, max_attempts=1)
    retried = enqueue(db, "sleep", {"seconds": 2, "log_file": str(runs)}, max_attempts=2)
    w = workers_for(sqlite_url)
    a = w.start("wA", "--concurrency", "2")
    wait_for(lambda: status(db, once) == "running" and status(db, retried) == "running", 60, "both jobs to start")
    job_pids = wait_for(
        lambda: (
            [int(x.split()[2]) for x in runs.read_text().splitlines()]
            if runs.exists() and len(runs.read_text().splitlines()) == 2
            else None
        ),
        10,
        "both job processes to start",
    )

    w.start("wB")  # starts while wA is busy (nothing queued for it), so it is up when wA dies
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    wait_for(
        lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in job_pids),
        10,
        "the job processes to die with their worker",
    )

    wait_for(
        lambda: status(db, once) == "failed" and status(db, retried) == "finished",
        60,
        "the dead worker's jobs to be failed / re-run",
    )
    failed = jobs.get_job(db, once)
    assert failed.error.startswith("worker wA stopped responding (no heartbeat for")
    rerun = jobs.get_job(db, retried)
    assert (rerun.attempts, rerun.claimed_by) == (2, "wB")
    assert jobs.list_jobs(db, status="running") == []
    assert {x.name: x.status for x in jobs.list_workers(db)}["wA"] == "lost"
    db.dispose()


def test_cancelling_running_jobs_stops_them_within_seconds_even_if_they_ignore_it(sqlite_url, workers_for):
    db = Database(sqlite_url)
    polite = enqueue(db, "sleep", {"seconds": 60})
    stubborn = enqueue(db, "sleep", {"seconds": 60, "ignore_cancel": True})
    w = workers_for(sqlite_url)
    worker = w.start("wA", "--concurrency", "2")
    wait_for(lambda: status(db, polite) == "running" and status(db, stubborn) == "running", 60, "both jobs to start")

    asked = time.monotonic()
    jobs.request_cancel(db, polite)
    jobs.request_cancel(db, stubborn)
    wait_for(lambda: status(db, polite) == "cancelled", 5, "the polite job to stop")
    wait_for(lambda: status(db, stubborn) == "cancelled", 8, "the stubborn job to be stopped by the worker")
    assert time.monotonic() - asked < 8
    assert "stopped by worker wA" in jobs.get_job(db, stubborn).progress_message

    after = enqueue(db, "noop", {})
    wait_for(lambda: status(db, after) == "finished", 20, "the worker to go on with the next job")
    assert worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    db.dispose()


def test_sigterm_lets_the_running_job_finish_or_gives_it_back_then_exits_zero(sqlite_url, workers_for):
    db = Database(sqlite_url)
    w = workers_for(sqlite_url)
    long = enqueue(db, "sleep", {"seconds": 120})
    hasty = w.start("wB", "--drain-seconds", "0.5")
    wait_for(lambda: status(db, long) == "running", 60, "the long job to start")
    short = enqueue(db, "sleep", {"seconds": 3})
    patient = w.start("wA")  # wB is busy: wA takes the short job
    wait_for(lambda: status(db, short) == "running", 60, "the short job to start")
    assert (jobs.get_job(db, long).claimed_by, jobs.get_job(db, short).claimed_by) == ("wB", "wA")

    stopped_at = time.monotonic()
    patient.send_signal(signal.SIGTERM)
    hasty.send_signal(signal.SIGTERM)
    assert patient.wait(timeout=30) == 0 and hasty.wait(timeout=30) == 0
    assert time.monotonic() - stopped_at < 15
    assert status(db, short) == "finished", "wA waited for its job"
    job = jobs.get_job(db, long)
    assert (job.status, job.attempts) == ("queued", 0), "wB gave its job back without using up an attempt"
    assert "shut down" in job.progress_message
    assert {x.name: x.status for x in jobs.list_workers(db)} == {"wA": "stopped", "wB": "stopped"}
    db.dispose()


def test_a_worker_survives_the_database_dropping_its_connections(pg_migrated, workers_for):
    db = Database(pg_migrated)
    _truncate_all(db)
    w = workers_for(pg_migrated)
    worker = w.start("wA")
    first = enqueue(db, "noop", {})
    wait_for(lambda: status(db, first) == "finished", 60, "the first job")

    dbname = pg_migrated.rsplit("/", 1)[1]
    admin = create_engine(pg_migrated, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for _ in range(10):  # keep cutting the worker's connections for a moment
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": dbname},
            )
            time.sleep(0.2)
    admin.dispose()
    db.dispose()

    second = enqueue(db, "noop", {})
    wait_for(lambda: status(db, second) == "finished", 60, "a job after the database came back")
    assert worker.poll() is None, "the worker kept running"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    db.dispose()
