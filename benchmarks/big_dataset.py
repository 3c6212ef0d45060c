"""Benchmark (issue 16, point 3): register + validate + profile a dataset larger than memory, streamed.

Generates a CSV of --rows x 20 columns (default 20,000,000; 8 decimals, 5 integers, 4 categories, 1 boolean,
1 high-cardinality id text and 1 integer with gaps) in a temporary folder, plus a 1,000,000-row file of the same
shape, and registers each in a fresh child process (so its peak RSS is the registration's own) through the
service: CSV -> canonical Parquet + content hash, one streaming scan (profile, validation counts, duplicates,
sample), DuckDB sketches (t-digest quantiles, HyperLogLog distinct counts), validation against the schema of a
100k-row first version (drift included), storage. MLOPS_STREAM_MEMORY_MB is left at its default.

Figures, side by side in the same run:
  - peak RSS of the big registration (target <= 1.5 GB);
  - seconds per million rows, big file vs the 1M-row file (target: ratio <= 1.2);
  - baseline: the in-memory path on the 1M file (pyarrow.csv.read_csv of the whole file, then the same scan and
    validation in one batch with every row hash in memory, plus exact quantiles and distinct counts over all
    rows from the frame): its peak RSS and seconds per million rows, its findings (the same counts as the
    streamed registration of that file), and how far the streamed sketches are from its exact figures.

Usage: .venv/bin/python benchmarks/big_dataset.py [--rows N]   (run_all passes a smaller --rows; see there)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_PEAK_MB = 1536
TARGET_RATIO = 1.2
BASE_ROWS = 1_000_000
FIRST_ROWS = 100_000


def make_csv(path: Path, rows: int, seed: int) -> None:
    """20 columns, written in chunks so the generator's memory stays small whatever the row count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    cats = {
        "region": ["north", "south", "east", "west"],
        "plan": ["basic", "plus", "pro", "family"],
        "channel": ["web", "shop", "phone", "partner", "app"],
        "segment": ["consumer", "small business", "enterprise"],
    }
    chunk = 500_000
    writer = None
    with path.open("wb") as out:
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            cols: dict[str, object] = {}
            for i in range(8):
                cols[f"f{i}"] = np.round(rng.normal(100 * (i + 1), 10 * (i + 1), m), 3)
            for i in range(5):
                cols[f"n{i}"] = rng.integers(0, 1000 * (i + 1), m)
            for name, values in cats.items():
                cols[name] = np.array(values)[rng.integers(0, len(values), m)]
            cols["active"] = rng.random(m) < 0.7
            ids = pa.array(rng.integers(0, 5_000_000, m)).cast(pa.string())
            cols["customer"] = pc.binary_join_element_wise("cust", ids, "-")
            gaps = rng.random(m) < 0.05
            cols["tenure"] = pa.array(rng.integers(0, 120, m), mask=gaps)
            table = pa.table(cols)
            if writer is None:
                writer = pacsv.CSVWriter(out, table.schema)
            writer.write_table(table)
        writer.close()


