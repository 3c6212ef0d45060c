"""Issue 16, point 5 (scaled as needed): queue wait, worker utilisation and replica figures from jobs, workers and
replica heartbeats inserted at known times, on SQLite and Postgres; the advice and the Prometheus text they give;
the Dask probe answering 'unreachable' within its timeout."""

import time
from datetime import timedelta

import pytest
from sqlmodel import select

from mlops_core.db import utcnow
from mlops_core.models.infra import ServiceReplica
from mlops_core.models.jobs import Job, Worker
from mlops_core.services import infrastructure, processes

NOW = utcnow().replace(microsecond=0)


def _job(i, *, status, available_min_ago, wait_s=None, run_s=None, worker=None):
    available = NOW - timedelta(minutes=available_min_ago)
    started = available + timedelta(seconds=wait_s) if wait_s is not None else None
    finished = started + timedelta(seconds=run_s) if (started is not None and run_s is not None) else None
    return Job(
        kind="noop",
        status=status,
        dedupe_key=f"t{i}",
        claimed_by=worker,
        created_at=available,
        available_at=available,
        started_at=started,
        heartbeat_at=finished or started,
        finished_at=finished,
    )


@pytest.fixture
def busy_hub(db):
    # "now" of each test, not of the module's import: in a full run the tests start minutes after collection,
    # and a worker whose heartbeat is that old counts as lost (its running job then ends at its last heartbeat).
    global NOW
    NOW = utcnow().replace(microsecond=0)
    with db.unit_of_work() as s:
        s.add(
            Worker(
                name="w-busy",
                status="running",
                started_at=NOW - timedelta(hours=5),
                heartbeat_at=NOW - timedelta(seconds=2),
            )
        )
        s.add(
            Worker(
                name="w-new",
                status="running",
                concurrency=2,
                started_at=NOW - timedelta(minutes=30),
                heartbeat_at=NOW - timedelta(seconds=2),
            )
        )
        s.add(
            Worker(
                name="w-old", status="stopped", started_at=NOW - timedelta(days=2), heartbeat_at=NOW - timedelta(days=1)
            )
        )
        # Last hour, on w-busy: waits 10, 20, 30, 40, 100 s; runs 6 x 5 min + one running for the last 10 min.
        for i, wait in enumerate((10, 20, 30, 40, 100)):
            s.add(_job(i, status="finished", available_min_ago=55 - 6 * i, wait_s=wait, run_s=300, worker="w-busy"))
        s.add(_job(5, status="finished", available_min_ago=65, wait_s=0, run_s=600, worker="w-busy"))  # 5 min in window
        s.add(_job(6, status="running", available_min_ago=10, wait_s=0, worker="w-busy"))
        # Earlier today: two long waits that count in 24 h, not in the last hour.
        s.add(_job(7, status="finished", available_min_ago=300, wait_s=900, run_s=60, worker="w-old"))
        s.add(_job(8, status="failed", available_min_ago=600, wait_s=1200, run_s=60, worker="w-old"))
        # Two days ago: outside both windows.
        s.add(_job(9, status="finished", available_min_ago=2 * 24 * 60, wait_s=5000, run_s=60, worker="w-old"))
        # On w-new (concurrency 2): 15 min of work in its 30 min life.
        s.add(_job(10, status="finished", available_min_ago=25, wait_s=0, run_s=900, worker="w-new"))
        # Waiting now: one due 3 min ago, one due 30 s ago, one in a retry back-off (not due, not waiting).
        s.add(_job(11, status="queued", available_min_ago=3))
        s.add(_job(12, status="queued", available_min_ago=0.5))
        s.add(_job(13, status="queued", available_min_ago=-5))
    return db


def test_queue_wait_percentiles_waiting_jobs_and_oldest_wait(busy_hub):
    q = infrastructure.queue_figures(busy_hub, now=NOW)
    assert (q.waiting, q.running) == (2, 1)
    assert q.oldest_wait_s == pytest.approx(180)
    # Last hour: 10, 20, 30, 40, 100 and the two jobs that waited 0 s (job 5 started 65 min ago: not in it).
    assert q.n_1h == 7
    assert q.p50_1h == pytest.approx(20)
    assert q.p95_1h == pytest.approx(40 + 0.7 * 60)  # 0,0,10,20,30,40,100: 70% of the way from 40 to 100
    assert q.sum_1h == pytest.approx(200)
    # 24 h adds jobs 5, 7 and 8 (0, 900 and 1200 s), not the one from two days ago.
    assert q.n_24h == 10 and q.sum_24h == pytest.approx(2300)
    assert q.p95_24h == pytest.approx(900 + 0.55 * 300)


