"""Issue 16, point 5 through AppTest: the Infrastructure page shows queue wait, worker utilisation, the scoring
replicas' load, the Dask cluster (here: configured but unreachable, shown within the probe's timeout) and the
scaling advice those figures give."""

from datetime import timedelta
from socket import socket

from mlops_core.config import reload_settings
from mlops_core.db import utcnow
from mlops_core.models.jobs import Job, Worker
from mlops_core.services import infrastructure, processes
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts


def test_the_page_shows_queue_wait_utilisation_replicas_dask_and_advice(sqlite_db, monkeypatch):
    with socket() as s:  # a port nobody listens on: the Dask scheduler is unreachable
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MLOPS_DASK_SCHEDULER", address)
    reload_settings()
    monkeypatch.setattr(infrastructure, "DASK_TIMEOUT_S", 1.0)
    people = make_people(sqlite_db)
    now = utcnow()
    with sqlite_db.unit_of_work() as s:
        s.add(Worker(name="worker-1", started_at=now - timedelta(hours=2), heartbeat_at=now))
        for i in range(4):  # each waited 100 s, then ran 10 min on worker-1
            due = now - timedelta(minutes=50 - 12 * i)
            s.add(
                Job(
                    kind="noop",
                    status="finished",
                    claimed_by="worker-1",
                    available_at=due,
                    created_at=due,
                    started_at=due + timedelta(seconds=100),
                    finished_at=due + timedelta(seconds=700),
                )
            )
        s.add(Job(kind="noop", status="queued", available_at=now - timedelta(minutes=4), created_at=now))
    processes.record_replica_heartbeat(
        sqlite_db,
        name="scoring-host:900",
        started_at=now - timedelta(hours=1),
        requests_per_s=55.0,
        in_flight=4,
        p95_ms=480.0,
        cpu_percent=85.0,
        rss_mb=250.0,
        requests_total=9000,
    )

    at = app_as(people["ops"], "pages/infrastructure.py")
    no_exceptions(at)
    page = texts(at)
    assert "jobs waited over 60 s at p95 for the last hour (100 s over 4 jobs, 1 worker): add a worker" in page
    assert "scoring p95 latency 480 ms at 85% CPU on 1 replica: add a replica" in page
    assert f"unreachable: {address}" in page
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Waiting now"] == "1" and metrics["Oldest waiting"] == "4 min"
    assert metrics["Wait p50 / p95, last hour"] == "100 s / 100 s"
    util = next(df.value for df in at.dataframe if "busy" in df.value.columns).to_dict("records")
    assert [(r["worker"], round(r["busy"], 3), r["jobs"]) for r in util] == [("worker-1", round(40 / 60, 3), 4)]
    replicas = next(df.value for df in at.dataframe if "in flight" in df.value.columns).to_dict("records")
    assert replicas[0]["replica"] == "scoring-host:900" and replicas[0]["p95 latency (ms)"] == "480.0"
    assert replicas[0]["requests/s"] == 55.0 and replicas[0]["in flight"] == 4


def test_a_quiet_hub_says_all_quiet_and_no_dask_without_a_scheduler(sqlite_db, monkeypatch):
    monkeypatch.delenv("MLOPS_DASK_SCHEDULER", raising=False)
    reload_settings()
    people = make_people(sqlite_db)
    at = app_as(people["admin"], "pages/infrastructure.py")
    no_exceptions(at)
    page = texts(at)
    assert "all quiet" in page and "No Dask cluster configured" in page
    assert "No HTTP service process has reported in the last hour" in page
    # no "None" in text, Material icons instead of emoji (empty boxes without an emoji font), rules collapsed
    assert "No job has failed recently." in page and "None." not in page
    shown = [*at.success, *at.info, *at.warning, *at.error]
    assert shown and all(str(a.proto.icon).startswith(":material/") for a in shown)
    assert "Scaling rules" in [e.label for e in at.expander]