CHILD = r"""
import json, os, resource, sys, time
mode, path, first = sys.argv[1:4]
from mlops_core.config import reload_settings
reload_settings()
import pandas, pyarrow, pyarrow.csv, pyarrow.parquet, scipy.stats, duckdb  # what registration imports
from mlops_core.db import Database, upgrade_schema
from mlops_core.services import datasets
from mlops_core.services.auth import Actor
from mlops_core import profiling, validation
import mlops_core.monitoring.drift
db = Database(os.environ["DATABASE_URL"])
upgrade_schema(db)
actor = Actor.system()
first_v = datasets.register_version_from_path(db, actor=actor, dataset_name="big", path=first, restrict_to_roots=False)
before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0, cpu0 = time.perf_counter(), time.process_time()
out = {}
if mode == "streamed":
    v = datasets.register_version_from_path(db, actor=actor, dataset_name="big", path=path, restrict_to_roots=False)
    out.update(n_rows=v.n_rows, status=v.status, errors=v.n_errors, warnings=v.n_warnings)
    prof = datasets.get_profile(db, v.id).model_dump(mode="json")
else:  # the in-memory path: the whole file in memory, scanned as one batch, every figure exact
    import pyarrow as pa, pyarrow.parquet as pq
    import pyarrow.compute as pc
    table = pyarrow.csv.read_csv(path)  # the whole file in memory (the same types as the streaming reader)
    tmp = path + ".whole.parquet"
    pq.write_table(table, tmp, row_group_size=table.num_rows)
    cols = [{"name": n, "type": datasets.data_io.column_type(t)} for n, t in zip(table.schema.names, table.schema.types)]
    schema = datasets.current_schema(db, first_v.dataset_id).columns
    scan = profiling.scan_parquet(tmp, cols, schema, rules=validation.RULES, batch_size=table.num_rows, memory_mb=1 << 20)
    from mlops_core.models.datasets import DatasetVersion
    with db.read() as s:
        sample_key = s.get(DatasetVersion, first_v.id).sample_key
    report = validation.validate(scan, schema, previous_sample=datasets._load_sample(sample_key))
    prof = profiling.build_profile(scan)
    for c in prof["columns"]:  # exact quantiles and distinct counts over every row, for the sketches' errors
        col = table.column(c["name"])
        if c["type"] in ("integer", "number"):
            qs = pc.quantile(col, q=[0.05, 0.25, 0.5, 0.75, 0.95]).to_pylist()
            c["quantiles"] = dict(zip(("p5", "p25", "p50", "p75", "p95"), qs))
        elif c["type"] in ("string", "category"):
            c["distinct"] = int(pc.count_distinct(col).as_py())
    out.update(n_rows=scan.n_rows, status="", errors=report.counts.get("error", 0), warnings=report.counts.get("warning", 0))
    os.unlink(tmp)
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
cols = {c["name"]: c for c in prof["columns"]}
out.update(wall=wall, cpu=cpu, before_kb=before_kb, maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           duplicate_rows=prof["duplicate_rows"],
           quantiles={n: c.get("quantiles") for n, c in cols.items()},
           distinct={n: c.get("distinct") for n, c in cols.items()},
           kinds={n: c.get("kinds") for n, c in cols.items()})
print(json.dumps(out))
"""


