"""The MLflow half of benchmarks/tracking.py. Runs in .venv-bench (MLflow's pins never touch our env).

Same workload as ours: RUNS runs x PARAMS params x METRICS metrics x STEPS steps through the fluent
API a notebook uses (one log_metrics call per step, params in one call), against MLflow's SQLite
tracking store; then "top 10 runs by a metric" and the compare query (the selected runs, one query).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--params", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow
    from mlflow.tracking import MlflowClient

    tmp = tempfile.mkdtemp(prefix="mlflow-bench-")
    atexit.register(shutil.rmtree, tmp, True)  # leave no benchmark data behind
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    exp_id = mlflow.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
    mlflow.set_experiment(experiment_id=exp_id)
    client = MlflowClient()
    t0 = time.perf_counter()
    for i in range(a.runs):
        with mlflow.start_run(run_name=f"run {i}"):
            mlflow.log_params({f"p{j}": (i * 7 + j) % 13 for j in range(a.params)})
            for step in range(a.steps):
                mlflow.log_metrics(
                    {f"m{j}": ((i * 31 + j * 7 + step) % 1000) / 1000.0 for j in range(a.metrics)}, step=step
                )
    log_seconds = time.perf_counter() - t0

    def timed(fn):
        times, out = [], None
        for _ in range(a.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    top_s, top = timed(lambda: client.search_runs([exp_id], order_by=["metrics.m0 DESC"], max_results=10))
    ids = [r.info.run_id for r in top]
    in_list = ", ".join(f"'{i}'" for i in ids)
    cmp_s, cmp = timed(lambda: client.search_runs([exp_id], filter_string=f"attributes.run_id IN ({in_list})"))
    assert len(cmp) == len(ids)
    print(
        json.dumps(
            {
                "mlflow": mlflow.__version__,
                "log_seconds": log_seconds,
                "top10_seconds": top_s,
                "compare_seconds": cmp_s,
                "top_values": [r.data.metrics["m0"] for r in top],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
