"""Training searches on a real Dask cluster (issue 16): a `dask scheduler` and two `dask worker` processes
from .venv/bin on free ports. A 24-candidate search on them equals the local run with the same seed, even
with one worker killed mid-search; an unreachable scheduler fails fast naming the address; a lost scheduler
fails the search (before anything is stored); a cancelled job cancels its futures."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from mlops_core.ml import dask_exec, training  # noqa: E402
from tests.integration.conftest import free_port  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(dask_cluster):
    """The session's shared cluster (tests/integration/conftest.py), made whole before each test."""
    return dask_cluster


def _data() -> tuple[pd.DataFrame, training.TrainingConfig]:
    rng = np.random.default_rng(7)
    n = 120
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    frame["y"] = (frame["a"] - frame["b"] + rng.normal(size=n) * 0.7 > 0).astype(int)
    cfg = training.validate_config(
        frame,
        {
            "target": "y",
            "algorithm": "logistic_regression",
            "params": {"C": [0.001, 0.01, 0.1, 1, 10, 100], "max_iter": [20, 40, 60, 80]},
            "split": "cv",
            "folds": 2,
            "seed": 3,
        },
    )
    return frame, cfg


def _scores(result) -> list[tuple[dict, float]]:
    return [(r["params"], r["score"]) for r in result.search_results]


def test_search_on_dask_equals_local_even_with_a_worker_killed_mid_search(cluster):
    frame, cfg = _data()
    assert len(training.candidates(cfg)) >= 24
    local = training.train(frame, cfg)

    messages: list[str] = []
    victim = cluster.workers[1]

    def progress(_f: float, m: str) -> None:
        messages.append(m)
        if "finished on Dask" in m and victim.poll() is None:
            # Killed right after the first candidate finishes (the other 23 still queued or running), and
            # synchronously, so the kill is mid-search however fast the machine is.
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

    remote = training.train(frame, cfg, progress=progress, dask_scheduler=cluster.address)
    assert victim.poll() is not None, f"no candidate finished on Dask; progress: {messages[-3:]}"

    assert _scores(remote) == _scores(local)  # same candidates, same order, bit-equal scores
    assert remote.params == local.params and remote.test_metrics == local.test_metrics
    assert remote.extra["dask_scheduler"] == cluster.address and remote.extra["dask_workers"] == 2
    assert remote.extra["dask_workers_lost"] == 1
    assert all(r["seconds"] > 0 for r in remote.search_results)  # time per candidate
    assert any(m.startswith(f"search: {len(remote.search_results)} of ") for m in messages)


def test_cancelling_cancels_the_futures(cluster):
    from distributed import Client

    frame, cfg = _data()

    class Cancelled(Exception):
        pass

    calls = {"n": 0}

    def check_cancelled() -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        training.train(frame, cfg, check_cancelled=check_cancelled, dask_scheduler=cluster.address)
    with Client(cluster.address, timeout=5, set_as_default=False) as c:
        deadline = time.monotonic() + 20
        while (left := c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert left == 0, f"{left} tasks still on the scheduler after the search was cancelled"


def test_unreachable_scheduler_fails_fast_with_the_address():
    frame, cfg = _data()
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens
    started = time.monotonic()
    with pytest.raises(dask_exec.DaskUnavailable) as err:
        training.train(frame, cfg, dask_scheduler=address)
    assert time.monotonic() - started < 30
    assert address in str(err.value) and "dask scheduler" in str(err.value)
    assert "MLOPS_DASK_SCHEDULER" in str(err.value)


def test_mismatched_package_versions_are_refused_naming_both(cluster, monkeypatch):
    monkeypatch.setattr(dask_exec, "local_versions", lambda: {"scikit-learn": "0.0.1", "numpy": "x", "pandas": "y"})
    # Only this process's view is changed: the workers report their real versions.
    with pytest.raises(dask_exec.DaskUnavailable) as err:
        dask_exec.connect(cluster.address)
    msg = str(err.value)
    import sklearn

    assert f"scikit-learn {sklearn.__version__} on Dask worker" in msg and "vs 0.0.1 on this worker" in msg


def test_lost_scheduler_fails_the_search(cluster):
    """It kills the shared scheduler; the `dask_cluster` fixture starts a new cluster for the next test that needs one."""
    frame, cfg = _data()
    killed = threading.Event()

    def progress(_f: float, m: str) -> None:
        if "finished on Dask" in m and not killed.is_set():
            killed.set()
            cluster.scheduler.kill()

    t0 = time.monotonic()
    with pytest.raises(dask_exec.DaskUnavailable) as err:
        training.train(frame, cfg, progress=progress, dask_scheduler=cluster.address)
    assert killed.is_set()
    assert "lost the Dask scheduler" in str(err.value) and cluster.address in str(err.value)
    assert time.monotonic() - t0 < 60
