"""The MLflow-client half of benchmarks/mlflow_server.py. Runs in .venv-mlflow (the pinned MLflow client; its pins
never touch our environment) against whatever server MLFLOW_TRACKING_URI names (MLflow's own `mlflow server` or
the Hub; MLFLOW_TRACKING_TOKEN when the server wants one).

Workload: RUNS runs x PARAMS params x METRICS metrics x STEPS steps through the idiomatic fluent API a notebook
uses: `mlflow.start_run`, `mlflow.log_params` (one call), `mlflow.log_metrics(step=)` (one call per step),
end of run. The client decides how that maps to HTTP (log_params and log_metrics are one log-batch request
each). One untimed warm-up run first (imports, connection). Every HTTP request the client sends is counted
(requests.Session.send). Then "top 10 runs by a metric" (search_runs with order_by, max_results=10), median of
REPEAT. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--params", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--experiment", required=True, help="experiment name (created when missing, untimed)")
    a = ap.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow
    import requests
    from mlflow.tracking import MlflowClient

    sent = [0]
    real_send = requests.Session.send

    def counting_send(self, request, **kw):
        sent[0] += 1
        return real_send(self, request, **kw)

    requests.Session.send = counting_send  # every HTTP request of the client goes through here

    exp = mlflow.set_experiment(a.experiment)

    def one_run(i: int, name: str) -> None:
        with mlflow.start_run(run_name=name):
            mlflow.log_params({f"p{j}": (i * 7 + j) % 13 for j in range(a.params)})
            for step in range(a.steps):
                mlflow.log_metrics(
                    {f"m{j}": ((i * 31 + j * 7 + step) % 1000) / 1000.0 for j in range(a.metrics)}, step=step
                )

    one_run(0, "warm-up")
    sent[0] = 0
    t0 = time.perf_counter()
    for i in range(a.runs):
        one_run(i, f"run {i}")
    log_seconds = time.perf_counter() - t0
    log_requests = sent[0]

    client = MlflowClient()
    times = []
    top = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        top = client.search_runs([exp.experiment_id], order_by=["metrics.m0 DESC"], max_results=10)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "mlflow": mlflow.__version__,
                "log_seconds": log_seconds,
                "log_requests": log_requests,
                "top10_seconds": statistics.median(times),
                "top_values": [r.data.metrics.get("m0") for r in top],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
