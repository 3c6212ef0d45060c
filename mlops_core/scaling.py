"""Scaling advice from the Infrastructure figures (issue 16, "scaled as needed"): pure functions, no I/O.

`advise()` turns the queue, worker, scoring replica and Dask figures into sentences an operator acts on
("jobs waited over 60 s at p95 for the last hour: add a worker"), with thresholds from settings
(`Thresholds.from_settings`). The same figures are exported as Prometheus metrics, so an autoscaler can
act on them instead (docs/autoscaling.md); these rules are what a person would do by hand.

Also here, because they are pure arithmetic the service and the tests share: `percentile`,
`histogram_quantile` (Prometheus' interpolation inside a bucket) and `busy_ratio` (share of a worker's
time in the window spent running jobs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Thresholds:
    queue_wait_p95_s: float = 60.0  # jobs waited longer than this at p95 (last hour): add a worker
    worker_busy_ratio: float = 0.85  # workers busy this share of the last hour with jobs waiting: add a worker
    worker_idle_ratio: float = 0.05  # several workers, each busy under this share, nothing waiting: one fewer
    replica_p95_ms: float = 300.0  # scoring p95 latency above this ...
    replica_cpu_percent: float = 80.0  # ... at this CPU (100 = one core): add a replica
    replica_in_flight: float = 8.0  # requests in flight per replica above this: add a replica

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        return cls(
            queue_wait_p95_s=float(settings.scale_queue_wait_p95_seconds),
            worker_busy_ratio=float(settings.scale_worker_busy_ratio),
            worker_idle_ratio=float(settings.scale_worker_idle_ratio),
            replica_p95_ms=float(settings.scale_replica_p95_ms),
            replica_cpu_percent=float(settings.scale_replica_cpu_percent),
            replica_in_flight=float(settings.scale_replica_in_flight),
        )


@dataclass
class QueueFigures:
    waiting: int = 0  # queued jobs whose time has come (not the ones waiting for a retry back-off)
    oldest_wait_s: float | None = None
    running: int = 0
    # Wait = started - available (enqueued, or due after a back-off), of the jobs started in the window.
    p50_1h: float | None = None
    p95_1h: float | None = None
    n_1h: int = 0
    sum_1h: float = 0.0
    p50_24h: float | None = None
    p95_24h: float | None = None
    n_24h: int = 0
    sum_24h: float = 0.0


@dataclass
class WorkerLoad:
    name: str
    status: str  # running | stopping | stopped | lost
    concurrency: int = 1
    busy_ratio: float = 0.0  # share of the last hour (while alive) spent running jobs
    busy_s: float = 0.0
    alive_s: float = 0.0
    jobs: int = 0  # jobs it ran (in part) in the window
    cpu_percent: float = 0.0
    rss_mb: float = 0.0


@dataclass
class ReplicaLoad:
    name: str
    status: str  # running | stopped | lost
    requests_per_s: float = 0.0
    in_flight: int = 0
    p95_ms: float | None = None
    cpu_percent: float = 0.0
    rss_mb: float = 0.0


@dataclass
class DaskFigures:
    address: str
    reachable: bool
    error: str = ""
    workers: list[dict[str, Any]] = field(default_factory=list)  # address, threads, memory_bytes, processing

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def threads(self) -> int:
        return sum(int(w.get("threads") or 0) for w in self.workers)

    @property
    def memory_bytes(self) -> int:
        return sum(int(w.get("memory_bytes") or 0) for w in self.workers)

    @property
    def processing(self) -> int:
        return sum(int(w.get("processing") or 0) for w in self.workers)


@dataclass(frozen=True)
class Advice:
    level: str  # "add" (scale out), "remove" (scale in), "warn" (something to fix), "ok"
    target: str  # "workers", "replicas", "dask" or "" (all quiet)
    text: str


# --- arithmetic -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile of a histogram: `counts` per bucket (not cumulative), one more than `bounds` (the
    last bucket is +Inf). Linear inside the bucket, like Prometheus; the +Inf bucket answers its lower bound."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            return lower + (float(bounds[i]) - lower) * (rank - seen) / n
        seen += n
    return float(bounds[-1])


def busy_ratio(
    intervals: Iterable[tuple[datetime, datetime | None]],
    *,
    alive_from: datetime,
    alive_to: datetime,
    window_start: datetime,
    now: datetime,
    concurrency: int = 1,
) -> tuple[float, float, float]:
    """(ratio, busy seconds, alive seconds): the jobs' [start, end or now] intervals clipped to the window and
    to the worker's life, over concurrency x the worker's alive time in the window. 0 when it was not alive."""
    lo = max(alive_from, window_start)
    hi = min(alive_to, now)
    alive = max(0.0, (hi - lo).total_seconds())
    busy = 0.0
    for start, end in intervals:
        s, e = max(start, lo), min(end or now, hi)
        if e > s:
            busy += (e - s).total_seconds()
    if alive <= 0:
        return 0.0, busy, 0.0
    return min(1.0, busy / (alive * max(1, concurrency))), busy, alive


# --- the rules --------------------------------------------------------------------------------------


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def advise(
    queue: QueueFigures,
    workers: Sequence[WorkerLoad],
    replicas: Sequence[ReplicaLoad],
    dask: DaskFigures | None,
    t: Thresholds | None = None,
) -> list[Advice]:
    """What to scale, in words, from the figures; [Advice("ok", "", "all quiet ...")] when nothing is needed."""
    t = t or Thresholds()
    out: list[Advice] = []
    alive = [w for w in workers if w.status in ("running", "stopping")]

    # Workers: the queue is the signal (wait at p95, the oldest waiting job), utilisation confirms.
    if not alive and queue.waiting:
        out.append(
            Advice(
                "warn",
                "workers",
                f"{_n(queue.waiting, 'job')} waiting and no worker running: start one (python -m mlops_core worker)",
            )
        )
    elif queue.p95_1h is not None and queue.p95_1h > t.queue_wait_p95_s:
        out.append(
            Advice(
                "add",
                "workers",
                f"jobs waited over {_dur(t.queue_wait_p95_s)} at p95 for the last hour ({_dur(queue.p95_1h)} "
                f"over {_n(queue.n_1h, 'job')}, {_n(len(alive), 'worker')}): add a worker",
            )
        )
    elif queue.oldest_wait_s is not None and queue.oldest_wait_s > t.queue_wait_p95_s:
        out.append(
            Advice(
                "add",
                "workers",
                f"a job has been waiting {_dur(queue.oldest_wait_s)} ({_n(queue.waiting, 'job')} waiting, "
                f"{_n(len(alive), 'worker')} busy): add a worker",
            )
        )
    elif alive and queue.waiting:
        mean = sum(w.busy_ratio for w in alive) / len(alive)
        if mean >= t.worker_busy_ratio:
            out.append(
                Advice(
                    "add",
                    "workers",
                    f"workers busy {mean:.0%} of the last hour with {_n(queue.waiting, 'job')} waiting: add a worker",
                )
            )
    if (
        not out
        and len(alive) > 1
        and not queue.waiting
        and all(w.busy_ratio < t.worker_idle_ratio for w in alive)
        and all(w.alive_s >= 1800 for w in alive)  # judged on at least half an hour of each worker's life
    ):
        top = max(w.busy_ratio for w in alive)
        out.append(
            Advice(
                "remove",
                "workers",
                f"{len(alive)} workers each busy under {t.worker_idle_ratio:.0%} of the last hour (at most {top:.0%}) "
                "and nothing waiting: one fewer worker would do",
            )
        )

    # Scoring replicas: latency with CPU says "more replicas"; latency without CPU says "look elsewhere".
    live = [r for r in replicas if r.status == "running"]
    if live:
        n = len(live)
        p95s = [r.p95_ms for r in live if r.p95_ms is not None and r.requests_per_s > 0]
        p95 = max(p95s) if p95s else None
        cpu = sum(r.cpu_percent for r in live) / n
        in_flight = sum(r.in_flight for r in live) / n
        where = f"on {_n(n, 'replica')}"
        if p95 is not None and p95 > t.replica_p95_ms and cpu >= t.replica_cpu_percent:
            out.append(
                Advice("add", "replicas", f"scoring p95 latency {p95:.0f} ms at {cpu:.0f}% CPU {where}: add a replica")
            )
        elif in_flight > t.replica_in_flight:
            out.append(
                Advice(
                    "add",
                    "replicas",
                    f"{in_flight:.0f} requests in flight per replica {where} (over {t.replica_in_flight:g}): "
                    "add a replica",
                )
            )
        elif p95 is not None and p95 > t.replica_p95_ms:
            out.append(
                Advice(
                    "warn",
                    "replicas",
                    f"scoring p95 latency {p95:.0f} ms at only {cpu:.0f}% CPU {where}: the time is not spent "
                    "computing here (database, prediction log, model load?); another replica may not help",
                )
            )

    # Dask: only when one is configured.
    if dask is not None:
        if not dask.reachable:
            out.append(
                Advice(
                    "warn",
                    "dask",
                    f"unreachable: {dask.address}"
                    + (f" ({dask.error})" if dask.error else "")
                    + ": training searches on the cluster fail until the Dask scheduler is back",
                )
            )
        elif dask.n_workers == 0:
            out.append(
                Advice("warn", "dask", f"the Dask cluster at {dask.address} has no workers: start `dask worker`")
            )
        elif dask.processing > 2 * max(1, dask.threads):
            out.append(
                Advice(
                    "add",
                    "dask",
                    f"{dask.processing} Dask tasks on {dask.threads} threads ({_n(dask.n_workers, 'worker')}): "
                    "add a Dask worker",
                )
            )

    if not out:
        out.append(Advice("ok", "", "all quiet: no queue wait, worker, replica or cluster figure calls for scaling"))
    return out
