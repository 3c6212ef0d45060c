"""Scoring replicas: one row per HTTP service process, refreshed by its heartbeat (issue 16, "scaled as needed").

Workers already report through the `workers` table; the HTTP service (scoring + Hub API) reports its load here
so that the Infrastructure page and every replica's /metrics see all replicas, not only the one they reach.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from ..db import utcnow


class ServiceReplica(SQLModel, table=True):
    __tablename__ = "service_replicas"

    id: int | None = Field(default=None, primary_key=True)
    # hostname:pid — unique per process.
    name: str = Field(max_length=200, unique=True, index=True)
    hostname: str = Field(default="", max_length=255)
    pid: int = Field(default=0)
    # "running", "stopped" (clean exit); a stale heartbeat is shown as "lost".
    status: str = Field(default="running", max_length=16)
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)
    # Over the last heartbeat interval: scoring requests per second and the p95 latency of predict requests.
    requests_per_s: float = Field(default=0.0)
    p95_ms: float | None = None
    # HTTP requests being answered at the heartbeat, and the process's CPU % (100 = one core) and memory.
    in_flight: int = Field(default=0)
    cpu_percent: float = Field(default=0.0)
    rss_mb: float = Field(default=0.0)
    requests_total: int = Field(default=0)


class ServiceReplicaPublic(BaseModel):
    id: int
    name: str
    hostname: str
    pid: int
    status: str
    started_at: datetime
    heartbeat_at: datetime
    requests_per_s: float
    p95_ms: float | None
    in_flight: int
    cpu_percent: float
    rss_mb: float
    requests_total: int
