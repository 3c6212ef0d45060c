"""The Infrastructure page's figures: worker processes, the scheduler lease, the job queue, this host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil

from .. import jobs
from ..db import Database, utcnow
from ..jobs import queue
from ..models.jobs import Lease
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
