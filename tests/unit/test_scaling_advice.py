"""Issue 16, point 5: the scaling advice rules (pure) and the arithmetic behind the figures."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from mlops_core.scaling import (
    DaskFigures,
    QueueFigures,
    ReplicaLoad,
    Thresholds,
    WorkerLoad,
    advise,
    busy_ratio,
    histogram_quantile,
    percentile,
)

T = Thresholds()


def worker(name="w1", busy=0.5, status="running", alive_s=3600.0):
    return WorkerLoad(name=name, status=status, busy_ratio=busy, alive_s=alive_s)


def replica(name="r1", rps=20.0, p95=50.0, cpu=30.0, in_flight=1, status="running"):
    return ReplicaLoad(name=name, status=status, requests_per_s=rps, p95_ms=p95, cpu_percent=cpu, in_flight=in_flight)


def texts(advice):
    return [a.text for a in advice]


def test_all_quiet_when_nothing_calls_for_scaling():
    advice = advise(QueueFigures(p95_1h=3.0, n_1h=10), [worker(busy=0.4)], [replica()], None)
    assert [a.level for a in advice] == ["ok"] and advice[0].text.startswith("all quiet")


def test_queue_wait_over_the_threshold_at_p95_asks_for_a_worker():
    advice = advise(QueueFigures(p95_1h=95.0, n_1h=12, waiting=0), [worker(busy=0.9)], [], None)
    assert len(advice) == 1 and advice[0].level == "add" and advice[0].target == "workers"
    assert advice[0].text.startswith("jobs waited over 60 s at p95 for the last hour (95 s over 12 jobs, 1 worker)")
    assert advice[0].text.endswith("add a worker")


def test_the_threshold_comes_from_the_settings():
    settings = SimpleNamespace(
        scale_queue_wait_p95_seconds=120,
        scale_worker_busy_ratio=0.9,
        scale_worker_idle_ratio=0.01,
        scale_replica_p95_ms=100,
        scale_replica_cpu_percent=50,
        scale_replica_in_flight=4,
    )
    t = Thresholds.from_settings(settings)
    assert advise(QueueFigures(p95_1h=95.0, n_1h=12), [worker()], [], None, t)[0].level == "ok"
    assert "over 2 min at p95" in advise(QueueFigures(p95_1h=150.0, n_1h=3), [worker()], [], None, t)[0].text
    add = advise(QueueFigures(), [worker()], [replica(p95=150, cpu=60)], None, t)
    assert add[0].text == "scoring p95 latency 150 ms at 60% CPU on 1 replica: add a replica"


def test_an_old_waiting_job_asks_for_a_worker_before_any_p95_shows_it():
    advice = advise(QueueFigures(waiting=4, oldest_wait_s=300.0), [worker(busy=1.0)], [], None)
    assert advice[0].level == "add" and "waiting 5 min (4 jobs waiting, 1 worker busy)" in advice[0].text


def test_busy_workers_with_jobs_waiting_ask_for_a_worker_below_the_wait_threshold():
    advice = advise(QueueFigures(waiting=2, oldest_wait_s=10.0, p95_1h=20.0, n_1h=40), [worker(busy=0.95)], [], None)
    assert advice[0].text == "workers busy 95% of the last hour with 2 jobs waiting: add a worker"
    # Busy but nothing waiting: the workers keep up.
    assert advise(QueueFigures(p95_1h=20.0, n_1h=40), [worker(busy=0.95)], [], None)[0].level == "ok"


def test_jobs_waiting_with_no_worker_say_start_one():
    advice = advise(QueueFigures(waiting=3, oldest_wait_s=5.0), [worker(status="lost")], [], None)
    assert advice[0].level == "warn" and advice[0].text.startswith("3 jobs waiting and no worker running")


def test_idle_workers_suggest_one_fewer_only_after_half_an_hour_each():
    idle = [worker("a", busy=0.01), worker("b", busy=0.02)]
    assert advise(QueueFigures(), idle, [], None)[0].level == "remove"
    young = [worker("a", busy=0.01), worker("b", busy=0.0, alive_s=600)]
    assert advise(QueueFigures(), young, [], None)[0].level == "ok"
    assert advise(QueueFigures(), [worker("a", busy=0.0)], [], None)[0].level == "ok"  # never below one worker


def test_scoring_latency_at_high_cpu_asks_for_a_replica():
    advice = advise(QueueFigures(), [], [replica(p95=480, cpu=85)], None)
    assert texts(advice) == ["scoring p95 latency 480 ms at 85% CPU on 1 replica: add a replica"]


def test_scoring_latency_without_cpu_is_a_warning_not_a_replica():
    advice = advise(QueueFigures(), [], [replica(p95=480, cpu=10)], None)
    assert advice[0].level == "warn" and "another replica may not help" in advice[0].text


def test_many_requests_in_flight_ask_for_a_replica():
    advice = advise(QueueFigures(), [], [replica(in_flight=20), replica("r2", in_flight=10)], None)
    assert advice[0].text.startswith("15 requests in flight per replica on 2 replicas (over 8)")


def test_a_replica_without_traffic_or_stopped_is_not_judged_on_latency():
    assert advise(QueueFigures(), [], [replica(rps=0.0, p95=900, cpu=95)], None)[0].level == "ok"
    assert advise(QueueFigures(), [], [replica(p95=900, cpu=95, status="lost")], None)[0].level == "ok"


def test_dask_unreachable_no_workers_and_backlog():
    down = advise(QueueFigures(), [], [], DaskFigures("tcp://10.0.0.5:8786", reachable=False, error="timed out"))
    assert down[0].level == "warn" and down[0].text.startswith("unreachable: tcp://10.0.0.5:8786 (timed out)")
    empty = advise(QueueFigures(), [], [], DaskFigures("tcp://d:8786", reachable=True))
    assert "has no workers" in empty[0].text
    busy = DaskFigures("tcp://d:8786", True, workers=[{"threads": 2, "processing": 9}, {"threads": 2, "processing": 0}])
    assert advise(QueueFigures(), [], [], busy)[0].text.startswith("9 Dask tasks on 4 threads (2 workers)")
    calm = DaskFigures("tcp://d:8786", True, workers=[{"threads": 2, "processing": 3}])
    assert advise(QueueFigures(), [], [], calm)[0].level == "ok"


def test_several_findings_are_all_reported():
    advice = advise(
        QueueFigures(p95_1h=200.0, n_1h=5), [worker()], [replica(p95=600, cpu=90)], DaskFigures("tcp://x:1", False)
    )
    assert [a.target for a in advice] == ["workers", "replicas", "dask"]


def test_percentile_interpolates_like_numpy():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile(list(range(1, 101)), 0.95) == pytest.approx(95.05)


def test_histogram_quantile_interpolates_inside_the_bucket():
    bounds = (0.1, 0.5, 1.0)
    assert histogram_quantile(0.95, bounds, [0, 0, 0, 0]) is None
    # 100 requests: 50 under 0.1 s, 50 in (0.1, 0.5]: p95 is 90% of the way through the second bucket.
    assert histogram_quantile(0.95, bounds, [50, 50, 0, 0]) == pytest.approx(0.1 + 0.4 * 0.9)
    assert histogram_quantile(0.5, bounds, [100, 0, 0, 0]) == pytest.approx(0.05)
    assert histogram_quantile(0.99, bounds, [0, 0, 0, 5]) == 1.0  # +Inf: its lower bound


def test_busy_ratio_clips_jobs_to_the_window_and_the_workers_life():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    hour = now - timedelta(hours=1)
    jobs = [
        (hour - timedelta(minutes=10), hour + timedelta(minutes=5)),  # 5 min inside the window
        (now - timedelta(minutes=20), now - timedelta(minutes=10)),  # 10 min
        (now - timedelta(minutes=3), None),  # running: 3 min
    ]
    ratio, busy, alive = busy_ratio(
        jobs, alive_from=hour - timedelta(hours=5), alive_to=now, window_start=hour, now=now
    )
    assert busy == 18 * 60 and alive == 3600 and ratio == pytest.approx(0.3)
    # A worker started 30 minutes ago with concurrency 2: capacity 2 x 30 min, only its jobs since start count.
    ratio, busy, alive = busy_ratio(
        jobs, alive_from=now - timedelta(minutes=30), alive_to=now, window_start=hour, now=now, concurrency=2
    )
    assert busy == 13 * 60 and alive == 1800 and ratio == pytest.approx(13 / 60)
    assert busy_ratio([], alive_from=now, alive_to=now, window_start=hour, now=now)[0] == 0.0
