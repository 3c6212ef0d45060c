"""Every MLOps Hub process with its CPU, memory, uptime and last heartbeat (issue 15, problem 13).

Workers report CPU and memory with their heartbeat (the `workers` table). The UI and the scoring service keep
no heartbeat row: they are found on this host by their command line (`up` starts them as
`streamlit run hub_server.py` and `python -m mlops_core serve`), and the scoring service is asked for
`/healthz` — its answer is its heartbeat. On a team install with processes on other hosts, only workers
(which report through the database) and the processes of this host are listed."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import httpx
import psutil
from pydantic import BaseModel

from .. import jobs
from ..db import Database
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
    if not scoring and beat is not None:
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