def child(mode: str, path: Path, first: Path, tmp: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / f'{mode}-{path.stem}.db'}",
        "ARTIFACT_ROOT": str(tmp / f"artifacts-{mode}-{path.stem}"),
        "MLOPS_MAX_UPLOAD_MB": "100000",
    }
    p = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(first)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if p.returncode != 0:
        raise SystemExit(f"benchmark child ({mode}, {path.name}) failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def sketch_errors(streamed: dict, exact: dict) -> tuple[float, float]:
    """Largest error of the streamed quantiles (as a share of the column's p5..p95 span) and of the
    distinct counts (relative), against the in-memory path's exact figures on the same file."""
    q_err = 0.0
    for name, q in streamed["quantiles"].items():
        e = exact["quantiles"].get(name)
        if not q or not e:
            continue
        span = max(1e-9, (e["p95"] or 0) - (e["p5"] or 0))
        q_err = max(q_err, max(abs(q[k] - e[k]) / span for k in q if q[k] is not None and e.get(k) is not None))
    d_err = 0.0
    for name, d in streamed["distinct"].items():
        e = exact["distinct"].get(name)
        if isinstance(d, int) and isinstance(e, int) and e:
            d_err = max(d_err, abs(d - e) / e)
    return q_err, d_err


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--keep", help="folder to keep the generated CSVs in (regenerated when missing)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-big-") as scratch:
        tmp = Path(scratch)
        data = Path(args.keep) if args.keep else tmp
        data.mkdir(parents=True, exist_ok=True)
        big, base, first = data / f"big-{args.rows}.csv", data / f"base-{BASE_ROWS}.csv", data / "first.csv"
        t = time.perf_counter()
        for path, rows, seed in ((first, FIRST_ROWS, 3), (base, BASE_ROWS, 2), (big, args.rows, 1)):
            if not path.exists():
                make_csv(path, rows, seed)
        print(
            f"generated {args.rows:,} x 20 CSV ({big.stat().st_size / 1e6:,.0f} MB) and {BASE_ROWS:,} x 20 "
            f"({base.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        memory = child("memory", base, first, tmp)
        small = child("streamed", base, first, tmp)
        large = child("streamed", big, first, tmp) if args.rows != BASE_ROWS else small
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    per_m = {k: r["wall"] / (r["n_rows"] / 1e6) for k, r in (("memory", memory), ("small", small), ("large", large))}
    peak = {k: r["maxrss_kb"] / 1024 for k, r in (("memory", memory), ("small", small), ("large", large))}
    for label, key, r in (
        (f"in-memory path, {BASE_ROWS:,} rows", "memory", memory),
        (f"streamed, {BASE_ROWS:,} rows", "small", small),
        (f"streamed, {large['n_rows']:,} rows", "large", large),
    ):
        print(
            f"{label}: {r['wall']:.1f} s = {per_m[key]:.2f} s per million rows; peak RSS {peak[key]:,.0f} MB "
            f"(imports + first version {r['before_kb'] / 1024:,.0f} MB); {r['errors']} errors, {r['warnings']} warnings, "
            f"{r['duplicate_rows']:,} duplicate rows"
        )
    q_err, d_err = sketch_errors(small, memory)
    kinds = sorted({k for c in small["kinds"].values() if c for k in c.values()})
    print(
        f"sketches on the {BASE_ROWS:,}-row file vs the in-memory exact figures: quantiles off by at most "
        f"{q_err:.2%} of the p5-p95 span, distinct counts by at most {d_err:.2%}; kinds used: {', '.join(kinds)}"
    )
    ratio = per_m["large"] / per_m["small"]
    cpu_m = {k: r["cpu"] / (r["n_rows"] / 1e6) for k, r in (("small", small), ("large", large))}
    print(
        f"CPU time per million rows (less sensitive to the machine's load than wall time): "
        f"{cpu_m['large']:.2f} s at {large['n_rows']:,} rows vs {cpu_m['small']:.2f} s at {BASE_ROWS:,} "
        f"(ratio {cpu_m['large'] / cpu_m['small']:.2f})"
    )
    figures = [
        {
            "figure": f"register + validate + profile {large['n_rows']:,} x 20 CSV streamed, peak RSS",
            "ours": round(peak["large"]),
            "baseline": round(peak["memory"]),
            "baseline_name": f"in-memory path on {BASE_ROWS // 1_000_000}M rows",
            "unit": "MB",
            "target": f"<= {TARGET_PEAK_MB:,} MB",
            "met": bool(peak["large"] <= TARGET_PEAK_MB),
        },
        {
            "figure": f"seconds per million rows at {large['n_rows']:,} rows (streamed)",
            "ours": round(per_m["large"], 2),
            "baseline": round(per_m["small"], 2),
            "baseline_name": f"streamed, {BASE_ROWS // 1_000_000}M rows",
            "unit": "s/M rows",
            "target": f"ratio <= {TARGET_RATIO} (is {ratio:.2f})",
            "met": bool(ratio <= TARGET_RATIO),
        },
        {
            "figure": f"CPU seconds per million rows at {large['n_rows']:,} rows (streamed)",
            "ours": round(cpu_m["large"], 2),
            "baseline": round(cpu_m["small"], 2),
            "baseline_name": f"streamed, {BASE_ROWS // 1_000_000}M rows",
            "unit": "s/M rows",
            "target": f"reported (ratio {cpu_m['large'] / cpu_m['small']:.2f})",
            "met": True,
        },
        {
            "figure": f"seconds per million rows, streamed vs in-memory path at {BASE_ROWS // 1_000_000}M rows",
            "ours": round(per_m["small"], 2),
            "baseline": round(per_m["memory"], 2),
            "baseline_name": "in-memory path",
            "unit": "s/M rows",
            "target": "reported",
            "met": True,
        },
        {
            "figure": "largest sketch error at 1M rows: quantile (share of p5-p95 span) / distinct count (relative)",
            "ours": round(q_err, 4),
            "baseline": round(d_err, 4),
            "baseline_name": "distinct",
            "unit": "",
            "target": "reported",
            "met": True,
        },
    ]
    print(json.dumps({"benchmark": "big_dataset", "figures": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
