"""The durable job queue, periodic schedules, worker processes and the scheduler lease.

Jobs live in the database so that any worker on any machine can run them and nothing is
lost when a process dies (see mlops_core/jobs/queue.py for the claim and the reaper).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from ..db import utcnow

JOB_STATUSES: tuple[str, ...] = ("queued", "running", "finished", "failed", "cancelled")
FINAL_STATUSES: tuple[str, ...] = ("finished", "failed", "cancelled")


class Job(SQLModel, table=True):
    """One unit of background work (training, ingestion, a monitor run...).

    `status`: queued -> running -> finished | failed | cancelled (a failed attempt with
    attempts left goes back to queued). `dedupe_key` is unique, so a scheduled firing or a
    double-clicked button enqueues one job only.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # The claim query: the oldest queued job whose time has come.
        Index("ix_jobs_status_available", "status", "available_at"),
        # Queue wait and utilisation figures read the jobs started in the last hour / day.
        Index("ix_jobs_started_at", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=16)
    dedupe_key: str | None = Field(default=None, max_length=255, unique=True)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=1)
    cancel_requested: bool = Field(default=False)
    # Name of the worker that holds (or last held) the job.
    claimed_by: str | None = Field(default=None, max_length=128)
    progress: float = Field(default=0.0)
    progress_message: str = Field(default="", max_length=500)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # A queued job is not claimed before this time (retry back-off).
    available_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None


class JobPublic(BaseModel):
    """What pages and services see of a job."""

    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    dedupe_key: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    claimed_by: str | None
    progress: float
    progress_message: str
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Schedule(SQLModel, table=True):
    """Periodic work: every `interval_seconds`, or on a 5-field `cron` expression (UTC)."""

    __tablename__ = "schedules"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    interval_seconds: int | None = None
    cron: str | None = Field(default=None, max_length=120)
    enabled: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_fired_at: datetime | None = None
    last_job_id: int | None = None


class SchedulePublic(BaseModel):
    id: int
    name: str
    kind: str
    payload: dict[str, Any]
    interval_seconds: int | None
    cron: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_fired_at: datetime | None
    last_job_id: int | None


class Worker(SQLModel, table=True):
    """One row per worker process, refreshed by its heartbeat (read by the Infrastructure page)."""

    __tablename__ = "workers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True, index=True)
    hostname: str = Field(default="", max_length=255)
    pid: int = Field(default=0)
    # "running", "stopping", "stopped" (clean exit) or "lost" (no heartbeat).
    status: str = Field(default="running", max_length=16)
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None
    is_scheduler: bool = Field(default=False)
    concurrency: int = Field(default=1)
    cpu_percent: float = Field(default=0.0)
    rss_mb: float = Field(default=0.0)
    current_job_id: int | None = None
    jobs_done: int = Field(default=0)
    jobs_failed: int = Field(default=0)


class WorkerPublic(BaseModel):
    id: int
    name: str
    hostname: str
    pid: int
    status: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    is_scheduler: bool
    concurrency: int
    cpu_percent: float
    rss_mb: float
    current_job_id: int | None
    jobs_done: int
    jobs_failed: int


class Lease(SQLModel, table=True):
    """A named lease (e.g. "scheduler"): held by `holder` until `expires_at`, renewed while alive."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    acquired_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(default_factory=utcnow)
