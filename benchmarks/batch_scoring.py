"""Batch scoring of a large file: streamed (today's job) vs whole-file (the pre-streaming job), in one run (issue 16).

Sets up a throwaway workspace (SQLite and an artifact folder under a temp folder) with a deployed churn model
(benchmarks/scoring.py's setup, through the real services), writes a CSV of --rows rows x 20 columns (the
model's 10 customer columns and 10 more), and scores it twice, each in a fresh child process so that its peak
RSS (ru_maxrss) is its own:

- streamed: `submit_batch_scoring` with the file object, then the "batch_score" job as a worker runs it
  (CSV -> canonical Parquet under the limits, MLOPS_STREAM_BATCH_ROWS batches scored, logged, appended to
  scored.parquet and scored.csv);
- whole-file (baseline, the job before issue 16): the upload read whole with pandas, `score_frame` on the whole
  frame (logged in chunks of 5,000), the scored frame written as one CSV. Run only if it fits: skipped when the
  machine has less than --baseline-min-free-gb of memory available.

Both log every row to the prediction log, as the job does. Prints peak RSS and rows/s for each side.

    .venv/bin/python benchmarks/batch_scoring.py [--rows 5000000] [--batch-rows 65536]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_PEAK_MB = 1024  # streamed: peak RSS of the job's process, whatever the file size

CHILD = r"""
import json, os, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
from mlops_core.config import reload_settings
reload_settings()
import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.parquet, sklearn, skops.io  # imports are not the job
from mlops_core import artifacts, data_io, jobs
from mlops_core.db import Database
from mlops_core.jobs import queue, runner
from mlops_core.services import predictions
from mlops_core.services.auth import Actor
db = Database(os.environ["DATABASE_URL"])
sara = Actor(id=3, username="sara", role="data_scientist")
predictions._served_model(db, "churn")  # the model loaded (and cached) before the clock starts, on both sides
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "streamed":
    with open(path, "rb") as f:
        job_id = predictions.submit_batch_scoring(db, actor=sara, deployment_name="churn", filename="big.csv", data=f)
    job = queue.claim_next(db, worker="bench")
    status = runner.execute(db, job_id=job.id, kind=job.kind, payload=job.payload, worker="bench", attempt=job.attempts)
    result = jobs.get_job(db, job_id).result or {}
    error = jobs.get_job(db, job_id).error
    rows = result.get("rows", 0)
else:
    data = open(path, "rb").read()
    frame = predictions.read_upload(data, "big.csv")
    del data
    scored = predictions.score_frame(db, deployment_name="churn", frame=frame)
    artifacts.put_bytes("batch_scoring/whole/scored.csv", data_io.to_safe_csv(scored))
    status, error, rows = "finished", None, len(scored)
seconds = time.perf_counter() - t0
print(json.dumps({"mode": mode, "status": status, "error": (error or "")[:2000], "rows": rows, "seconds": seconds,
                  "before_mb": before / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_csv(path: Path, rows: int, seed: int = 5) -> None:
    """rows x 20 columns: the churn model's 10 input columns (demo customers' distributions) and 10 extra numbers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mlops_core.demo.customers import make_customers

    template = make_customers(20_000, seed=seed).drop(columns=["churned"])
    rng = np.random.default_rng(seed)
    chunk = 250_000
    writer = None
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        part = template.sample(n=n, replace=True, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
        for i in range(10):
            part[f"x{i}"] = rng.normal(size=n).round(4)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pacsv.CSVWriter(str(path), table.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
        writer.write_table(table)
        done += n
    writer.close()


def child(mode: str, path: Path, env: dict[str, str]) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=7200
    )
    if p.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def available_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--batch-rows", type=int, default=65_536)
    ap.add_argument("--baseline-min-free-gb", type=float, default=10.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-scoring-"))
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{tmp}/hub.db",
            "ARTIFACT_ROOT": str(tmp / "artifacts"),
            "MLOPS_STREAM_BATCH_ROWS": str(args.batch_rows),
            "MLOPS_MAX_UPLOAD_MB": "100000",
        }
        env.pop("MLOPS_DASK_SCHEDULER", None)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "ARTIFACT_ROOT")})
        from mlops_core.config import reload_settings

        reload_settings()
        from mlops_core.db import Database, upgrade_schema

        sys.path.insert(0, str(ROOT / "benchmarks"))
        from scoring import setup_workspace  # the deployed churn model of the scoring benchmark

        db = Database(env["DATABASE_URL"])
        upgrade_schema(db)
        setup_workspace(db)
        db.dispose()

        csv_path = tmp / "big.csv"
        t0 = time.perf_counter()
        make_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"{args.rows:,} rows x 20 columns: {size_mb:,.0f} MB of CSV (written in {time.perf_counter() - t0:.0f} s)"
        )
        print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)

        streamed = child("streamed", csv_path, env)
        if streamed["status"] != "finished":
            raise SystemExit(f"the streamed job did not finish: {streamed['status']}: {streamed['error']}")
        s_rate = streamed["rows"] / streamed["seconds"]
        print(
            f"streamed   (batches of {args.batch_rows:,}): {streamed['seconds']:.1f} s, {s_rate:,.0f} rows/s, "
            f"peak RSS {streamed['peak_mb']:,.0f} MB (imports and model: {streamed['before_mb']:,.0f} MB)",
            flush=True,
        )
        free = available_gb()
        whole = None
        if free >= args.baseline_min_free_gb:
            whole = child("whole", csv_path, env)
            w_rate = whole["rows"] / whole["seconds"]
            print(
                f"whole-file (pre-streaming job): {whole['seconds']:.1f} s, {w_rate:,.0f} rows/s, "
                f"peak RSS {whole['peak_mb']:,.0f} MB (imports and model: {whole['before_mb']:,.0f} MB)"
            )
        else:
            print(f"whole-file baseline skipped: {free:.1f} GB available < {args.baseline_min_free_gb} GB")
        print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    met = streamed["peak_mb"] <= TARGET_PEAK_MB
    print(
        json.dumps(
            {
                "benchmark": "batch_scoring",
                "figures": [
                    {
                        "figure": f"peak RSS scoring {args.rows:,} x 20 CSV (streamed vs whole file)",
                        "ours": round(streamed["peak_mb"], 1),
                        "baseline": round(whole["peak_mb"], 1) if whole else None,
                        "baseline_name": "whole-file job",
                        "unit": "MB",
                        "target": f"<= {TARGET_PEAK_MB} MB, whatever the file size",
                        "met": bool(met),
                    },
                    {
                        "figure": f"batch scoring throughput, {args.rows:,} rows, every row logged",
                        "ours": round(s_rate, 1),
                        "baseline": round(whole["rows"] / whole["seconds"], 1) if whole else None,
                        "baseline_name": "whole-file job",
                        "unit": "rows/s",
                        "target": "reported",
                        "met": True,
                    },
                ],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
