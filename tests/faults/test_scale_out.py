"""Scale-out ("Running on several machines" in the README): two scoring service processes and two workers
against one Postgres share the work — both services answer and log into the one prediction table, and
20 jobs are spread over both workers, each run once."""

from __future__ import annotations

import signal

import httpx

from mlops_core import jobs
from mlops_core.db import Database
from tests.faults.workers import enqueue, wait_for
from tests.faults.world import ok_request_ids, predict, stopped_cleanly


def test_two_scoring_services_and_two_workers_on_one_postgres_share_the_work(
    seeded_pg, services_for, workers_for, tmp_path
):
    url, dep = seeded_pg
    db = Database(url)
    runs = tmp_path / "runs.log"
    ids = [enqueue(db, "sleep", {"seconds": 0.3, "log_file": str(runs)}) for _ in range(20)]
    svc = services_for(url)
    starting = {name: svc.start_serve(name) for name in ("scoring-1", "scoring-2")}
    w = workers_for(url)
    a = w.start("wA", scheduler=True)
    b = w.start("wB", scheduler=True)
    bases = [svc.wait_serving(name, base, dep) for name, base in starting.items()]

    answered: dict[str, list[str]] = {base: [] for base in bases}
    with httpx.Client(timeout=30) as c:
        for i in range(100):  # a round-robin load balancer
            base = bases[i % 2]
            code, rid = predict(c, base, dep)
            assert code == 200, (base, code)
            answered[base].append(rid)

    wait_for(
        lambda: all(j.status == "finished" for j in jobs.list_jobs(db, kind="sleep")), 120, "all 20 jobs to finish"
    )
    executions = [int(line.split()[0]) for line in runs.read_text().splitlines()]
    assert sorted(executions) == sorted(ids), "each job ran exactly once"
    by_worker = {}
    for j in jobs.list_jobs(db, kind="sleep"):
        by_worker[j.claimed_by] = by_worker.get(j.claimed_by, 0) + 1
    assert set(by_worker) == {"wA", "wB"} and all(n > 0 for n in by_worker.values()), by_worker
    leaders = [x.name for x in jobs.list_workers(db) if x.is_scheduler]
    assert len(leaders) <= 1, f"one elected scheduler at most: {leaders}"

    for p in (a, b):
        p.send_signal(signal.SIGTERM)
    assert a.wait(timeout=30) == 0 and b.wait(timeout=30) == 0
    assert stopped_cleanly(svc, "scoring-1") and stopped_cleanly(svc, "scoring-2")
    logged = set(ok_request_ids(db, dep.deployment_id))
    for base, rids in answered.items():
        assert len(rids) == 50 and set(rids) <= logged, f"{base}'s predictions are in the shared table"
    assert len(logged) == 100
    print(f"\njobs per worker: {by_worker}; predictions per service: {[len(v) for v in answered.values()]}")
    db.dispose()
