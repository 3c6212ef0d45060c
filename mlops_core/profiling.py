"""Profile of a dataset version: one streaming pass over its Parquet file.

The pass collects what both the profile (per-column summary, plotly-ready histograms and bar
charts) and the validation report need (null counts, ranges, category counts, out-of-range and
unseen values, which validation rules gather through `rules`, row hashes for duplicates) plus a
reproducible sample for drift and diffs. The
profile is computed once when the version is registered and stored as a JSON artifact; pages
read it, they never recompute it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from .data_io import row_hashes
from .models.datasets import ColumnProfilePublic

SAMPLE_ROWS = 50_000  # rows kept for drift and diffs (a Bernoulli sample with a fixed seed)
MAX_TRACKED = 1_000  # distinct values counted per text column before it counts as high-cardinality
TOP_CATEGORIES = 20  # bars shown per categorical column
HIST_BINS = 30


@dataclass
class ColumnScan:
    name: str
    type: str
    count: int = 0  # non-null values
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    sumsq: float = 0.0
    counts: dict[str, int] | None = field(default_factory=dict)  # None once past MAX_TRACKED
    hist_edges: list[float] | None = None
    hist_counts: np.ndarray | None = None
    true_count: int = 0
    # figures validation rules gather for themselves during the pass, by rule name (validation.RULES)
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    n_rows: int
    columns: dict[str, ColumnScan]
    duplicate_rows: int
    sample: Any  # pandas DataFrame


def _hist_range(md, idx: int) -> tuple[float, float] | None:
    """Min and max of column `idx` from the Parquet footer statistics (no data read).

    `md` is the file's metadata, parsed once by the caller: parsing the footer again per column made
    wide files cost quadratic time (issue 12, finding 8: 3,000 columns took 43 s).
    """
    lo = hi = None
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(idx).statistics
        if st is None or not st.has_min_max:
            continue
        try:
            a, b = float(st.min), float(st.max)
        except (TypeError, ValueError):
            return None
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo, hi


class Collector(Protocol):
    """A validation rule that gathers figures of its own during the pass (validation.Rule)."""

    def collects(self, column_type: str, column_schema: dict[str, Any]) -> bool: ...

    def collect(self, stats: ColumnScan, arr: Any, values: Any, column_schema: dict[str, Any]) -> None: ...


def scan_parquet(
    path: Path,
    columns: list[dict[str, Any]],
    schema: list[dict[str, Any]] | None = None,
    *,
    rules: Sequence[Collector] = (),
    batch_size: int = 131_072,
    sample_rows: int = SAMPLE_ROWS,
    progress=None,
) -> Scan:
    """One pass over the file. `columns`: [{"name","type"}] of the version; `schema`: the dataset schema;
    `rules`: the validation rules, each asked per schema column whether it gathers figures of its own."""
    # pandas is heavy: loaded only when a frame is built
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    md = pf.metadata
    n_rows = md.num_rows
    rules_by_name = {c["name"]: c for c in (schema or [])}
    scans = {c["name"]: ColumnScan(name=c["name"], type=c["type"]) for c in columns}
    # Column positions once (flat canonical files: one leaf column per field).
    position = {name: i for i, name in enumerate(pf.schema_arrow.names)}
    # Per column, once: the rules that gather figures on it (a wide file has thousands of columns).
    collecting = {
        name: [r for r in rules if r.collects(s.type, rules_by_name[name])]
        for name, s in scans.items()
        if name in rules_by_name
    }
    for s in scans.values():
        if s.type in ("integer", "number"):
            rng = _hist_range(md, position[s.name])
            if rng is not None:
                lo, hi = rng
                if s.type == "integer" and hi - lo + 1 <= HIST_BINS:
                    edges = np.arange(lo - 0.5, hi + 1.5, 1.0)
                else:
                    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HIST_BINS + 1)
                s.hist_edges = edges.tolist()
                s.hist_counts = np.zeros(len(edges) - 1, dtype=np.int64)
    rng = np.random.default_rng(0)
    p = min(1.0, sample_rows / n_rows) if n_rows else 1.0
    hashes: list[np.ndarray] = []
    samples = []
    done = 0

    # Row group by row group: iter_batches reads ahead and holds far more memory (issue 4's memory target).
    def batches():
        for g in range(pf.num_row_groups):
            yield from pf.read_row_group(g).to_batches(max_chunksize=batch_size)

    for batch in batches():
        m = batch.num_rows
        for name, s in scans.items():
            arr = batch.column(position[name])
            nulls = arr.null_count
            s.nulls += nulls
            s.count += m - nulls
            if m == nulls:
                continue
            values = None
            if s.type in ("integer", "number"):
                mm = pc.min_max(arr)
                lo, hi = mm["min"].as_py(), mm["max"].as_py()
                if lo is not None:
                    s.min = lo if s.min is None else min(s.min, lo)
                    s.max = hi if s.max is None else max(s.max, hi)
                values = arr.drop_null().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                s.sum += float(values.sum())
                s.sumsq += float(np.dot(values, values))
                if s.hist_edges is not None:
                    # uniform bins given as (count, range) take numpy's fast path (no per-value search)
                    e = s.hist_edges
                    c, _ = np.histogram(values, bins=len(e) - 1, range=(e[0], e[-1]))
                    s.hist_counts += c
            elif s.type == "boolean":
                s.true_count += int(pc.sum(arr).as_py() or 0)
                s.counts = {"True": s.true_count, "False": s.count - s.true_count}
            elif s.type in ("string", "category"):
                if s.counts is not None:
                    vc = pc.value_counts(arr.drop_null())
                    for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                        s.counts[v] = s.counts.get(v, 0) + n
                    if len(s.counts) > MAX_TRACKED:
                        s.counts = None
            for rule in collecting.get(name, ()):
                rule.collect(s, arr, values, rules_by_name[name])
        hashes.append(row_hashes(batch))
        if p >= 1.0:
            samples.append(batch.to_pandas())
        else:
            keep = rng.random(m) < p
            samples.append(batch.filter(pa.array(keep)).to_pandas())
        done += m
        if progress is not None and n_rows:
            progress(done / n_rows, f"profiled {done:,} of {n_rows:,} rows")
    duplicate_rows = 0
    if hashes:
        allh = np.concatenate(hashes)
        allh.sort()  # a plain sort beats np.unique's hash table on a million uint64s
        duplicate_rows = int(np.count_nonzero(allh[1:] == allh[:-1]))
    if samples:
        sample = pd.concat(samples, ignore_index=True)
    else:
        sample = pf.schema_arrow.empty_table().to_pandas()
    return Scan(n_rows=n_rows, columns=scans, duplicate_rows=duplicate_rows, sample=sample)


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _sample_quantiles(scan: Scan) -> dict[str, dict[str, float | None]]:
    """p5..p95 of every numeric column of the sample in one vectorised call (one call per column cost
    ~0.5 ms each: seconds on a 5,000-column file). Columns with no value in the sample get none."""
    names = [
        s.name for s in scan.columns.values() if s.type in ("integer", "number") and s.count and s.name in scan.sample
    ]
    if not names or not len(scan.sample):
        return {}
    values = scan.sample[names].to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(values)
    complete = ~missing.any(axis=0)
    keys = ("p5", "p25", "p50", "p75", "p95")
    out: dict[str, dict[str, float | None]] = {}
    if complete.any():  # columns without gaps: one sort for all of them
        qs = np.quantile(values[:, complete], QUANTILES, axis=0)
        for j, i in enumerate(np.flatnonzero(complete)):
            out[names[i]] = {k: _r(v) for k, v in zip(keys, qs[:, j])}
    for i in np.flatnonzero(~complete):  # columns with gaps: their values only (np.nanquantile loops anyway)
        col = values[~missing[:, i], i]
        if len(col):
            out[names[i]] = {k: _r(v) for k, v in zip(keys, np.quantile(col, QUANTILES))}
    return {n: out[n] for n in names if n in out}


def build_profile(scan: Scan) -> dict[str, Any]:
    """Per-column summary and chart data (plotly-ready: {"kind": "histogram"|"bar", "x": [...], "y": [...]})."""
    cols = []
    quantiles = _sample_quantiles(scan)
    for s in scan.columns.values():
        total = s.count + s.nulls
        entry: dict[str, Any] = {
            "name": s.name,
            "type": s.type,
            "count": s.count,
            "nulls": s.nulls,
            "null_share": _r(s.nulls / total if total else 0.0),
        }
        if s.type in ("integer", "number") and s.count:
            mean = s.sum / s.count
            var = max(0.0, s.sumsq / s.count - mean * mean)
            entry.update(min=_r(s.min), max=_r(s.max), mean=_r(mean), std=_r(math.sqrt(var)))
            if s.name in quantiles:
                entry["quantiles"] = quantiles[s.name]
            if s.hist_edges is not None and s.hist_counts is not None:
                e = s.hist_edges
                centres = [_r((e[i] + e[i + 1]) / 2) for i in range(len(e) - 1)]
                entry["chart"] = {
                    "kind": "histogram",
                    "x": centres,
                    "y": s.hist_counts.tolist(),
                    "width": _r(e[1] - e[0]) if len(e) > 1 else 1,
                }
        elif s.counts is not None and s.type in ("string", "category", "boolean"):
            top = sorted(s.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            entry["distinct"] = len(s.counts)
            entry["top"] = [{"value": str(k), "count": int(v)} for k, v in top[:TOP_CATEGORIES]]
            rest = sum(v for _, v in top[TOP_CATEGORIES:])
            x = [str(k) for k, _ in top[:TOP_CATEGORIES]] + (["(other)"] if rest else [])
            y = [int(v) for _, v in top[:TOP_CATEGORIES]] + ([rest] if rest else [])
            entry["chart"] = {"kind": "bar", "x": x, "y": y}
        elif s.counts is None:
            entry["distinct"] = f"more than {MAX_TRACKED:,}"
        cols.append(entry)
    return {
        "n_rows": scan.n_rows,
        "n_cols": len(scan.columns),
        "duplicate_rows": scan.duplicate_rows,
        "sample_rows": int(len(scan.sample)),
        "columns": cols,
    }


def profile_figure(column_profile: ColumnProfilePublic):
    """A plotly figure for one column's stored chart data (used by the dataset page)."""
    # plotly is heavy: loaded only when a chart is drawn
    import plotly.graph_objects as go

    chart = column_profile.chart
    if not chart:
        return None
    if chart.kind == "histogram":
        bar = go.Bar(x=chart.x, y=chart.y, width=chart.width, marker_line_width=0)
    else:
        bar = go.Bar(x=chart.x, y=chart.y)
    # The layout goes into the constructor: a later update_layout() costs twice the whole figure's CPU,
    # and the dataset page draws one figure per column on every render.
    return go.Figure(
        bar,
        layout=dict(
            height=220,
            margin=dict(l=10, r=10, t=30, b=10),
            title=column_profile.name,
            bargap=0.02 if chart.kind == "histogram" else 0.2,
            showlegend=False,
        ),
    )
