"""The Infrastructure page's figures: worker processes, the scheduler lease, the job queue, this host; and the
scaling figures (issue 16): queue wait, worker utilisation, scoring replica load, the Dask cluster, the advice
they give (mlops_core/scaling.py) and the same figures as Prometheus metrics for the HTTP service's /metrics."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import func, or_
from sqlmodel import col, select

from .. import jobs
from ..config import get_settings
from ..db import Database, utcnow
from ..jobs import queue
from ..models.jobs import Job, Lease
from ..scaling import (
    Advice,
    DaskFigures,
    QueueFigures,
    ReplicaLoad,
    Thresholds,
    WorkerLoad,
    advise,
    busy_ratio,
    percentile,
)
from . import processes
from ._common import aware


@dataclass
class Infrastructure:
    workers: list[Any]
    scheduler_holder: str | None
    scheduler_expires_at: datetime | None
    scheduler_alive: bool
    job_counts: dict[str, int]
    failed_jobs: list[Any]
    this_process: dict[str, float]


def infrastructure_status(db: Database) -> Infrastructure:
    """Worker processes (with the CPU/memory their heartbeats report), the scheduler lease, and the queue."""
    workers = jobs.list_workers(db, include_stopped=True, limit=50)
    with db.read() as s:
        lease = s.get(Lease, "scheduler")
        holder, expires = (lease.holder, aware(lease.expires_at)) if lease else (None, None)
    counts = queue.count_jobs_by_status(db)
    failed = jobs.list_jobs(db, status="failed", limit=20)
    proc = psutil.Process(os.getpid())
    return Infrastructure(
        workers=workers,
        scheduler_holder=holder,
        scheduler_expires_at=expires,
        scheduler_alive=bool(expires and expires > utcnow()),
        job_counts=counts,
        failed_jobs=failed,
        this_process={
            "cpu_percent": psutil.cpu_percent(interval=None),
            "rss_mb": proc.memory_info().rss / 2**20,
            "memory_percent": psutil.virtual_memory().percent,
            "memory_total_mb": psutil.virtual_memory().total / 2**20,
            "cpus": psutil.cpu_count() or 1,
        },
    )


# --- scaling figures (issue 16, "scaled as needed") ---------------------------------------------------------
# Read by the Infrastructure page and exported on the HTTP service's /metrics (prometheus_text). Everyone may
# read them (transparency); nothing here writes.

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
DASK_TIMEOUT_S = 2.0  # one probe of the Dask scheduler never holds a page or a scrape longer than this
DASK_CACHE_S = 15.0
METRICS_CACHE_S = 5.0

_cache_lock = threading.Lock()
_dask_cache: dict[str, tuple[float, DaskFigures]] = {}
_metrics_cache: dict[str, tuple[float, str]] = {}


@dataclass
class ScalingStatus:
    queue: QueueFigures
    workers: list[WorkerLoad]
    replicas: list[ReplicaLoad]
    dask: DaskFigures | None
    advice: list[Advice]
    thresholds: Thresholds


def queue_figures(db: Database, *, now: datetime | None = None) -> QueueFigures:
    """Jobs waiting now (queued, due), the oldest one's wait, and the wait (started - due) of the jobs started
    in the last hour and 24 hours: p50, p95, count, sum."""
    now = now or utcnow()
    with db.read() as s:
        waiting, oldest = s.exec(
            select(func.count(), func.min(Job.available_at)).where(Job.status == "queued", Job.available_at <= now)
        ).one()
        running = s.exec(select(func.count()).where(Job.status == "running")).one()
        started = s.exec(
            select(Job.available_at, Job.started_at).where(
                col(Job.started_at).is_not(None), col(Job.started_at) >= now - DAY, col(Job.started_at) <= now
            )
        ).all()
    waits_24h, waits_1h = [], []
    for available, start in started:
        wait = max(0.0, (aware(start) - aware(available)).total_seconds())
        waits_24h.append(wait)
        if aware(start) >= now - HOUR:
            waits_1h.append(wait)
    return QueueFigures(
        waiting=int(waiting or 0),
        oldest_wait_s=max(0.0, (now - aware(oldest)).total_seconds()) if oldest is not None else None,
        running=int(running or 0),
        p50_1h=percentile(waits_1h, 0.5),
        p95_1h=percentile(waits_1h, 0.95),
        n_1h=len(waits_1h),
        sum_1h=sum(waits_1h),
        p50_24h=percentile(waits_24h, 0.5),
        p95_24h=percentile(waits_24h, 0.95),
        n_24h=len(waits_24h),
        sum_24h=sum(waits_24h),
    )


def worker_utilisation(db: Database, *, now: datetime | None = None, window: timedelta = HOUR) -> list[WorkerLoad]:
    """Per worker process alive in the window: the share of its time (x concurrency) spent running jobs, from
    the jobs' start/finish times (a running job counts until now) and the worker's start and last heartbeat."""
    now = now or utcnow()
    start = now - window
    workers = [w for w in jobs.list_workers(db, include_stopped=True, limit=200) if aware(w.heartbeat_at) >= start]
    if not workers:
        return []
    names = [w.name for w in workers]
    with db.read() as s:
        rows = s.exec(
            select(Job.claimed_by, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at).where(
                col(Job.claimed_by).in_(names),
                col(Job.started_at).is_not(None),
                col(Job.started_at) <= now,
                or_(col(Job.finished_at).is_(None), col(Job.finished_at) >= start),
            )
        ).all()
    per: dict[str, list[tuple[datetime, datetime | None]]] = {n: [] for n in names}
    for claimed_by, status, started, finished, beat in rows:
        if finished is not None:
            end = aware(finished)
        elif status == "running":
            end = None  # until now
        else:  # given back or waiting for a retry: busy until its last heartbeat
            end = aware(beat) or aware(started)
        per[claimed_by].append((aware(started), end))
    out = []
    for w in workers:
        dead = w.status in ("stopped", "lost")
        alive_to = aware(w.stopped_at or w.heartbeat_at) if dead else now
        ratio, busy, alive = busy_ratio(
            per[w.name],
            alive_from=aware(w.started_at),
            alive_to=alive_to,
            window_start=start,
            now=now,
            concurrency=w.concurrency,
        )
        n_jobs = sum(1 for st, en in per[w.name] if (en or now) > start)
        out.append(
            WorkerLoad(
                name=w.name,
                status=w.status,
                concurrency=w.concurrency,
                busy_ratio=ratio,
                busy_s=busy,
                alive_s=alive,
                jobs=n_jobs,
                cpu_percent=w.cpu_percent,
                rss_mb=w.rss_mb,
            )
        )
    return out


def replica_loads(db: Database, *, now: datetime | None = None) -> list[ReplicaLoad]:
    """The HTTP service processes (scoring replicas) with the load their last heartbeat reported."""
    return [
        ReplicaLoad(
            name=r.name,
            status=r.status,
            requests_per_s=r.requests_per_s,
            in_flight=r.in_flight,
            p95_ms=r.p95_ms,
            cpu_percent=r.cpu_percent,
            rss_mb=r.rss_mb,
        )
        for r in processes.list_replicas(db, include_stopped=True, now=now)
        if r.status == "running" or (now or utcnow()) - r.heartbeat_at < HOUR
    ]


def _probe_dask(address: str, timeout: float) -> DaskFigures:
    try:
        from distributed import Client
    except ImportError:
        return DaskFigures(address, False, "dask[distributed] is not installed in this process (the [dask] extra)")
    client = None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
        info = client.scheduler_info(n_workers=-1)
        try:
            processing = client.processing()
        except Exception:  # noqa: BLE001 - the figure is optional
            processing = {}
        workers = [
            {
                "address": addr,
                "name": str(w.get("name", addr)),
                "threads": int(w.get("nthreads") or 0),
                "memory_bytes": int((w.get("metrics") or {}).get("memory") or 0),
                "memory_limit_bytes": int(w.get("memory_limit") or 0),
                "processing": len(processing.get(addr, ()) or ()),
            }
            for addr, w in sorted((info.get("workers") or {}).items())
        ]
        return DaskFigures(address, True, workers=workers)
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, timed out, bad address: all "unreachable"
        why = (str(exc).splitlines() or [type(exc).__name__])[0][:200] or type(exc).__name__
        return DaskFigures(address, False, why)
    finally:
        if client is not None:
            try:
                client.close(timeout=timeout)
            except Exception:  # noqa: BLE001, S110 - closing a broken client
                pass


def dask_status(
    address: str | None = None, *, timeout: float = DASK_TIMEOUT_S, max_age: float = DASK_CACHE_S
) -> DaskFigures | None:
    """The Dask cluster at `address` (default MLOPS_DASK_SCHEDULER; None when unset): its workers with threads,
    memory and tasks processing, from `distributed.Client.scheduler_info()` within `timeout` seconds, or
    unreachable with the reason. Cached `max_age` seconds per address (an unreachable one 60 s at least), so a page
    or a scrape waits at most once in a while."""
    address = address if address is not None else get_settings().dask_scheduler
    if not address:
        return None
    with _cache_lock:
        hit = _dask_cache.get(address)
    # An unreachable scheduler is asked again after a minute at the soonest: each probe waits out the timeout.
    if hit is not None and time.monotonic() - hit[0] < (max_age if hit[1].reachable else max(max_age, 60.0)):
        return hit[1]
    figures = _probe_dask(address, timeout)
    with _cache_lock:
        _dask_cache[address] = (time.monotonic(), figures)
    return figures


def scaling_status(db: Database, *, now: datetime | None = None, with_dask: bool = True) -> ScalingStatus:
    """Queue, worker utilisation, replica load, the Dask cluster, and the advice those figures give."""
    now = now or utcnow()
    t = Thresholds.from_settings(get_settings())
    queue_ = queue_figures(db, now=now)
    workers = worker_utilisation(db, now=now)
    replicas = replica_loads(db, now=now)
    dask = dask_status() if with_dask else None
    return ScalingStatus(queue_, workers, replicas, dask, advise(queue_, workers, replicas, dask, t), t)


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float | int | None) -> str:
    if x is None:
        return "NaN"
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def render_prometheus(st: ScalingStatus) -> str:
    """The scaling figures in Prometheus' text format, all named mlops_* (see docs/autoscaling.md)."""
    q = st.queue
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float | int | None]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_num(v)}" for labels, v in samples)

    metric("mlops_jobs_waiting", "gauge", "Jobs queued and due, not yet started (the whole hub).", [("", q.waiting)])
    metric("mlops_jobs_running", "gauge", "Jobs running on workers.", [("", q.running)])
    metric(
        "mlops_job_oldest_wait_seconds",
        "gauge",
        "How long the oldest waiting job has waited (0 when none waits).",
        [("", float(q.oldest_wait_s or 0.0))],
    )
    lines.append(
        "# HELP mlops_job_queue_wait_seconds Wait of the jobs started in the window (started - enqueued or due)."
    )
    lines.append("# TYPE mlops_job_queue_wait_seconds summary")
    for window, p50, p95, n, total in (
        ("1h", q.p50_1h, q.p95_1h, q.n_1h, q.sum_1h),
        ("24h", q.p50_24h, q.p95_24h, q.n_24h, q.sum_24h),
    ):
        # No job started in the window: 0, not NaN (an autoscaler's query must stay a number).
        lines.append(f'mlops_job_queue_wait_seconds{{window="{window}",quantile="0.5"}} {_num(p50 or 0.0)}')
        lines.append(f'mlops_job_queue_wait_seconds{{window="{window}",quantile="0.95"}} {_num(p95 or 0.0)}')
        lines.append(f'mlops_job_queue_wait_seconds_sum{{window="{window}"}} {_num(float(total))}')
        lines.append(f'mlops_job_queue_wait_seconds_count{{window="{window}"}} {n}')
    alive = [w for w in st.workers if w.status in ("running", "stopping")]
    metric("mlops_workers_running", "gauge", "Worker processes with a fresh heartbeat.", [("", len(alive))])
    metric(
        "mlops_worker_busy_ratio",
        "gauge",
        "Share of the last hour each worker process spent running jobs (x its concurrency).",
        [(f'{{worker="{_label(w.name)}"}}', round(w.busy_ratio, 4)) for w in alive],
    )
    live = [r for r in st.replicas if r.status == "running"]
    metric(
        "mlops_replicas_running",
        "gauge",
        "HTTP service processes (scoring replicas) with a fresh heartbeat.",
        [("", len(live))],
    )
    metric(
        "mlops_replica_requests_per_second",
        "gauge",
        "Scoring requests per second of each replica over its last heartbeat interval.",
        [(f'{{replica="{_label(r.name)}"}}', r.requests_per_s) for r in live],
    )
    metric(
        "mlops_replica_in_flight",
        "gauge",
        "HTTP requests being answered by each replica at its last heartbeat.",
        [(f'{{replica="{_label(r.name)}"}}', r.in_flight) for r in live],
    )
    metric(
        "mlops_replica_latency_p95_seconds",
        "gauge",
        "p95 latency of predict requests of each replica over its last heartbeat interval (0: no request).",
        [(f'{{replica="{_label(r.name)}"}}', 0.0 if r.p95_ms is None else r.p95_ms / 1000) for r in live],
    )
    metric(
        "mlops_replica_cpu_percent",
        "gauge",
        "CPU of each replica process (100 = one core).",
        [(f'{{replica="{_label(r.name)}"}}', r.cpu_percent) for r in live],
    )
    if st.dask is not None:
        d, a = st.dask, f'{{scheduler="{_label(st.dask.address)}"}}'
        metric(
            "mlops_dask_up",
            "gauge",
            "1 when the Dask scheduler (MLOPS_DASK_SCHEDULER) answered.",
            [(a, int(d.reachable))],
        )
        metric("mlops_dask_workers", "gauge", "Dask workers connected to the scheduler.", [(a, d.n_workers)])
        metric("mlops_dask_threads", "gauge", "Threads over all Dask workers.", [(a, d.threads)])
        metric("mlops_dask_memory_bytes", "gauge", "Memory used by all Dask workers.", [(a, d.memory_bytes)])
        metric("mlops_dask_tasks_processing", "gauge", "Tasks assigned to Dask workers.", [(a, d.processing)])
    direction = {"add": 1, "remove": -1}
    advice = {t: 0 for t in ("workers", "replicas", "dask")}
    for item in st.advice:
        if item.target in advice and item.level in direction:
            advice[item.target] = direction[item.level]
    metric(
        "mlops_scaling_advice",
        "gauge",
        "The Infrastructure page's advice: 1 add, -1 one fewer, 0 leave as is.",
        [(f'{{target="{t}"}}', v) for t, v in advice.items()],
    )
    return "\n".join(lines) + "\n"


def prometheus_text(db: Database, *, max_age: float | None = None) -> str:
    """render_prometheus(scaling_status(db)), cached `max_age` seconds per database (scrapes are frequent)."""
    key = db.url
    max_age = METRICS_CACHE_S if max_age is None else max_age
    with _cache_lock:
        hit = _metrics_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return hit[1]
    text = render_prometheus(scaling_status(db))
    with _cache_lock:
        _metrics_cache[key] = (time.monotonic(), text)
    return text
