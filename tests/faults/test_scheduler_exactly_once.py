"""Two workers, both scheduler candidates, on one Postgres: a periodic job every 2 s is enqueued and run
exactly once per firing, also when the elected scheduler is SIGKILLed midway and the other takes over."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta

from mlops_core import jobs
from mlops_core.db import Database
from mlops_core.jobs.schedules import lease_holder
from tests.faults.workers import wait_for

INTERVAL = 2


def _firings(db: Database) -> list[tuple[datetime, int]]:
    """(fire time, job id) of every job the schedule enqueued, oldest first."""
    out = []
    for j in jobs.list_jobs(db, kind="noop", limit=1000):
        if j.payload.get("schedule") == "tick":
            out.append((datetime.fromisoformat(j.payload["fire_time"]), j.id))
    return sorted(out)


def test_a_periodic_job_runs_once_per_firing_across_two_schedulers_and_a_leader_kill(pg_url, workers_for, tmp_path):
    db = Database(pg_url)
    runs = tmp_path / "runs.log"
    jobs.upsert_schedule(db, name="tick", kind="noop", payload={"log_file": str(runs)}, interval_seconds=INTERVAL)
    w = workers_for(pg_url)
    procs = {"wA": w.start("wA", scheduler=True), "wB": w.start("wB", scheduler=True)}

    leader = wait_for(lambda: (lease_holder(db) or (None,))[0], 60, "a scheduler to be elected")
    wait_for(lambda: len(_firings(db)) >= 3, 30, "three firings under the first scheduler")
    before_kill = len(_firings(db))
    procs[leader].send_signal(signal.SIGKILL)
    procs[leader].wait(timeout=10)
    killed_at = time.monotonic()
    survivor = "wB" if leader == "wA" else "wA"

    wait_for(lambda: (lease_holder(db) or (None,))[0] == survivor, 30, f"{survivor} to take the scheduler over")
    took_over = time.monotonic() - killed_at
    wait_for(lambda: len(_firings(db)) >= before_kill + 3, 40, "three more firings under the new scheduler")
    procs[survivor].send_signal(signal.SIGTERM)
    assert procs[survivor].wait(timeout=30) == 0

    firings = _firings(db)
    times = [t for t, _ in firings]
    ids = [i for _, i in firings]
    assert len(set(times)) == len(times), "no fire time was enqueued twice"
    assert all((b - a) % timedelta(seconds=INTERVAL) == timedelta(0) for a, b in zip(times, times[1:])), (
        f"fire times stay on the {INTERVAL} s grid: {times}"
    )
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    # Without a scheduler for `took_over` seconds, the firings missed meanwhile are coalesced into one
    # catch-up run (APScheduler coalesce): at most one gap, and no longer than the takeover.
    long_gaps = [g for g in gaps if g > INTERVAL]
    assert len(long_gaps) <= 1 and all(g <= took_over + 2 * INTERVAL for g in long_gaps), (gaps, took_over)

    executed = [int(line.split()[0]) for line in runs.read_text().splitlines()]
    finished = {j.id for j in jobs.list_jobs(db, kind="noop", status="finished", limit=1000)}
    assert sorted(set(executed) & set(ids)) == sorted(set(ids) & finished), "every finished firing ran"
    assert len(executed) == len(set(executed)), "no firing ran twice"
    ran_by = {j.claimed_by for j in jobs.list_jobs(db, kind="noop", limit=1000) if j.id in finished}
    print(
        f"\n{len(firings)} firings ({before_kill} before killing {leader}); takeover in {took_over:.1f} s; "
        f"gaps {gaps}; run by {sorted(ran_by)}"
    )
    assert len(finished & set(ids)) >= len(ids) - 1, "all but possibly the very last firing had run at the stop"
    db.dispose()
