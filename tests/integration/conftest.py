"""Integration tier: real processes (the CLI as a subprocess), real files of real size and a real
database, but no browser. Slower than tests/unit, which has no subprocess, no database and no demo seed.

`dask_cluster`: one real Dask cluster (a `dask scheduler` and two single-threaded `dask worker` processes from
.venv/bin on free ports) shared by every Dask test of the session; before each test it is made whole again
(a worker or the scheduler a previous test killed is replaced), so tests may kill parts of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskCluster:
    """A scheduler and `n` single-threaded workers (no nanny, so killing a worker's process kills the worker)."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._start()

    def _popen(self, args: list) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers import mlops_core.ml
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)

    def _start_worker(self) -> subprocess.Popen:
        return self._popen(
            [BIN / "dask", "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
            + ["--memory-limit", "0"]
        )

    def _start(self) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", port, "--dashboard-address", ":0"]
        )
        self.workers = [self._start_worker() for _ in range(self.n_workers)]
        self._wait_for_workers()

    def _wait_for_workers(self, deadline_s: float = 60.0) -> None:
        from distributed import Client

        deadline = time.monotonic() + deadline_s
        while True:
            try:
                with Client(self.address, timeout=5, set_as_default=False) as c:
                    c.wait_for_workers(self.n_workers, timeout=max(1.0, deadline - time.monotonic()))
                    # exactly n: a killed worker may still be listed for a moment
                    while len(c.scheduler_info(n_workers=-1)["workers"]) != self.n_workers:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the Dask cluster did not settle on {self.n_workers} workers")
                        time.sleep(0.1)
                    return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise

    def ensure(self) -> None:
        """Whole again: a new cluster if the scheduler died, else new workers for the dead ones."""
        if self.scheduler is None or self.scheduler.poll() is not None:
            self.stop()
            self._start()
            return
        alive = [w for w in self.workers if w.poll() is None]
        if len(alive) < self.n_workers:
            for w in self.workers:
                if w.poll() is not None:
                    w.wait(timeout=10)
            self.workers = alive + [self._start_worker() for _ in range(self.n_workers - len(alive))]
            self._wait_for_workers()

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p is not None and p.poll() is None:
                p.kill()
            if p is not None:
                p.wait(timeout=10)


@pytest.fixture(scope="session")
def _dask_cluster_session():
    pytest.importorskip("distributed")
    c = DaskCluster(2)
    yield c
    c.stop()


@pytest.fixture
def dask_cluster(_dask_cluster_session) -> DaskCluster:
    """The session's Dask cluster, whole (two workers, a live scheduler) at the start of the test."""
    _dask_cluster_session.ensure()
    return _dask_cluster_session
