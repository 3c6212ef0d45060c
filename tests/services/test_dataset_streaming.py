"""Datasets larger than memory (issue 16, point 3): registration, validation and profiling stream.

- A registration under a small MLOPS_STREAM_MEMORY_MB, in a child process: its peak RSS grows by less than
  the limit set for the test, while the file's decoded Arrow size is larger than that limit.
- On data that fits, the streamed path (small batches, duplicate hashes spilled to disk partitions) gives
  the same validation findings and the same exact figures as the whole file read as one batch in memory.
- On a file larger than the sample, quantiles are t-digests, high-cardinality distinct counts HyperLogLog
  and top values a Misra-Gries summary, each marked as such, and close to the exact figures.
- A Parquet file whose footer says 2,000,000,000 rows is refused from the footer (the limits of issue 12).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_core import artifacts, profiling, validation
from mlops_core.config import reload_settings
from mlops_core.errors import ValidationError
from mlops_core.models.datasets import DatasetVersion
from mlops_core.services import datasets

ROOT = Path(__file__).resolve().parents[2]


def _stream_settings(monkeypatch, *, batch_rows: int, memory_mb: int) -> None:
    monkeypatch.setenv("MLOPS_STREAM_BATCH_ROWS", str(batch_rows))
    monkeypatch.setenv("MLOPS_STREAM_MEMORY_MB", str(memory_mb))
    reload_settings()


def _frame(n: int, seed: int, *, anomalies: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": np.round(rng.normal(50_000, 12_000, n).clip(1_000, None), 2),
            "plan": np.array(["basic", "plus", "pro"])[rng.integers(0, 3, n)],
            "score": rng.random(n),
            "customer": [f"c{i}" for i in rng.integers(0, 4 * n, n)],  # past the 1,000 tracked values
        }
    )
    if anomalies:
        frame.loc[frame.index[::97], "income"] = np.nan  # nulls the schema does not allow: an error
        frame.loc[frame.index[5::500], "age"] = 400  # out of range: an error
        frame.loc[frame.index[7::300], "plan"] = "platinum"  # unseen category: a warning
        frame["score"] = frame["score"] ** 3  # drift against the first version
        frame = pd.concat([frame, frame.iloc[:700]], ignore_index=True)  # 700 exact duplicates
    return frame


def _in_memory_report(db, version, first):
    """Today's in-memory path: the stored file read whole, scanned as one batch, hashes kept in memory."""
    schema = datasets.current_schema(db, version.dataset_id).columns
    with db.read() as s:
        data_key = s.get(DatasetVersion, version.id).artifact_key
        previous_key = s.get(DatasetVersion, first.id).sample_key
    table = pq.read_table(artifacts.path(data_key))
    scan = profiling.scan_parquet(
        artifacts.path(data_key),
        version.columns,
        schema,
        rules=validation.RULES,
        batch_size=table.num_rows,
        memory_mb=1 << 20,
    )
    report = validation.validate(
        scan, schema, previous_sample=datasets._load_sample(previous_key), previous_label=first.ref
    )
    return table, scan, report


