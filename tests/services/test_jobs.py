"""The job queue on SQLite and Postgres: enqueue, claim, finish, fail and retry, cancel,
dedupe, the reaper, schedules and the scheduler election."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from mlops_core import jobs
from mlops_core.config import PROJECT_ROOT
from mlops_core.db import utcnow
from mlops_core.errors import NotFound, ValidationError
from mlops_core.jobs import queue
from mlops_core.jobs.runner import JobContext, execute
from mlops_core.jobs.schedules import Scheduler, lease_holder
from mlops_core.models.jobs import Job, Worker


def _enqueue(db, kind="noop", payload=None, **kw) -> int:
    with db.unit_of_work() as s:
        return jobs.enqueue(s, kind=kind, payload=payload or {}, **kw)


def _make_available(db, job_id):
    with db.unit_of_work() as s:
        s.execute(update(Job).where(Job.id == job_id).values(available_at=utcnow() - timedelta(seconds=1)))


def test_an_enqueued_job_is_claimed_once_and_its_result_recorded(db):
    job_id = _enqueue(db, payload={"echo": 7})
    assert jobs.get_job(db, job_id).status == "queued"

    claimed = queue.claim_next(db, worker="w1")
    assert (claimed.id, claimed.status, claimed.claimed_by, claimed.attempts) == (job_id, "running", "w1", 1)
    assert queue.claim_next(db, worker="w2") is None

    assert execute(db, job_id=job_id, kind="noop", payload=claimed.payload, worker="w1", attempt=1) == "finished"
    done = jobs.get_job(db, job_id)
    assert done.status == "finished" and done.result == {"ok": True, "echo": 7}
    assert done.progress == 1.0 and done.finished_at is not None


def test_enqueue_is_part_of_the_callers_transaction(db):
    with pytest.raises(RuntimeError):
        with db.unit_of_work() as s:
            jobs.enqueue(s, kind="noop", payload={})
            raise RuntimeError("the caller's write failed")
    assert jobs.list_jobs(db) == []


def test_an_unknown_kind_is_refused_with_the_known_kinds(db):
    with pytest.raises(ValidationError, match="unknown job kind 'nope'.*noop"):
        _enqueue(db, kind="nope")


def test_a_dedupe_key_enqueues_one_job_and_returns_the_same_id(db):
    with db.unit_of_work() as s:
        a = jobs.enqueue(s, kind="noop", payload={}, dedupe_key="train:run:1")
        b = jobs.enqueue(s, kind="noop", payload={}, dedupe_key="train:run:1")
        other = jobs.enqueue(s, kind="noop", payload={})
    assert a == b != other
    assert len(jobs.list_jobs(db)) == 2


def test_a_failing_job_records_the_traceback(db):
    job_id = _enqueue(db, kind="fail", payload={"message": "the data is gone"})
    c = queue.claim_next(db, worker="w1")
    assert execute(db, job_id=job_id, kind="fail", payload=c.payload, worker="w1", attempt=1) == "failed"
    job = jobs.get_job(db, job_id)
    assert job.status == "failed"
    assert "RuntimeError: the data is gone" in job.error and "Traceback" in job.error


def test_a_job_with_attempts_left_is_retried_after_a_back_off_then_fails(db):
    job_id = _enqueue(db, kind="fail", max_attempts=2)
    c = queue.claim_next(db, worker="w1")
    assert execute(db, job_id=job_id, kind="fail", payload={}, worker="w1", attempt=c.attempts) == "queued"
    job = jobs.get_job(db, job_id)
    assert job.status == "queued" and job.attempts == 1 and "retrying" in job.progress_message
    assert queue.claim_next(db, worker="w1") is None, "the retry waits for its back-off"

    _make_available(db, job_id)
    again = queue.claim_next(db, worker="w2")
    assert (again.id, again.attempts) == (job_id, 2)
    assert execute(db, job_id=job_id, kind="fail", payload={}, worker="w2", attempt=2) == "failed"
    assert jobs.get_job(db, job_id).status == "failed"


def test_cancelling_a_queued_job_cancels_it_at_once(db):
    job_id = _enqueue(db)
    assert jobs.request_cancel(db, job_id).status == "cancelled"
    assert queue.claim_next(db, worker="w1") is None


def test_cancelling_a_running_job_stops_it_at_its_next_check(db):
    job_id = _enqueue(db, kind="sleep", payload={"seconds": 30})
    queue.claim_next(db, worker="w1")
    assert jobs.request_cancel(db, job_id).cancel_requested is True
    assert jobs.get_job(db, job_id).status == "running"
    started = time.monotonic()
    assert execute(db, job_id=job_id, kind="sleep", payload={"seconds": 30}, worker="w1", attempt=1) == "cancelled"
    assert time.monotonic() - started < 5
    assert jobs.get_job(db, job_id).status == "cancelled"


def test_a_finished_job_is_not_changed_by_a_cancel(db):
    job_id = _enqueue(db)
    queue.claim_next(db, worker="w1")
    execute(db, job_id=job_id, kind="noop", payload={}, worker="w1", attempt=1)
    assert jobs.request_cancel(db, job_id).status == "finished"


def test_progress_is_written_to_the_job_for_pages_to_show(db):
    job_id = _enqueue(db, kind="sleep")
    queue.claim_next(db, worker="w1")
    ctx = JobContext(job_id=job_id, payload={}, db=db, attempt=1, worker="w1")
    ctx.progress(0.4, "fold 2 of 5")
    job = jobs.get_job(db, job_id)
    assert (job.progress, job.progress_message) == (0.4, "fold 2 of 5")


def test_get_job_of_a_missing_job_says_so(db):
    with pytest.raises(NotFound, match="job 999 does not exist"):
        jobs.get_job(db, 999)


def test_many_workers_claiming_at_once_never_take_the_same_job(db):
    ids = set()
    with db.unit_of_work() as s:
        for i in range(30):
            ids.add(jobs.enqueue(s, kind="noop", payload={"i": i}))
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    def claimer(name):
        while True:
            job = queue.claim_next(db, worker=name)
            if job is None:
                return
            with lock:
                taken.append((name, job.id))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    claimed_ids = [jid for _, jid in taken]
    assert sorted(claimed_ids) == sorted(ids), "every job claimed exactly once"
    with db.read() as s:
        rows = s.exec(select(Job)).all()
        assert all(r.status == "running" and r.attempts == 1 for r in rows)
        assert {r.id: r.claimed_by for r in rows} == {jid: name for name, jid in taken}


def test_the_reaper_fails_a_job_whose_worker_stopped_responding(db):
    job_id = _enqueue(db, kind="sleep")
    queue.claim_next(db, worker="w-dead")
    assert queue.reap_stale_jobs(db, timeout_seconds=30) == [], "a fresh heartbeat is left alone"

    later = utcnow() + timedelta(seconds=45)
    assert queue.reap_stale_jobs(db, timeout_seconds=30, now=later) == [(job_id, "failed")]
    job = jobs.get_job(db, job_id)
    assert job.status == "failed"
    assert job.error.startswith("worker w-dead stopped responding (no heartbeat for 45 s)")
    assert jobs.list_jobs(db, status="running") == []


def test_the_reaper_requeues_a_job_with_attempts_left_and_the_stale_worker_cannot_overwrite_it(db):
    job_id = _enqueue(db, kind="sleep", max_attempts=2)
    queue.claim_next(db, worker="w-slow")
    later = utcnow() + timedelta(seconds=60)
    assert queue.reap_stale_jobs(db, timeout_seconds=30, now=later) == [(job_id, "queued")]
    _make_available(db, job_id)
    again = queue.claim_next(db, worker="w-new")
    assert (again.claimed_by, again.attempts) == ("w-new", 2)

    # The slow worker wakes up and tries to record its (stale) outcome: ignored.
    assert queue.finish_job(db, job_id=job_id, worker="w-slow", attempt=1, result={"stale": True}) is False
    states = queue.heartbeat_jobs(db, worker="w-slow", jobs={job_id: 1})
    assert states[job_id]["ours"] is False
    assert queue.finish_job(db, job_id=job_id, worker="w-new", attempt=2, result={"ok": 1}) is True
    assert jobs.get_job(db, job_id).result == {"ok": 1}


def test_a_heartbeat_keeps_a_long_job_alive_and_reports_a_cancel_request(db):
    job_id = _enqueue(db, kind="sleep")
    queue.claim_next(db, worker="w1")
    with db.unit_of_work() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=100)))
    jobs.request_cancel(db, job_id)
    states = queue.heartbeat_jobs(db, worker="w1", jobs={job_id: 1})
    assert states[job_id] == {"ours": True, "cancel_requested": True}
    assert queue.reap_stale_jobs(db, timeout_seconds=30) == []


def test_list_jobs_filters_by_status_and_kind_newest_first(db):
    a = _enqueue(db)
    b = _enqueue(db, kind="sleep")
    jobs.request_cancel(db, a)
    assert [j.id for j in jobs.list_jobs(db)] == [b, a]
    assert [j.id for j in jobs.list_jobs(db, status="cancelled")] == [a]
    assert [j.id for j in jobs.list_jobs(db, kind="sleep")] == [b]
    assert queue.count_jobs_by_status(db) == {"cancelled": 1, "queued": 1}
    with pytest.raises(ValidationError, match="unknown job status"):
        jobs.list_jobs(db, status="stuck")


# --- schedules ----------------------------------------------------------------------


def test_a_schedule_needs_exactly_one_of_interval_or_cron_and_a_valid_cron(db):
    with pytest.raises(ValidationError, match="exactly one"):
        jobs.upsert_schedule(db, name="s", kind="noop", payload={})
    with pytest.raises(ValidationError, match="exactly one"):
        jobs.upsert_schedule(db, name="s", kind="noop", payload={}, interval_seconds=60, cron="* * * * *")
    with pytest.raises(ValidationError, match="5 fields"):
        jobs.upsert_schedule(db, name="s", kind="noop", payload={}, cron="every monday")
    with pytest.raises(ValidationError, match="at least 1"):
        jobs.upsert_schedule(db, name="s", kind="noop", payload={}, interval_seconds=0)


def test_upserting_a_schedule_replaces_it_and_delete_removes_it(db):
    first = jobs.upsert_schedule(db, name="nightly", kind="noop", payload={"a": 1}, cron="0 2 * * *")
    second = jobs.upsert_schedule(db, name="nightly", kind="sleep", payload={"seconds": 1}, interval_seconds=600)
    assert first.id == second.id
    assert (second.kind, second.interval_seconds, second.cron) == ("sleep", 600, None)
    assert [s.name for s in jobs.list_schedules(db)] == ["nightly"]
    assert jobs.delete_schedule(db, "nightly") is True
    assert jobs.delete_schedule(db, "nightly") is False
    assert jobs.list_schedules(db) == []


def test_a_firing_is_enqueued_once_even_when_two_schedulers_fire_it_at_the_same_instant(db):
    sched = jobs.upsert_schedule(
        db, name="monitor churn", kind="noop", payload={"deployment": "churn"}, interval_seconds=60
    )
    a = Scheduler(db, holder="w1", elect=False)
    b = Scheduler(db, holder="w2", elect=False)
    fire_time = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    barrier = threading.Barrier(2)
    results = []

    def fire(s):
        barrier.wait()
        results.append(s.fire(sched.id, fire_time))

    threads = [threading.Thread(target=fire, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1] is not None
    [job] = jobs.list_jobs(db)
    assert job.dedupe_key == f"schedule:{sched.id}:2026-01-01T12:00:00+00:00"
    assert job.payload["deployment"] == "churn" and job.payload["schedule"] == "monitor churn"
    assert jobs.list_schedules(db)[0].last_job_id == job.id


def test_two_running_schedulers_enqueue_each_interval_firing_once(db):
    sched = jobs.upsert_schedule(db, name="every second", kind="noop", payload={}, interval_seconds=1)
    a = Scheduler(db, holder="w1", elect=False)
    b = Scheduler(db, holder="w2", elect=False)
    try:
        a.tick()
        b.tick()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(jobs.list_jobs(db)) < 3:
            time.sleep(0.2)
    finally:
        a.shutdown()
        b.shutdown()
    made = jobs.list_jobs(db)
    keys = [j.dedupe_key for j in made]
    assert len(made) >= 3 and len(keys) == len(set(keys))
    fired_a = {t for _, t, _ in a.fired}
    fired_b = {t for _, t, _ in b.fired}
    assert fired_a & fired_b, "both schedulers fired the same instants"
    assert all(k.startswith(f"schedule:{sched.id}:") for k in keys)


_NEXT_FIRE = """
import sys
from datetime import UTC, datetime
from sqlmodel import select
from mlops_core.db import Database
from mlops_core.jobs.schedules import trigger_for
from mlops_core.models.jobs import Schedule
db = Database(sys.argv[1])
with db.read() as s:
    row = s.exec(select(Schedule)).one()
    print(trigger_for(row).get_next_fire_time(None, datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)).isoformat())
