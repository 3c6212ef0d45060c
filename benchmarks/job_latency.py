"""Benchmark: how long a queued job waits before it runs, and how many no-op jobs a worker runs per second.

A real `python -m mlops_core worker` (default poll interval, SQLite) is started and warmed up; then
(1) `--single` no-op jobs are enqueued one at a time, each waited for, and the time from enqueue to
"finished" recorded (median and p95); (2) `--batch` no-op jobs are enqueued at once and the wall time to
finish them all gives the throughput. Baseline: the worker's idle poll interval (a job cannot be seen
sooner on average than half of it).

Targets: median enqueue -> finished under 1 s; at least 5 jobs per second through one worker.
Run: ``.venv/bin/python benchmarks/job_latency.py`` from the repository root. The last line is JSON.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-jobs-"))
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'hub.db'}",
        "ARTIFACT_ROOT": str(tmp / "artifacts"),
        "MLOPS_SCHEDULER": "false",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "ARTIFACT_ROOT")})
    from mlops_core import jobs
    from mlops_core.config import get_settings, reload_settings
    from mlops_core.db import get_database, upgrade_schema

    reload_settings()
    db = get_database()
    upgrade_schema(db)
    poll = get_settings().worker_poll_seconds

    def enqueue_noop() -> int:
        with db.unit_of_work() as s:
            return jobs.enqueue(s, kind="noop", payload={})

    def wait_finished(job_id: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if jobs.get_job(db, job_id).status in ("finished", "failed", "cancelled"):
                return
            time.sleep(0.02)
        raise SystemExit(f"job {job_id} did not finish within {timeout} s")

    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "worker", "--name", "bench"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_finished(enqueue_noop())  # warm-up: worker started, fork server preloaded
        latencies = []
        for _ in range(args.single):
            t0 = time.perf_counter()
            wait_finished(enqueue_noop())
            latencies.append(time.perf_counter() - t0)
            time.sleep(poll * 0.37)  # land at various points of the poll cycle
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            ids = [jobs.enqueue(s, kind="noop", payload={}) for _ in range(args.batch)]
        for jid in ids:
            wait_finished(jid)
        batch_s = time.perf_counter() - t0
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    median = statistics.median(latencies)
    p95 = sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)]
    throughput = args.batch / batch_s
    print(
        f"enqueue -> finished, one at a time ({args.single} jobs): median {median * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (poll interval {poll:g} s)"
    )
    print(f"{args.batch} jobs at once: {batch_s:.2f} s, {throughput:.1f} jobs/s through one worker")
    figures = [
        {
            "figure": "median enqueue -> finished (no-op job)",
            "ours": round(median, 3),
            "baseline": round(poll / 2, 3),
            "baseline_name": "half the poll interval",
            "unit": "s",
            "target": "< 1 s",
            "met": median < 1.0,
        },
        {
            "figure": "p95 enqueue -> finished (no-op job)",
            "ours": round(p95, 3),
            "baseline": None,
            "baseline_name": "",
            "unit": "s",
            "target": "< 2 s",
            "met": p95 < 2.0,
        },
        {
            "figure": "no-op jobs per second, one worker",
            "ours": round(throughput, 1),
            "baseline": None,
            "baseline_name": "",
            "unit": "jobs/s",
            "target": ">= 5",
            "met": throughput >= 5,
        },
    ]
    print(json.dumps({"benchmark": "job_latency", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
