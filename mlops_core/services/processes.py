"""Every MLOps Hub process with its CPU, memory, uptime and last heartbeat (issue 15, problem 13).

Workers report CPU and memory with their heartbeat (the `workers` table). The UI and the scoring service keep
no heartbeat row: they are found on this host by their command line (`up` starts them as
`streamlit run hub_server.py` and `python -m mlops_core serve`), and the scoring service is asked for
`/healthz` — its answer is its heartbeat. Only the processes of this hub are listed: those whose database
(their DATABASE_URL, else the default of the directory they run in) is this one's, not other hubs on the same
host. On a team install with processes on other hosts, only workers
(which report through the database) and the processes of this host are listed."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from .. import jobs
from ..db import Database, normalise_url, utcnow
from ..models.infra import ServiceReplica, ServiceReplicaPublic
from ..models.jobs import WorkerPublic
from . import scoring_examples
from ._common import aware


class ProcessPublic(BaseModel):
    kind: str  # UI | worker | scoring service
    name: str
    host: str
    pid: int
    status: str  # running | stopping | stopped | lost | not answering
    cpu_percent: float | None
    rss_mb: float | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    note: str = ""


def _kind(cmdline: list[str]) -> str | None:
    text = " ".join(cmdline)
    if "streamlit" in text and ("hub_server.py" in text or "app.py" in text) and " run " in f" {text} ":
        return "UI"
    if "mlops_core" in text and " serve" in f" {text}":
        return "scoring service"
    return None


def _same_database(url: str, other: str) -> bool:
    """Two database URLs name the same database (SQLite paths compared resolved; no password compared)."""
    url, other = normalise_url(url), normalise_url(other)
    if url.startswith("sqlite") and other.startswith("sqlite"):
        return Path(url.split(":///", 1)[-1]).resolve() == Path(other.split(":///", 1)[-1]).resolve()
    try:
        a, b = make_url(url), make_url(other)
    except Exception:  # noqa: BLE001 - an unparseable URL is no match
        return False
    return (a.drivername, a.host, a.port, a.database) == (b.drivername, b.host, b.port, b.database)


def _database_of(p: psutil.Process) -> str | None:
    """The DATABASE_URL a hub process runs against: its environment's, else the default its working
    directory implies (data/mlops_hub.db under the checkout it was started from). None when unreadable."""
    try:
        env = p.environ()
        url = next((v for k, v in env.items() if k.upper() == "DATABASE_URL"), None)
        return url or f"sqlite:///{Path(p.cwd()) / 'data' / 'mlops_hub.db'}"
    except (psutil.Error, OSError):
        return None


def _local(kind: str, p: psutil.Process, now: float) -> ProcessPublic:
    with p.oneshot():
        created = p.create_time()
        times = p.cpu_times()
        rss = p.memory_info().rss / 2**20
    # Average over the process's life: one sample is all a page render can afford (no 0.1 s wait per process).
    cpu = 100.0 * (times.user + times.system) / max(now - created, 1e-6)
    return ProcessPublic(
        kind=kind,
        name=f"{kind} (pid {p.pid})",
        host=os.uname().nodename,
        pid=p.pid,
        status="running",
        cpu_percent=round(cpu, 1),
        rss_mb=round(rss, 1),
        started_at=datetime.fromtimestamp(created, UTC),
        heartbeat_at=datetime.fromtimestamp(now, UTC) if kind == "UI" else None,
        note="CPU averaged since start",
    )


def _scoring_heartbeat(timeout: float = 0.5) -> datetime | None:
    try:
        r = httpx.get(f"{scoring_examples.scoring_base_url()}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return None
    return datetime.now(UTC) if r.status_code == 200 else None


def list_processes(db: Database) -> list[ProcessPublic]:
    now = time.time()
    out: list[ProcessPublic] = []
    found: set[int] = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            kind = _kind(p.info.get("cmdline") or [])
            if kind is None or p.pid in found:
                continue
            # another hub on the same host (its own database) is not this hub's process
            theirs = _database_of(p)
            if theirs is None or not _same_database(theirs, db.url):
                continue
            # `up` runs `python -m streamlit run ...`: skip a wrapper whose child is the same kind.
            out.append(_local(kind, p, now))
            found.add(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    if os.getpid() not in found:
        try:
            me = _local("UI", psutil.Process(os.getpid()), now)
            out.append(me.model_copy(update={"name": f"UI (pid {me.pid}, this page)"}))
        except psutil.Error:
            pass
    beat = _scoring_heartbeat()
    scoring = [p for p in out if p.kind == "scoring service"]
    for i, p in enumerate(out):
        if p.kind == "scoring service":
            out[i] = p.model_copy(update={"heartbeat_at": beat, "status": "running" if beat else "not answering"})
    # Replicas of the HTTP service on other hosts report through the database (service_replicas).
    here = os.uname().nodename
    remote = [r for r in list_replicas(db) if not (r.hostname == here and r.pid in found)]
    for r in remote:
        out.append(
            ProcessPublic(
                kind="scoring service",
                name=f"scoring service {r.name}",
                host=r.hostname,
                pid=r.pid,
                status=r.status,
                cpu_percent=r.cpu_percent,
                rss_mb=r.rss_mb,
                started_at=r.started_at,
                heartbeat_at=r.heartbeat_at,
                note="reports its load with its heartbeat",
            )
        )
    if not scoring and not remote and beat is not None:
        out.append(
            ProcessPublic(
                kind="scoring service",
                name=f"scoring service at {scoring_examples.scoring_base_url()}",
                host="(another host)",
                pid=0,
                status="running",
                cpu_percent=None,
                rss_mb=None,
                started_at=None,
                heartbeat_at=beat,
                note="answers /healthz; runs elsewhere",
            )
        )
    for w in jobs.list_workers(db, include_stopped=False, limit=50):
        out.append(_worker(w))
    order = {"UI": 0, "scoring service": 1, "worker": 2}
    return sorted(out, key=lambda p: (order.get(p.kind, 3), p.name))


def _worker(w: WorkerPublic) -> ProcessPublic:
    return ProcessPublic(
        kind="worker",
        name=w.name + (" (scheduler)" if w.is_scheduler else ""),
        host=w.hostname,
        pid=w.pid,
        status=w.status,
        cpu_percent=round(w.cpu_percent, 1),
        rss_mb=round(w.rss_mb, 1),
        started_at=aware(w.started_at),
        heartbeat_at=aware(w.heartbeat_at),
        note=f"job {w.current_job_id}" if w.current_job_id else "",
    )


# --- scoring replicas (the HTTP service's heartbeat, issue 16 "scaled as needed") ---------------------------

# Each HTTP service process writes its row this often; a row older than REPLICA_LOST_AFTER_S is shown as lost.
REPLICA_HEARTBEAT_S = 5.0
REPLICA_LOST_AFTER_S = 30.0
# Stopped or lost replica rows are forgotten after this long (one row per process start would pile up).
REPLICA_ROWS_KEPT_FOR = timedelta(days=1)


def replica_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def record_replica_heartbeat(
    db: Database,
    *,
    name: str,
    started_at: datetime,
    requests_per_s: float,
    in_flight: int,
    p95_ms: float | None,
    cpu_percent: float,
    rss_mb: float,
    requests_total: int,
    status: str = "running",
) -> None:
    """Write this replica's row (insert or update; only this process writes it) and forget long-gone replicas.
    A system write like a worker's heartbeat: no actor, no audit event."""
    now = utcnow()
    values = dict(
        status=status,
        heartbeat_at=now,
        requests_per_s=round(float(requests_per_s), 3),
        in_flight=int(in_flight),
        p95_ms=None if p95_ms is None else round(float(p95_ms), 2),
        cpu_percent=round(float(cpu_percent), 1),
        rss_mb=round(float(rss_mb), 1),
        requests_total=int(requests_total),
    )
    with db.unit_of_work() as s:
        row = s.exec(select(ServiceReplica).where(ServiceReplica.name == name)).first()
        if row is None:
            host, _, pid = name.rpartition(":")
            row = ServiceReplica(name=name, hostname=host, pid=int(pid) if pid.isdigit() else 0, started_at=started_at)
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)
        s.execute(
            delete(ServiceReplica).where(
                col(ServiceReplica.heartbeat_at) < now - REPLICA_ROWS_KEPT_FOR, ServiceReplica.name != name
            )
        )


def list_replicas(
    db: Database, *, include_stopped: bool = False, now: datetime | None = None
) -> list[ServiceReplicaPublic]:
    """The HTTP service processes that reported in the last day, newest first; a silent one is "lost"."""
    now = now or utcnow()
    with db.read() as s:
        rows = s.exec(
            select(ServiceReplica)
            .where(col(ServiceReplica.heartbeat_at) >= now - REPLICA_ROWS_KEPT_FOR)
            .order_by(col(ServiceReplica.heartbeat_at).desc())
            .limit(200)
        ).all()
        out = []
        for r in rows:
            p = ServiceReplicaPublic.model_validate(r, from_attributes=True)
            p.started_at, p.heartbeat_at = aware(p.started_at), aware(p.heartbeat_at)
            if p.status == "running" and (now - p.heartbeat_at).total_seconds() > REPLICA_LOST_AFTER_S:
                p.status = "lost"
            if include_stopped or p.status == "running":
                out.append(p)
    return out
