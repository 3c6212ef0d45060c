"""Grid search of 48 candidates x 5 folds: one local process vs a Dask cluster of 2 worker processes (issue 16).

Both sides run `mlops_core.ml.training.train` on the same data and config (same seed); the Dask side with
`dask_scheduler=` a `dask scheduler` and two single-threaded `dask worker` processes started here on free
ports (warmed up with one candidate first, so the workers' imports are not counted). The figure is the search
time (`extra["search_seconds"]`); target: the cluster >= 1.7x faster. The results are checked equal.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_core.ml import training  # noqa: E402

TARGET_RATIO = 1.7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster(n_workers: int) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    binp = Path(sys.executable).parent
    kw = {
        "cwd": ROOT,
        "env": {**os.environ, "PYTHONPATH": str(ROOT)},
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    procs = [
        subprocess.Popen(
            [binp / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"], **kw
        )
    ]
    procs += [
        subprocess.Popen(
            [binp / "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
            + ["--memory-limit", "0", "--preload", "mlops_core.ml.training"],
            **kw,
        )
        for _ in range(n_workers)
    ]
    deadline = time.monotonic() + 120
    while True:
        try:
            with Client(address, timeout=5, set_as_default=False) as c:
                c.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
                return address, procs
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise SystemExit(f"the Dask cluster at {address} did not come up within 120 s") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n = args.rows
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    frame["plan"] = rng.choice(["basic", "plus", "pro"], n)
    frame["y"] = ((frame["x0"] + frame["x1"] * frame["x2"] + rng.normal(size=n)) > 0).astype(int)
    raw = {
        "target": "y",
        "algorithm": "random_forest",
        "params": {"n_estimators": [20, 40, 60, 80], "max_depth": [3, 5, 8, 12], "min_samples_leaf": [1, 5, 20]},
        "split": "cv",
        "folds": 5,
        "seed": 11,
    }
    cfg = training.validate_config(frame, raw)
    n_cands = len(training.candidates(cfg))
    print(f"{n_cands} candidates x {cfg.folds} folds on {n} rows", flush=True)

    address, procs = _cluster(args.workers)
    try:
        # Warm-up: one small search on the cluster (imports and first-fit caches on each worker).
        warm = training.validate_config(frame, {**raw, "params": {"n_estimators": [5, 6, 7, 8], "max_depth": 3}})
        training.train(frame, warm, dask_scheduler=address)
        training.train(frame, warm)

        t0 = time.perf_counter()
        local = training.train(frame, cfg)
        local_total = time.perf_counter() - t0
        t0 = time.perf_counter()
        remote = training.train(frame, cfg, dask_scheduler=address)
        remote_total = time.perf_counter() - t0
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)

    same = [(r["params"], r["score"]) for r in local.search_results] == [
        (r["params"], r["score"]) for r in remote.search_results
    ]
    ls, rs = local.extra["search_seconds"], remote.extra["search_seconds"]
    ratio = ls / rs
    print(f"local process: search {ls:.2f} s (whole run {local_total:.2f} s)")
    print(
        f"Dask, {remote.extra['dask_workers']} workers: search {rs:.2f} s (whole run {remote_total:.2f} s); "
        f"speed-up {ratio:.2f}x (target >= {TARGET_RATIO}x); results equal: {same}"
    )
    print(
        json.dumps(
            {
                "benchmark": "dask_search",
                "figures": [
                    {
                        "figure": f"grid search {n_cands} candidates x {cfg.folds} folds on a 2-worker Dask cluster",
                        "ours": round(rs, 3),
                        "baseline": round(ls, 3),
                        "baseline_name": "one local process",
                        "unit": "s",
                        "target": f">= {TARGET_RATIO}x faster, same results",
                        "met": bool(ratio >= TARGET_RATIO and same),
                    },
                ],
            }
        )
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