def test_worker_utilisation_from_job_start_finish_and_heartbeats(busy_hub):
    loads = {w.name: w for w in infrastructure.worker_utilisation(busy_hub, now=NOW)}
    assert set(loads) == {"w-busy", "w-new"}  # the worker stopped a day ago is not in the last hour
    busy = loads["w-busy"]
    # 5 jobs x 300 s + 5 min of job 5 + 10 min of the running job 6 = 2400 s of 3600.
    assert busy.busy_s == pytest.approx(2400) and busy.busy_ratio == pytest.approx(2400 / 3600)
    assert busy.jobs == 7
    new = loads["w-new"]
    assert new.alive_s == pytest.approx(1800) and new.busy_ratio == pytest.approx(900 / (2 * 1800))


def test_replica_heartbeats_are_listed_and_a_silent_replica_is_lost(db):
    processes.record_replica_heartbeat(
        db,
        name="host-a:11",
        started_at=utcnow() - timedelta(hours=1),
        requests_per_s=42.5,
        in_flight=3,
        p95_ms=480.0,
        cpu_percent=85.0,
        rss_mb=300.0,
        requests_total=1000,
    )
    processes.record_replica_heartbeat(
        db,
        name="host-b:12",
        started_at=utcnow(),
        requests_per_s=0.0,
        in_flight=0,
        p95_ms=None,
        cpu_percent=1.0,
        rss_mb=200.0,
        requests_total=0,
    )
    with db.unit_of_work() as session:  # host-b fell silent a minute ago
        row = session.exec(select(ServiceReplica).where(ServiceReplica.name == "host-b:12")).one()
        row.heartbeat_at = utcnow() - timedelta(seconds=processes.REPLICA_LOST_AFTER_S + 30)
        session.add(row)
    processes.record_replica_heartbeat(  # host-a beats again
        db,
        name="host-a:11",
        started_at=utcnow(),
        requests_per_s=40.0,
        in_flight=2,
        p95_ms=470.0,
        cpu_percent=86.0,
        rss_mb=301.0,
        requests_total=1200,
    )
    rows = {r.name: r for r in processes.list_replicas(db, include_stopped=True)}
    assert rows["host-a:11"].status == "running" and rows["host-a:11"].requests_total == 1200
    assert rows["host-a:11"].hostname == "host-a" and rows["host-a:11"].pid == 11
    assert rows["host-b:12"].status == "lost"
    st = infrastructure.scaling_status(db, with_dask=False)
    assert [a.text for a in st.advice if a.target == "replicas"] == [
        "scoring p95 latency 470 ms at 86% CPU on 1 replica: add a replica"
    ]
    text = infrastructure.render_prometheus(st)
    assert 'mlops_replica_in_flight{replica="host-a:11"} 2' in text
    assert 'mlops_replica_latency_p95_seconds{replica="host-a:11"} 0.47' in text
    assert 'mlops_scaling_advice{target="replicas"} 1' in text


def test_the_busy_hub_advises_a_worker_and_exports_the_same_figures(busy_hub):
    st = infrastructure.scaling_status(busy_hub, now=NOW, with_dask=False)
    assert st.advice[0].target == "workers" and st.advice[0].text.startswith(
        "jobs waited over 60 s at p95 for the last hour (82 s over 7 jobs, 2 workers)"
    )
    text = infrastructure.render_prometheus(st)
    assert "mlops_jobs_waiting 2\n" in text and "mlops_jobs_running 1\n" in text
    assert 'mlops_job_queue_wait_seconds{window="1h",quantile="0.95"} 82\n' in text
    assert 'mlops_job_queue_wait_seconds_count{window="24h"} 10\n' in text
    assert 'mlops_worker_busy_ratio{worker="w-busy"} 0.6667' in text
    assert 'mlops_scaling_advice{target="workers"} 1' in text
    assert "mlops_dask_up" not in text  # no Dask scheduler configured


def test_an_unreachable_dask_scheduler_is_reported_within_the_timeout_and_cached():
    from socket import socket

    with socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    d = infrastructure.dask_status(address, timeout=1.0, max_age=60)
    took = time.monotonic() - started
    assert d is not None and not d.reachable and d.address == address and took < 8, took
    started = time.monotonic()
    assert infrastructure.dask_status(address, timeout=1.0, max_age=60) is d  # cached: no second wait
    assert time.monotonic() - started < 0.1
    text = infrastructure.render_prometheus(
        infrastructure.ScalingStatus(infrastructure.QueueFigures(), [], [], d, [], infrastructure.Thresholds())
    )
    assert f'mlops_dask_up{{scheduler="{address}"}} 0' in text


def test_a_reachable_dask_cluster_lists_its_workers_threads_memory_and_tasks():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        d = infrastructure.dask_status(cluster.scheduler_address, timeout=5.0, max_age=0)
    assert d is not None and d.reachable and d.error == ""
    assert d.n_workers == 2 and d.threads == 2 and d.processing == 0
    assert all(w["memory_bytes"] > 0 and w["memory_limit_bytes"] > 0 for w in d.workers)
    assert infrastructure.advise(infrastructure.QueueFigures(), [], [], d)[0].level == "ok"
