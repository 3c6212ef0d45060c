"""The HTTP service's heartbeat (issue 16, "scaled as needed"): every few seconds each process writes its load to
`service_replicas` — scoring requests per second and predict p95 latency over the interval (the difference of
the process's cumulative `Metrics` counters and latency histogram, so the request path gains nothing), requests
in flight, CPU and memory. The Infrastructure page and every replica's /metrics read all replicas from there.

A thread, like the deployment poller; a failed write is logged and retried at the next beat (the database may be
away; scoring goes on)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psutil

from ..db import Database, utcnow
from ..scaling import histogram_quantile
from ..services import processes

log = logging.getLogger("mlops_core.serving")


def _totals(metrics: Any, width: int) -> tuple[int, list[int]]:
    """(scoring requests answered, predict latency counts per bucket summed over deployments), read from
    another thread than the event loop that updates them: copy, and retry the rare concurrent resize."""
    for _ in range(5):
        try:
            requests = sum(list(metrics.requests.values()))
            buckets = [0] * width
            for b in list(metrics.buckets.values()):
                for i, n in enumerate(list(b)):
                    buckets[i] += n
            return requests, buckets
        except RuntimeError:  # dictionary changed size during iteration
            continue
    return 0, []


class ReplicaReporter:
    def __init__(self, db: Database, metrics: Any, bounds: tuple[float, ...], *, interval: float | None = None):
        self.db = db
        self.metrics = metrics
        self.bounds = tuple(bounds)
        self.interval = float(interval if interval is not None else processes.REPLICA_HEARTBEAT_S)
        self.name = processes.replica_name()
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call only starts the measurement
        self._last_t = time.monotonic()
        self._last_requests, self._last_buckets = _totals(metrics, len(self.bounds) + 1)
        self._failures = 0

    def sample(self) -> dict[str, Any]:
        """The figures since the previous sample."""
        now = time.monotonic()
        requests, buckets = _totals(self.metrics, len(self.bounds) + 1)
        dt = max(now - self._last_t, 1e-6)
        delta = [b - (self._last_buckets[i] if i < len(self._last_buckets) else 0) for i, b in enumerate(buckets)]
        p95 = histogram_quantile(0.95, self.bounds, delta) if delta else None
        figures = dict(
            requests_per_s=max(0, requests - self._last_requests) / dt,
            in_flight=int(self.metrics.in_flight),
            p95_ms=None if p95 is None else p95 * 1000,
            requests_total=requests,
        )
        self._last_t, self._last_requests, self._last_buckets = now, requests, buckets
        try:
            figures["cpu_percent"] = self._proc.cpu_percent(None)
            figures["rss_mb"] = self._proc.memory_info().rss / 2**20
        except psutil.Error:
            figures["cpu_percent"], figures["rss_mb"] = 0.0, 0.0
        return figures

    def beat(self, *, status: str = "running") -> None:
        processes.record_replica_heartbeat(
            self.db, name=self.name, started_at=self.started_at, status=status, **self.sample()
        )

    def _loop(self) -> None:
        while True:
            try:
                self.beat()
                self._failures = 0
            except Exception as exc:  # noqa: BLE001 - the database may be away; keep serving, try again
                self._failures += 1
                if self._failures <= 3 or self._failures % 60 == 0:
                    log.warning("replica heartbeat failed: %s", (str(exc).splitlines() or [type(exc).__name__])[0])
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="replica-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.beat(status="stopped")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record this replica's stop: %s", exc)
