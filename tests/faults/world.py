"""Helpers for the fault suite: a deployed churn model with an API key, and real scoring / UI processes.

Workers are started with `tests/faults/test_worker_faults.py::Workers` (same env, same logs); the
scoring service (`python -m mlops_core serve`) and the UI (`streamlit run app.py`) with `Services`
below. Every process logs to `<tmp>/<name>.log`, so `wait_for` timeouts print their last lines.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from mlops_core.config import PROJECT_ROOT
from mlops_core.db import Database
from tests.conftest import make_people


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Deployed:
    name: str
    deployment_id: int
    model_version_id: int
    key: str
    record: dict  # one valid record for the model


def seed_deployment(db: Database, name: str = "churn") -> Deployed:
    """The five role users, a use case, a validated dataset, a trained and registered model deployed to
    production through the gates (business sign-off), and an API key: the deployment engineer's path."""
    from mlops_core.services import apikeys, collab, deployments
    from tests.services.deployments_world import make_world

    people = make_people(db)
    w = make_world(db, people, n=200)
    mv_id = w.versions[0]
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=mv_id, deployment_name=name, environment="production"
    )
    so = next(s for s in collab.signoffs_for(db, "model_version", mv_id) if s.status == "pending")
    collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True, reason="fault suite")
    dep = deployments.deploy(db, actor=people["ops"], request_id=req.id)
    _, key = apikeys.create_key(db, actor=people["ops"], deployment_name=name, name="fault suite")
    from mlops_core.services import registry

    mv = registry.get_model_version(db, mv_id)
    record = {c["name"]: _sample(c) for c in mv.input_schema}
    return Deployed(name=name, deployment_id=dep.id, model_version_id=mv_id, key=key, record=record)


def _sample(col: dict):
    kind = col.get("type")
    if kind == "category":
        return str((col.get("categories") or ["a"])[0])
    if kind == "boolean":
        return True
    if kind == "string":
        return "x"
    if kind == "integer":
        return 3
    return 1.5


def ok_request_ids(db: Database, deployment_id: int | None = None) -> list[str]:
    """request_id of every logged prediction with status "ok" (one row per scored record)."""
    q = "SELECT request_id FROM predictions WHERE status = 'ok'"
    params = {}
    if deployment_id is not None:
        q += " AND deployment_id = :d"
        params["d"] = deployment_id
    with db.engine.connect() as c:
        return [r[0] for r in c.execute(text(q), params)]


def count_rows(db: Database, table: str, where: str = "") -> int:
    with db.engine.connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def terminate_connections(url: str, *, rounds: int = 5, pause: float = 0.2) -> int:
    """pg_terminate_backend every connection to this database (not the shared server), a few times
    in a row; returns how many backends were terminated in all."""
    dbname = url.rsplit("/", 1)[1]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    killed = 0
    try:
        with admin.connect() as c:
            for _ in range(rounds):
                rows = c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": dbname},
                ).all()
                killed += sum(1 for r in rows if r[0])
                time.sleep(pause)
    finally:
        admin.dispose()
    return killed


class Services:
    """Starts scoring services and UIs as real processes (own process groups) and stops them."""

    def __init__(self, url: str, tmp: Path, artifact_root: Path):
        self.url = url
        self.tmp = tmp
        self.env = {**os.environ, "DATABASE_URL": url, "ARTIFACT_ROOT": str(artifact_root), "MLOPS_LOG_LEVEL": "INFO"}
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def serve(self, name: str, dep: Deployed, *, timeout: float = 120) -> str:
        """Start `python -m mlops_core serve` and wait until it serves `dep`; returns its base URL."""
        return self.wait_serving(name, self.start_serve(name), dep, timeout=timeout)

    def start_serve(self, name: str) -> str:
        port = free_port()
        self._start(name, [sys.executable, "-m", "mlops_core", "serve", "--port", str(port), "--log-level", "info"])
        return f"http://127.0.0.1:{port}"

    def wait_serving(self, name: str, base: str, dep: Deployed, *, timeout: float = 120) -> str:
        p = self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise AssertionError(f"{name} exited early ({p.returncode}):\n{self.log(name)[-3000:]}")
            try:
                r = httpx.get(
                    f"{base}/v1/deployments/{dep.name}", headers={"Authorization": f"Bearer {dep.key}"}, timeout=2
                )
                if r.status_code == 200 and r.json().get("model_version"):
                    return base
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} did not serve {dep.name} within {timeout:g} s:\n{self.log(name)[-3000:]}")

    def ui(self, name: str = "ui", *, timeout: float = 120) -> str:
        """Start `streamlit run app.py` (as `python -m mlops_core ui` does) and wait for /_stcore/health."""
        from mlops_core.cli.up import streamlit_argv

        port = free_port()
        p = self._start(name, streamlit_argv(port))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise AssertionError(f"{name} exited early ({p.returncode}):\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{name} did not come up within {timeout:g} s:\n{self.log(name)[-3000:]}")

    def terminate(self, name: str, timeout: float = 40) -> int:
        """SIGTERM (clean shutdown) and wait; returns the exit code."""
        p = self.procs[name]
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout=timeout)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)


def predict(client: httpx.Client, base: str, dep: Deployed, record: dict | None = None) -> tuple[int, str | None]:
    """One single-record request; (HTTP status, request_id of a 200)."""
    r = client.post(
        f"{base}/v1/deployments/{dep.name}/predict",
        json={"records": [record or dep.record]},
        headers={"Authorization": f"Bearer {dep.key}"},
    )
    return r.status_code, (r.json()["request_id"] if r.status_code == 200 else None)


# --- a light keep-alive load client (raw asyncio sockets: on a 2-core box httpx in 8 threads costs more
# CPU than the service it measures) ------------------------------------------------------------------


async def _load_client(host: str, port: int, request: bytes, count: int, out: list, statuses: dict) -> None:
    import asyncio
    import json

    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            body = await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                out.append(json.loads(body)["request_id"])
    finally:
        writer.close()


def load(base: str, dep: Deployed, *, total: int, clients: int) -> tuple[list[str], dict[int, int], float]:
    """`total` single-record predict requests over `clients` concurrent keep-alive connections.
    Returns (request ids answered 200, {status: count}, seconds)."""
    import asyncio
    import json
    from urllib.parse import urlsplit

    u = urlsplit(base)
    body = json.dumps({"records": [dep.record]}).encode()
    request = (
        f"POST /v1/deployments/{dep.name}/predict HTTP/1.1\r\nHost: {u.netloc}\r\n"
        f"Authorization: Bearer {dep.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ids: list[str] = []
    statuses: dict[int, int] = {}
    share = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]

    async def main():
        await asyncio.gather(*[_load_client(u.hostname, u.port, request, n, ids, statuses) for n in share])

    t = time.monotonic()
    asyncio.run(main())
    return ids, statuses, time.monotonic() - t


def stopped_cleanly(svc: "Services", name: str) -> bool:
    """uvicorn re-raises SIGTERM after its graceful shutdown: a clean stop exits 0 or -SIGTERM after
    'Application shutdown complete'."""
    code = svc.terminate(name)
    return code in (0, -signal.SIGTERM) and "Application shutdown complete" in svc.log(name)
