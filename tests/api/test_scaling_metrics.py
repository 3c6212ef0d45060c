"""Issue 16, point 5: the HTTP service's /metrics exports the scaling figures (queue wait, jobs waiting, worker busy
ratio, replica requests/s, in-flight and p95, Dask) named mlops_*, with sane values, under the same auth rules.
Through the real ASGI app (create_app: poller, prediction writer, replica heartbeat) on SQLite and Postgres."""

from __future__ import annotations

import math
import re
import time
from datetime import timedelta
from socket import socket

import pytest
from starlette.testclient import TestClient

from mlops_core.config import reload_settings
from mlops_core.db import utcnow
from mlops_core.models.jobs import Job, Worker
from mlops_core.serving.app import create_app
from mlops_core.services import infrastructure, processes

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")


def parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = LINE.match(line)
            assert m, f"not Prometheus text: {line!r}"
            out[m["name"] + (m["labels"] or "")] = float(m["value"])
    return out


@pytest.fixture
def hub_db(db, monkeypatch):
    with socket() as s:  # a Dask scheduler address nobody answers at
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MLOPS_DASK_SCHEDULER", f"tcp://127.0.0.1:{s.getsockname()[1]}")
    reload_settings()
    monkeypatch.setattr(processes, "REPLICA_HEARTBEAT_S", 0.3)
    monkeypatch.setattr(infrastructure, "METRICS_CACHE_S", 0.0)
    monkeypatch.setattr(infrastructure, "DASK_TIMEOUT_S", 0.5)
    now = utcnow()
    with db.unit_of_work() as s:
        s.add(Worker(name="w1", started_at=now - timedelta(hours=2), heartbeat_at=now))
        due = now - timedelta(minutes=30)
        s.add(
            Job(
                kind="noop",
                status="finished",
                claimed_by="w1",
                available_at=due,
                created_at=due,
                started_at=due + timedelta(seconds=30),
                finished_at=due + timedelta(minutes=15, seconds=30),
            )
        )
        s.add(Job(kind="noop", status="queued", available_at=now - timedelta(seconds=90), created_at=now))
    yield db
    reload_settings()


def test_metrics_export_the_scaling_figures_with_sane_values(hub_db):
    app = create_app(hub_db.url, poll_seconds=0.2)
    me = processes.replica_name()
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 30
        while True:
            for _ in range(10):  # unknown deployment: answered 404, counted and timed as predict requests
                assert c.post("/v1/deployments/nope/predict", json={"records": [{}]}).status_code == 404
            r = c.get("/metrics")
            assert r.status_code == 200
            m = parse(r.text)
            rps = m.get(f'mlops_replica_requests_per_second{{replica="{me}"}}', 0.0)
            p95 = m.get(f'mlops_replica_latency_p95_seconds{{replica="{me}"}}', 0.0)
            if rps > 0 and p95 > 0:
                break
            assert time.monotonic() < deadline, "the replica's heartbeat never reported its requests:\n" + r.text
            time.sleep(0.1)
        # The queue: one job waiting (due 90 s ago), one started 30 s after it was due.
        assert m["mlops_jobs_waiting"] == 1 and m["mlops_jobs_running"] == 0
        assert 85 <= m["mlops_job_oldest_wait_seconds"] <= 200
        assert m['mlops_job_queue_wait_seconds{window="1h",quantile="0.95"}'] == pytest.approx(30)
        assert m['mlops_job_queue_wait_seconds_count{window="24h"}'] == 1
        assert not any(math.isnan(v) for v in m.values()), "every figure is a number an autoscaler can use"
        # The worker: 15 of the last 60 minutes busy.
        assert m["mlops_workers_running"] == 1
        assert m['mlops_worker_busy_ratio{worker="w1"}'] == pytest.approx(0.25, abs=0.01)
        # This replica, from its heartbeat in the database. The client sends one request at a time: at most one
        # was in flight when the heartbeat sampled, and none now (the scrape itself is not counted).
        assert m["mlops_replicas_running"] == 1
        assert 0 < rps < 100_000 and 0 < p95 < 5
        assert m[f'mlops_replica_in_flight{{replica="{me}"}}'] in (0, 1) and m["mlops_in_flight_requests"] == 0
        assert 0 <= m[f'mlops_replica_cpu_percent{{replica="{me}"}}'] <= 100 * 64
        # The Dask scheduler is configured but nobody answers there.
        assert [v for k, v in m.items() if k.startswith("mlops_dask_up{")] == [0]
        assert {k for k in m if k.startswith("mlops_scaling_advice")} == {
            f'mlops_scaling_advice{{target="{t}"}}' for t in ("workers", "replicas", "dask")
        }
        # The service's own metrics are still there, and the auth rules did not change.
        assert 'mlops_requests_total{deployment="-",endpoint="predict",status="404"}' in m
    with TestClient(app, client=("203.0.113.7", 50000)) as c:
        r = c.get("/metrics")
        assert r.status_code == 403 and "mlops_jobs_waiting" not in r.text
    stopped = {p.name: p.status for p in processes.list_replicas(hub_db, include_stopped=True)}
    assert stopped[me] == "stopped"  # a clean shutdown records it
