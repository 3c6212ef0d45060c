"""Benchmark: what the worker adds to a training run. Target: a run through the worker takes <= 1.1x the
same pipeline fitted directly.

Direct: `training.validate_config` + `training.train` (fit + evaluation + plots) + `dump_model`, in this
process, on the same DataFrame. Through the worker: `experiments.start_run` (queued with its job) until
the run is "finished", with a real `python -m mlops_core worker` process already running (claim, job
process, loading the Parquet dataset version, storing model, metrics and plots in the database).

Run: ``.venv/bin/python benchmarks/training_overhead.py`` from the repository root. The last line is JSON.
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
TARGET_RATIO = 1.1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--trees", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-training-"))
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'hub.db'}",
        "ARTIFACT_ROOT": str(tmp / "artifacts"),
        "MLOPS_WORKER_POLL_SECONDS": "0.2",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "ARTIFACT_ROOT")})
    from mlops_core.config import reload_settings

    reload_settings()
    from mlops_core.ml import persistence, training
    from mlops_core.db import get_database, upgrade_schema
    from mlops_core.demo.customers import make_customers
    from mlops_core.services import datasets, experiments, usecases, users
    from mlops_core.services.auth import Actor

    db = get_database()
    upgrade_schema(db)
    system = Actor.system()
    for name, role in (("alice", "business"), ("dan", "data_engineer"), ("sara", "data_scientist")):
        users.create_user(db, actor=system, username=name, password="benchmark-password-1", role=role)
    alice, dan, sara = (users.actor_for_username(db, username=u) for u in ("alice", "dan", "sara"))
    uc = usecases.create_use_case(db, actor=alice, title="Benchmark churn")
    frame = make_customers(args.rows, seed=1)
    version = datasets.register_version_from_frame(db, actor=dan, dataset_name="bench", frame=frame, use_case_id=uc.id)
    frame = datasets.load_frame(db, version.id)  # exactly the data the worker will read
    config = {
        "target": "churned",
        "algorithm": "random_forest",
        "params": {"n_estimators": args.trees},
        "split": "holdout",
        "test_size": 0.2,
        "seed": 42,
    }
    print(
        f"workload: random forest, {args.trees} trees, {args.rows:,} rows, holdout; {args.repeat} repeats", flush=True
    )

    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "worker", "--no-scheduler", "--name", "bench"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Warm up both sides (imports, the worker's job process) with a tiny run.
        warm = experiments.start_run(
            db,
            actor=sara,
            use_case_id=uc.id,
            dataset_version_id=version.id,
            config=dict(config, params={"n_estimators": 2}),
        )
        _wait(db, experiments, warm.id)
        training.train(frame, training.validate_config(frame, dict(config, params={"n_estimators": 2})))

        direct, through = [], []
        for i in range(args.repeat):
            t = time.perf_counter()
            cfg = training.validate_config(frame, config)
            result = training.train(frame, cfg)
            persistence.dump_model(result.pipeline)
            direct.append(time.perf_counter() - t)

            t = time.perf_counter()
            run = experiments.start_run(db, actor=sara, use_case_id=uc.id, dataset_version_id=version.id, config=config)
            done = _wait(db, experiments, run.id)
            through.append(time.perf_counter() - t)
            assert done.status == "finished", done.error
            assert done.metrics == result.test_metrics, "the worker and the direct fit must agree"
            print(f"repeat {i + 1}: direct {direct[-1]:.2f} s, through the worker {through[-1]:.2f} s", flush=True)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)

    # Best of N on both sides (as timeit does): on a shared machine the minimum is the least disturbed figure.
    d, w = min(direct), min(through)
    ratio = w / d
    print(f"median direct {statistics.median(direct):.2f} s, through the worker {statistics.median(through):.2f} s")
    print(
        f"best of {args.repeat}: direct {d:.2f} s, through the worker {w:.2f} s, ratio {ratio:.3f}x (target <= {TARGET_RATIO}x)"
    )
    print(
        json.dumps(
            {
                "benchmark": "training_overhead",
                "figures": [
                    {
                        "figure": "training run through the worker vs direct fit",
                        "ours": round(w, 3),
                        "baseline": round(d, 3),
                        "baseline_name": "same pipeline fitted directly",
                        "unit": "s",
                        "target": f"<= {TARGET_RATIO}x the direct fit",
                        "met": bool(ratio <= TARGET_RATIO),
                    },
                ],
            }
        )
    )
    return 0


def _wait(db, experiments, run_id: int, timeout: float = 900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = experiments.get_run(db, run_id)
        if run.status in ("finished", "failed", "cancelled"):
            return run
        time.sleep(0.05)
    raise SystemExit(f"run {run_id} did not finish within {timeout:.0f} s; is the worker running?")


if __name__ == "__main__":
    raise SystemExit(main())
