"""Benchmark: tracking throughput and run queries, MLOps Hub vs MLflow's SQLite tracking store.

Workload (both sides): 1,000 runs x 10 params x 20 metrics x 10 steps logged through the SDK a
notebook uses (ours over HTTP to a `serve` process on a SQLite database, as a notebook does), then "top 10 runs by a metric" and the compare query for those 10 runs (median of 20).
Target: at least 5x faster than MLflow on logging and on the queries.

MLflow runs in its own virtualenv (.venv-bench, created here from requirements-bench.txt when missing)
as a subprocess, so its pins never touch our environment.

Run: ``.venv/bin/python benchmarks/tracking.py [--runs N]`` from the repository root. The last line is JSON.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_VENV = ROOT / ".venv-bench"
TARGET_SPEEDUP = 5.0


def ensure_bench_venv() -> Path:
    py = BENCH_VENV / "bin" / "python"
    if not py.exists():
        print("creating .venv-bench for MLflow (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements-bench.txt")], check=True)
    return py


def start_hub() -> str:
    """`python -m mlops_core serve` on a free port with this process's environment; stopped at exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "serve", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the Hub did not start at {url}")


def run_ours(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-tracking-"))
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'hub.db'}"
    os.environ["ARTIFACT_ROOT"] = str(tmp / "artifacts")
    from mlops_core.config import reload_settings

    reload_settings()
    from mlops_core import tracking
    from mlops_core.db import get_database, upgrade_schema
    from mlops_core.demo.customers import make_customers
    from mlops_core.services import datasets, experiments, usecases, users
    from mlops_core.services.auth import Actor

    db = get_database()
    upgrade_schema(db)
    system = Actor.system()
    for name, role in (("alice", "business"), ("dan", "data_engineer"), ("sara", "data_scientist")):
        users.create_user(db, actor=system, username=name, password="benchmark-password-1", role=role)
    alice = users.actor_for_username(db, username="alice")
    dan = users.actor_for_username(db, username="dan")
    uc = usecases.create_use_case(db, actor=alice, title="Benchmark churn")
    ref = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="bench", frame=make_customers(200), use_case_id=uc.id
    ).ref
    os.environ["MLOPS_TOKEN"] = users.create_token(db, actor=system, username="sara")
    # The SDK talks HTTP only: a `serve` process on this database is the Hub it logs to.
    os.environ["MLOPS_HUB_URL"] = start_hub()

    t0 = time.perf_counter()
    for i in range(args.runs):
        with tracking.start_run(use_case=uc.id, dataset=ref, name=f"run {i}") as run:
            run.log_params({f"p{j}": (i * 7 + j) % 13 for j in range(args.params)})
            for step in range(args.steps):
                run.log_metrics(
                    {f"m{j}": ((i * 31 + j * 7 + step) % 1000) / 1000.0 for j in range(args.metrics)}, step=step
                )
    log_seconds = time.perf_counter() - t0

    def timed(fn):
        times, out = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    top_s, top = timed(lambda: experiments.list_runs(db, sort="metric:m0", limit=10, with_total=False))
    ids = [r.id for r in top]
    cmp_s, cmp = timed(lambda: experiments.compare_runs(db, run_ids=ids))
    assert len(cmp.runs) == len(ids) == 10
    return {
        "log_seconds": log_seconds,
        "top10_seconds": top_s,
        "compare_seconds": cmp_s,
        "top_values": [r.metrics["m0"] for r in top],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--params", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    workload = f"{args.runs} runs x {args.params} params x {args.metrics} metrics x {args.steps} steps"
    print(f"workload: {workload}", flush=True)

    ours = run_ours(args)
    print(
        f"MLOps Hub: logging {ours['log_seconds']:.2f} s, top 10 {ours['top10_seconds'] * 1000:.2f} ms, "
        f"compare {ours['compare_seconds'] * 1000:.2f} ms",
        flush=True,
    )

    py = ensure_bench_venv()
    proc = subprocess.run(
        [
            str(py),
            str(ROOT / "benchmarks" / "_mlflow_tracking_side.py"),
            "--runs",
            str(args.runs),
            "--params",
            str(args.params),
            "--metrics",
            str(args.metrics),
            "--steps",
            str(args.steps),
            "--repeat",
            str(args.repeat),
        ],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("the MLflow side failed (see above)")
    mlf = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"MLflow {mlf['mlflow']} (SQLite store): logging {mlf['log_seconds']:.2f} s, top 10 "
        f"{mlf['top10_seconds'] * 1000:.2f} ms, compare {mlf['compare_seconds'] * 1000:.2f} ms",
        flush=True,
    )
    same_top = sorted(ours["top_values"]) == sorted(mlf["top_values"])
    print(f"same top-10 metric values on both sides: {same_top}")

    figures = []
    for key, label in (
        ("log_seconds", f"log {workload}"),
        ("top10_seconds", "top 10 runs by a metric"),
        ("compare_seconds", "compare query (10 runs)"),
    ):
        ratio = mlf[key] / ours[key] if ours[key] > 0 else float("inf")
        print(f"{label}: ours {ours[key]:.4f} s, MLflow {mlf[key]:.4f} s, {ratio:.1f}x faster")
        figures.append(
            {
                "figure": label,
                "ours": round(ours[key], 4),
                "baseline": round(mlf[key], 4),
                "baseline_name": f"MLflow {mlf['mlflow']} SQLite tracking store",
                "unit": "s",
                "target": f">= {TARGET_SPEEDUP:g}x faster",
                "met": bool(ratio >= TARGET_SPEEDUP),
            }
        )
    print(json.dumps({"benchmark": "tracking", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
