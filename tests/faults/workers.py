"""Real worker processes for the fault tests: start them, wait with a deadline, enqueue jobs.
The fixtures that use these (`workers_for`, `db_url`, `sqlite_url`) are in tests/faults/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mlops_core import jobs
from mlops_core.config import PROJECT_ROOT
from mlops_core.db import Database

HEARTBEAT_TIMEOUT = 3


class Workers:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self, url: str, tmp: Path):
        self.url = url
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str, scheduler: bool = False) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "ARTIFACT_ROOT": str(self.tmp / "artifacts"),
            "MLOPS_JOB_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "MLOPS_WORKER_POLL_SECONDS": "0.2",
            "MLOPS_SCHEDULER": "true" if scheduler else "false",
            "MLOPS_LOG_LEVEL": "INFO",
        }
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(
            [sys.executable, "-m", "mlops_core", "worker", "--name", name, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def dump(self) -> str:
        out = []
        for f in sorted(self.tmp.glob("*.log")):
            out.append(f"--- {f.name} (last lines)\n" + "\n".join(f.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(out)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


# Workers of the running test, so a timeout can print their logs.
_current: list[Workers] = []


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    logs = "".join(w.dump() for w in _current)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{logs}")


def enqueue(db: Database, kind: str, payload: dict, **kw) -> int:
    with db.unit_of_work() as s:
        return jobs.enqueue(s, kind=kind, payload=payload, **kw)


def status(db: Database, job_id: int) -> str:
    return jobs.get_job(db, job_id).status