"""


def test_interval_fire_times_are_the_same_in_every_process(db):
    """Two separate processes (as two workers would be) compute the same next firing of a schedule, so a
    firing's dedupe key is the same wherever it is computed."""
    jobs.upsert_schedule(db, name="hourly", kind="noop", payload={}, interval_seconds=3600)
    url = db.engine.url.render_as_string(hide_password=False)
    answers = {
        subprocess.run(
            [sys.executable, "-c", _NEXT_FIRE, url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=PROJECT_ROOT,
        ).stdout.strip()
        for _ in range(2)
    }
    assert answers == {"2026-03-04T06:00:00+00:00"}


def test_only_one_scheduler_is_elected_and_another_takes_over_when_it_stops(db):
    a = Scheduler(db, holder="w1", lease_seconds=30)
    b = Scheduler(db, holder="w2", lease_seconds=30)
    try:
        assert a.tick() is True
        assert b.tick() is False
        assert a.tick() is True, "the leader renews its lease"
        assert lease_holder(db)[0] == "w1"
        a.shutdown(release=True)
        assert b.tick() is True
        assert lease_holder(db)[0] == "w2"
    finally:
        a.shutdown()
        b.shutdown()


def test_an_expired_lease_is_taken_over(db):
    a = Scheduler(db, holder="w1", lease_seconds=0.5)
    b = Scheduler(db, holder="w2", lease_seconds=0.5)
    try:
        assert a.tick() is True
        assert b.tick() is False
        # w1 died: no renewal. b takes over once the 0.5 s lease has expired (polled, with a deadline).
        deadline = time.monotonic() + 10
        while not b.tick():
            assert time.monotonic() < deadline, "w2 never took over the expired lease"
            time.sleep(0.05)
        assert a.tick() is False, "the old leader stands down"
        assert a.is_leader is False
    finally:
        a.shutdown()
        b.shutdown()


def test_list_workers_reports_a_silent_worker_as_lost(db):
    with db.unit_of_work() as s:
        s.add(Worker(name="alive", hostname="h", pid=1, heartbeat_at=utcnow()))
        s.add(Worker(name="silent", hostname="h", pid=2, heartbeat_at=utcnow() - timedelta(minutes=10)))
    status = {w.name: w.status for w in jobs.list_workers(db)}
    assert status == {"alive": "running", "silent": "lost"}


def test_a_worker_run_once_executes_the_queue_in_job_processes_and_records_a_crash(sqlite_db):
    """In-process worker (`--once`): results recorded; a job process that dies is recorded as failed."""
    from mlops_core.jobs.worker import JobWorker

    db = sqlite_db
    ok = _enqueue(db, payload={"echo": 1})
    crash = _enqueue(db, kind="sleep", payload={"seconds": 5, "crash_at": 0})
    fails = _enqueue(db, kind="fail", payload={"message": "bad input"})
    assert JobWorker(db, name="inline", once=True, scheduler=False, poll_seconds=0.05).run() == 0
    assert jobs.get_job(db, ok).result == {"ok": True, "echo": 1}
    crashed = jobs.get_job(db, crash)
    assert crashed.status == "failed" and "the job process died (exit code 3) on worker inline" in crashed.error
    assert "bad input" in jobs.get_job(db, fails).error
    [w] = jobs.list_workers(db)
    assert (w.name, w.status, w.jobs_done, w.jobs_failed) == ("inline", "stopped", 1, 2)