@pytest.mark.slow
def test_streamed_findings_and_exact_figures_equal_the_in_memory_path(db, people, monkeypatch):
    first = datasets.register_version_from_frame(
        db, actor=people["data_engineer"], dataset_name="big", frame=_frame(5_000, 0, anomalies=False)
    )
    frame = _frame(40_000, 1, anomalies=True)
    # 40,700 row hashes (326 KB) are over a quarter of 1 MB: the duplicate count goes through disk partitions
    _stream_settings(monkeypatch, batch_rows=1_000, memory_mb=1)
    assert profiling.DuplicateCounter(len(frame), 1024 * 1024 // 4).partitions > 1
    v = datasets.register_version_from_frame(db, actor=people["data_engineer"], dataset_name="big", frame=frame)
    streamed = datasets.get_report(db, v.id)
    stored_profile = datasets.get_profile(db, v.id)

    _stream_settings(monkeypatch, batch_rows=65_536, memory_mb=1024)
    table, scan, whole = _in_memory_report(db, v, first)

    def key(f):
        return (f.severity, f.column, f.kind, f.message)

    assert [key(f) for f in streamed.findings] == [key(f) for f in whole.findings]
    kinds = {f.kind for f in streamed.findings}
    assert {"nulls_above_allowed", "out_of_range", "unseen_categories", "duplicate_rows", "drift"} <= kinds
    assert v.status == "failed"
    dup = next(f for f in streamed.findings if f.kind == "duplicate_rows")
    assert f"{int(frame.duplicated().sum()):,} of {len(frame):,} rows" in dup.message

    memory_profile = profiling.build_profile(scan)
    assert stored_profile.duplicate_rows == memory_profile["duplicate_rows"] == int(frame.duplicated().sum())
    by_name = {c["name"]: c for c in memory_profile["columns"]}
    for c in stored_profile.columns:
        m = by_name[c.name]
        assert (c.count, c.nulls, c.min, c.max, c.mean, c.distinct) == tuple(
            m.get(k) for k in ("count", "nulls", "min", "max", "mean", "distinct")
        )
        if c.kinds.get("top") == "exact":  # a Misra-Gries summary depends on the batches; exact counts do not
            assert [t.model_dump() for t in c.top] == m["top"]
        if c.std is not None:
            assert c.std == pytest.approx(m["std"], rel=1e-6)
            assert c.std == pytest.approx(float(frame[c.name].std(ddof=0)), rel=1e-3)
        assert c.kinds["count"] == c.kinds["nulls"] == "exact"
    income = next(c for c in stored_profile.columns if c.name == "income")
    assert income.nulls == int(frame["income"].isna().sum())


def test_sketched_figures_say_so_and_are_close_to_the_exact_ones(tmp_path):
    n = 120_000
    rng = np.random.default_rng(3)
    ids = np.minimum(rng.zipf(1.3, n), 50_000)  # one value far ahead of the rest, then a long tail
    values = rng.normal(10, 3, n)
    table = pa.table({"x": values, "k": rng.integers(0, 10_000, n), "id": pa.array([f"u{i}" for i in ids])})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    cols = [{"name": "x", "type": "number"}, {"name": "k", "type": "integer"}, {"name": "id", "type": "string"}]
    scan = profiling.scan_parquet(path, cols, batch_size=7_000, sample_rows=2_000, memory_mb=64)
    profile = {c["name"]: c for c in profiling.build_profile(scan)["columns"]}

    x, idc = profile["x"], profile["id"]
    assert x["kinds"]["quantiles"] == "sketch: t-digest" and x["kinds"]["mean"] == "exact"
    exact = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    span = exact[-1] - exact[0]
    for got, want in zip(x["quantiles"].values(), exact):
        assert abs(got - want) < 0.01 * span
    assert idc["kinds"]["distinct"] == "sketch: HyperLogLog" and idc["kinds"]["top"] == "sketch: Misra-Gries"
    true_distinct = len(np.unique(ids))
    assert abs(idc["distinct"] - true_distinct) < 0.1 * true_distinct
    counts = pd.Series(ids).value_counts()
    top = idc["top"][0]
    assert top["value"] == f"u{counts.index[0]}"
    # Misra-Gries counts are low by at most n / (k + 1), never high
    assert counts.iloc[0] - n / (profiling.MAX_TRACKED + 1) <= top["count"] <= counts.iloc[0]
    # a file the sample holds whole: every figure is exact, no sketch is run
    small = profiling.scan_parquet(path, cols, sample_rows=n)
    assert small.sketches == {}
    assert all(v == "exact" for c in profiling.build_profile(small)["columns"] for v in c["kinds"].values())


# Registers a small first version (the schema) and then the big file in a fresh process under
# MLOPS_STREAM_MEMORY_MB; reports its peak RSS (ru_maxrss, KB) after the imports and at the end.
REGISTER_CHILD = r"""
import json, os, resource, sys
from mlops_core.config import reload_settings
reload_settings()
import numpy, pandas, pyarrow, pyarrow.parquet, pyarrow.csv, scipy.stats, duckdb
from mlops_core.db import Database, upgrade_schema
from mlops_core.services import datasets
from mlops_core.services.auth import Actor
import mlops_core.profiling, mlops_core.validation, mlops_core.monitoring.drift
db = Database(os.environ["DATABASE_URL"])
upgrade_schema(db)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
first = datasets.register_version_from_path(db, actor=Actor.system(), dataset_name="big", path=sys.argv[2],
                                            restrict_to_roots=False)
v = datasets.register_version_from_path(db, actor=Actor.system(), dataset_name="big", path=sys.argv[1],
                                        restrict_to_roots=False)
p = datasets.get_profile(db, v.id)
print(json.dumps({"before_kb": before, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": v.n_rows, "status": v.status, "kinds": sorted({k for c in p.columns for k in (c.kinds or {}).values()}),
                  "duplicates": p.duplicate_rows, "findings": [f.kind for f in datasets.get_report(db, v.id).findings]}))
"""


def _write_csv(path: Path, rows: int, seed: int) -> int:
    """A CSV written in chunks; returns the Arrow size of its data (what reading it whole would hold)."""
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    nbytes = 0
    writer = None
    with path.open("wb") as out:
        for start in range(0, rows, 250_000):
            m = min(250_000, rows - start)
            cols = {f"f{i}": np.round(rng.normal(100, 10, m), 3) for i in range(6)}
            cols.update({f"n{i}": rng.integers(0, 1000, m) for i in range(2)})
            cols["plan"] = np.array(["basic", "plus", "pro"])[rng.integers(0, 3, m)]
            cols["customer"] = [f"cust-{i}" for i in rng.integers(0, 10_000_000, m)]
            cols["note"] = np.array(["an order placed through the web shop", "a phone order, paid on delivery"])[
                rng.integers(0, 2, m)
            ]
            table = pa.table(cols)
            if start == 0:  # two exact duplicates of the first row
                table = pa.concat_tables([table, table.slice(0, 1), table.slice(0, 1)])
            nbytes += table.nbytes
            if writer is None:
                writer = pacsv.CSVWriter(out, table.schema)
            writer.write_table(table)
        writer.close()
    return nbytes


@pytest.mark.slow
def test_a_file_larger_than_the_memory_limit_registers_with_bounded_peak_rss(tmp_path):
    limit_mb = 80  # the registration's own memory (peak RSS above the imports) must stay under this
    big, first = tmp_path / "big.csv", tmp_path / "first.csv"
    data_bytes = _write_csv(big, 1_000_000, 1)
    _write_csv(first, 20_000, 2)
    assert data_bytes > 1.4 * limit_mb * 1024 * 1024, "the file must be larger than the limit set for the test"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'child.db'}",
        "ARTIFACT_ROOT": str(tmp_path / "child-artifacts"),
        "MLOPS_STREAM_MEMORY_MB": "16",
        "MLOPS_MAX_UPLOAD_MB": "4096",
    }
    started = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-c", REGISTER_CHILD, str(big), str(first)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    growth_mb = (r["peak_kb"] - r["before_kb"]) / 1024
    assert r["rows"] == 1_000_002 and r["duplicates"] == 2 and "duplicate_rows" in r["findings"]
    assert "sketch: t-digest" in r["kinds"] and "sketch: HyperLogLog" in r["kinds"]
    print(f"peak RSS growth {growth_mb:.0f} MB for {data_bytes / 2**20:.0f} MB of data")
    assert growth_mb < limit_mb, (
        f"peak RSS grew by {growth_mb:.0f} MB registering {data_bytes / 1e6:.0f} MB of data "
        f"(limit {limit_mb} MB, {time.monotonic() - started:.0f} s)"
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


@pytest.fixture(scope="module")
def two_billion(tmp_path_factory) -> Path:
    """A small Parquet file whose footer says 2,000,000,000 rows, as a crafted upload would.

    The footer is Thrift compact: each i64 `num_rows` (file, row group, column chunk values) is the field
    header 0x16 followed by the zigzag varint of the count; the counts are rewritten and the footer length
    before the closing magic updated. Data pages stay where they are, so only the footer changes."""
    rows = 123_457
    path = tmp_path_factory.mktemp("footer") / "two-billion.parquet"
    pq.write_table(pa.table({"x": pa.array(np.arange(rows))}), path)
    data = path.read_bytes()
    length = int.from_bytes(data[-8:-4], "little")
    footer = data[-8 - length : -8]
    old, new = b"\x16" + _varint(2 * rows), b"\x16" + _varint(2 * 2_000_000_000)
    assert old in footer
    footer = footer.replace(old, new)
    path.write_bytes(data[: -8 - length] + footer + len(footer).to_bytes(4, "little") + b"PAR1")
    assert pq.ParquetFile(path).metadata.num_rows == 2_000_000_000
    return path


def test_a_footer_of_two_billion_rows_is_refused_before_any_row_is_read(db, people, two_billion):
    started = time.monotonic()
    with two_billion.open("rb") as f, pytest.raises(ValidationError) as err:
        datasets.register_version_from_upload(
            db, actor=people["data_engineer"], dataset_name="huge", fileobj=f, filename="huge.parquet"
        )
    assert "2,000,000,000 rows, over the limit of 25,000,000" in str(err.value)
    assert "MLOPS_MAX_DATASET_ROWS" in str(err.value)
    assert time.monotonic() - started < 10
    assert datasets.list_datasets(db) == []
