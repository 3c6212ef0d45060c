"""Profile of a dataset version: one streaming pass over its Parquet file.

The pass collects what both the profile (per-column summary, plotly-ready histograms and bar
charts) and the validation report need (null counts, ranges, category counts, out-of-range and
unseen values, which validation rules gather through `rules`, row hashes for duplicates) plus a
reproducible sample for drift and diffs. The
profile is computed once when the version is registered and stored as a JSON artifact; pages
read it, they never recompute it.

Larger than memory (issue 16): the pass reads `MLOPS_STREAM_BATCH_ROWS` rows at a time, and nothing it
keeps grows with the row count beyond `MLOPS_STREAM_MEMORY_MB`:
  - count, nulls, min, max, mean, std (Chan's merge of per-batch moments), histograms, true counts and
    duplicate rows are exact. Row hashes for duplicates stay in memory up to a quarter of the budget;
    past it they are spilled to disk in hash partitions, each counted on its own (still exact).
  - category counts are exact up to MAX_TRACKED distinct values; past it a column keeps a Misra-Gries
    summary of MAX_TRACKED counters (mergeable per batch; each count is low by at most rows/(MAX_TRACKED+1))
    for its top values, and its distinct count comes from DuckDB's HyperLogLog (approx_count_distinct).
  - quantiles are exact when the sample holds every row, else DuckDB's t-digest (approx_quantile) over the
    file, run with a memory limit taken from the same budget.
Each figure of the profile says which kind it is (`kinds`: "exact", "sketch: t-digest", ...).
Validation findings read only exact figures, so they are the same as before on any file.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from .config import get_settings
from .data_io import row_hashes, staging_dir
from .models.datasets import ColumnProfilePublic

SAMPLE_ROWS = 50_000  # rows kept for drift and diffs (a Bernoulli sample with a fixed seed)
MAX_TRACKED = 1_000  # distinct values counted per text column before it counts as high-cardinality
TOP_CATEGORIES = 20  # bars shown per categorical column
HIST_BINS = 30
EXACT = "exact"
TDIGEST = "sketch: t-digest"
HLL = "sketch: HyperLogLog"
MISRA_GRIES = "sketch: Misra-Gries"
SKETCH_COLUMNS_PER_QUERY = 200  # DuckDB aggregates per query on wide files
MAX_PARTITION_BITS = 8  # at most 256 partition files open at once for duplicate hashes (well under ulimit -n)


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
    m2: float = 0.0  # sum of squared deviations from the running mean (Chan et al.'s merge, per batch)
    counts: dict[str, int] | None = field(default_factory=dict)  # None once past MAX_TRACKED
    heavy: dict[str, int] | None = None  # Misra-Gries summary of the top values once `counts` is None
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
    # figures sketched over the whole file when the sample does not hold every row, by column:
    # {"quantiles": {"p5": ..}, "distinct": n}
    sketches: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sample_is_complete(self) -> bool:
        return len(self.sample) == self.n_rows


def _merge_moments(s: ColumnScan, values: np.ndarray) -> None:
    """Add a batch's values to the running mean/M2 (Chan, Golub, LeVeque): exact, stable on long files."""
    n_b = len(values)
    if not n_b:
        return
    mean_b = float(values.mean())
    m2_b = float(np.square(values - mean_b).sum())
    n_a = s.count - n_b  # s.count already includes this batch
    if n_a <= 0:
        s.m2 = m2_b
        return
    mean_a = (s.sum - float(values.sum())) / n_a
    delta = mean_b - mean_a
    s.m2 += m2_b + delta * delta * n_a * n_b / (n_a + n_b)


def _misra_gries(summary: dict[str, int], values: list, counts: np.ndarray, k: int) -> None:
    """Merge one batch's exact value counts into a Misra-Gries summary of at most `k` counters.

    The batch is first reduced to its own summary (subtract its (k+1)-th largest count), then merged and
    reduced again: summaries are mergeable (Agarwal et al., 2012), every count is low by at most n/(k+1).
    """
    if len(counts) > k:
        cut = np.partition(counts, len(counts) - k - 1)[len(counts) - k - 1]
        keep = np.flatnonzero(counts > cut)
        values, counts = [values[i] for i in keep], counts[keep] - cut
    for v, n in zip(values, counts.tolist()):
        summary[v] = summary.get(v, 0) + n
    if len(summary) > k:
        cut = sorted(summary.values(), reverse=True)[k]
        for v in [v for v, n in summary.items() if n <= cut]:
            del summary[v]
        for v in summary:
            summary[v] -= cut


class DuplicateCounter:
    """Exact count of rows whose 64-bit row hash equals an earlier row's, in bounded memory.

    Hashes stay in memory while `n_rows` x 8 bytes fits `budget_bytes`; past that each batch's hashes are
    appended to 2**k partition files by their top bits, and each partition is sorted and counted alone
    (equal hashes always land in the same partition, so the total is the same as one big sort).
    """

    def __init__(self, n_rows: int, budget_bytes: int) -> None:
        self.bits = 0
        while (n_rows * 8) >> self.bits > budget_bytes and self.bits < MAX_PARTITION_BITS:
            self.bits += 1
        # in memory: one array filled in place (a list of pieces concatenated at the end held them twice)
        self._memory = np.empty(0 if self.bits else n_rows, dtype=np.uint64)
        self._filled = 0
        self._dir: tempfile.TemporaryDirectory | None = None
        self._files: list[Any] = []
        if self.bits:
            self._dir = tempfile.TemporaryDirectory(dir=staging_dir(), prefix="dups-")
            self._files = [open(os.path.join(self._dir.name, f"{i}.u64"), "wb") for i in range(1 << self.bits)]  # noqa: SIM115

    @property
    def partitions(self) -> int:
        return 1 << self.bits

    def add(self, hashes: np.ndarray) -> None:
        if not self.bits:
            end = self._filled + len(hashes)
            if end > len(self._memory):  # more rows than the footer said: grow (never for a canonical file)
                grown = np.empty(max(end, 2 * len(self._memory)), dtype=np.uint64)
                grown[: self._filled] = self._memory[: self._filled]
                self._memory = grown
            self._memory[self._filled : end] = hashes
            self._filled = end
            return
        part = (hashes >> np.uint64(64 - self.bits)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        sorted_h, sorted_p = hashes[order], part[order]
        bounds = np.searchsorted(sorted_p, np.arange(len(self._files) + 1))
        for i, f in enumerate(self._files):
            if bounds[i + 1] > bounds[i]:
                sorted_h[bounds[i] : bounds[i + 1]].tofile(f)

    @staticmethod
    def _count(h: np.ndarray) -> int:
        h.sort()  # a plain sort beats np.unique's hash table on a million uint64s
        return int(np.count_nonzero(h[1:] == h[:-1]))

    def count(self) -> int:
        try:
            if not self.bits:
                return self._count(self._memory[: self._filled])
            total = 0
            for f in self._files:
                f.close()
                total += self._count(np.fromfile(f.name, dtype=np.uint64))
                os.unlink(f.name)
            return total
        finally:
            self.close()

    def close(self) -> None:
        self._memory = np.empty(0, dtype=np.uint64)
        for f in self._files:
            f.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def sketch_parquet(
    path: Path, scans: dict[str, ColumnScan], position: dict[str, int], *, memory_mb: int
) -> dict[str, dict[str, Any]]:
    """Quantiles (t-digest) of numeric columns and distinct counts (HyperLogLog) of text columns past
    MAX_TRACKED values, in DuckDB passes over the Parquet file under a memory limit.

    The file's columns are renamed by position (c0, c1, ...) in the query, so no column name, which a
    user chose, is ever part of the SQL text; the path is a bound parameter."""
    # duckdb is loaded only when a file too big for an exact sample is profiled
    import duckdb

    qs = ", ".join(str(x) for x in QUANTILES)
    exprs: list[tuple[str, str, str]] = []
    for s in scans.values():
        if not s.count:
            continue
        ref = f"c{position[s.name]}"
        if s.type in ("integer", "number"):
            exprs.append((s.name, "quantiles", f"approx_quantile(CAST({ref} AS DOUBLE), [{qs}])"))
        elif s.type in ("string", "category") and s.counts is None:
            exprs.append((s.name, "distinct", f"approx_count_distinct({ref})"))
    if not exprs:
        return {}
    aliases = ", ".join(f"c{i}" for i in range(len(position)))
    keys = ("p5", "p25", "p50", "p75", "p95")
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=staging_dir(), prefix="duckdb-") as spill:
        con = duckdb.connect(
            config={
                "memory_limit": f"{max(16, memory_mb // 2)}MB",
                "threads": max(1, min(4, os.cpu_count() or 1)),
                "preserve_insertion_order": False,
                "temp_directory": spill,
            }
        )
        try:
            for i in range(0, len(exprs), SKETCH_COLUMNS_PER_QUERY):
                part = exprs[i : i + SKETCH_COLUMNS_PER_QUERY]
                # only generated names (c0, c1, ...) and numbers are in the text; the path is a parameter
                query = "SELECT " + ", ".join(e for _, _, e in part) + f" FROM read_parquet($1) AS t({aliases})"  # noqa: S608
                row = con.execute(query, [str(path)]).fetchone()
                for (name, figure, _), value in zip(part, row):
                    if figure == "quantiles":
                        value = {k: _r(v) for k, v in zip(keys, value or ())}
                    out.setdefault(name, {})[figure] = value
        finally:
            con.close()
    return out


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
    batch_size: int | None = None,
    sample_rows: int = SAMPLE_ROWS,
    memory_mb: int | None = None,
    progress=None,
) -> Scan:
    """One pass over the file. `columns`: [{"name","type"}] of the version; `schema`: the dataset schema;
    `rules`: the validation rules, each asked per schema column whether it gathers figures of its own.
    `batch_size` (rows) and `memory_mb` default to MLOPS_STREAM_BATCH_ROWS and MLOPS_STREAM_MEMORY_MB."""
    # pandas is heavy: loaded only when a frame is built
    import pandas as pd
    import pyarrow.parquet as pq

    settings = get_settings()
    batch_size = int(batch_size or settings.stream_batch_rows)
    memory_mb = int(memory_mb or settings.stream_memory_mb)
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
    duplicates = DuplicateCounter(n_rows, memory_mb * 1024 * 1024 // 4)
    samples = []
    done = 0

    # Row group by row group: iter_batches reads ahead and holds far more memory (issue 4's memory target).
    # The canonical writer bounds a row group by rows and bytes (data_io), so one group fits the budget.
    def batches():
        for g in range(pf.num_row_groups):
            yield from pf.read_row_group(g).to_batches(max_chunksize=batch_size)

    try:
        for batch in batches():
            done += _scan_batch(batch, scans, position, collecting, rules_by_name, duplicates, samples, rng, p)
            if progress is not None and n_rows:
                progress(done / n_rows, f"profiled {done:,} of {n_rows:,} rows")
        duplicate_rows = duplicates.count()
    finally:
        duplicates.close()
    for s in scans.values():
        if s.heavy is not None:  # top values of a high-cardinality column: the summary's largest counters
            s.heavy = dict(sorted(s.heavy.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_CATEGORIES])
    if samples:
        sample = pd.concat(samples, ignore_index=True)
    else:
        sample = pf.schema_arrow.empty_table().to_pandas()
    scan = Scan(n_rows=n_rows, columns=scans, duplicate_rows=duplicate_rows, sample=sample)
    if not scan.sample_is_complete:
        scan.sketches = sketch_parquet(path, scans, position, memory_mb=memory_mb)
    return scan


def _scan_batch(batch, scans, position, collecting, rules_by_name, duplicates, samples, rng, p) -> int:
    """One batch into the running figures; returns its row count."""
    import pyarrow as pa
    import pyarrow.compute as pc

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
            _merge_moments(s, values)
            if s.hist_edges is not None:
                # uniform bins given as (count, range) take numpy's fast path (no per-value search)
                e = s.hist_edges
                c, _ = np.histogram(values, bins=len(e) - 1, range=(e[0], e[-1]))
                s.hist_counts += c
        elif s.type == "boolean":
            s.true_count += int(pc.sum(arr).as_py() or 0)
            s.counts = {"True": s.true_count, "False": s.count - s.true_count}
        elif s.type in ("string", "category"):
            vc = pc.value_counts(arr.drop_null())
            if s.counts is not None:
                for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                    s.counts[v] = s.counts.get(v, 0) + n
                if len(s.counts) > MAX_TRACKED:  # exact counts end here; the top values go on as a sketch
                    full, s.counts, s.heavy = s.counts, None, {}
                    counts = np.fromiter(full.values(), dtype=np.int64, count=len(full))
                    _misra_gries(s.heavy, list(full), counts, MAX_TRACKED)
            else:
                _misra_gries(
                    s.heavy, vc.field("values").to_pylist(), vc.field("counts").to_numpy().astype(np.int64), MAX_TRACKED
                )
        for rule in collecting.get(name, ()):
            rule.collect(s, arr, values, rules_by_name[name])
    duplicates.add(row_hashes(batch))
    if p >= 1.0:
        samples.append(batch.to_pandas())
    else:
        keep = rng.random(m) < p
        samples.append(batch.filter(pa.array(keep)).to_pandas())
    return m


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


def _bar(counts: list[tuple[Any, int]], total: int) -> dict[str, Any]:
    shown = counts[:TOP_CATEGORIES]
    rest = total - sum(v for _, v in shown)
    x = [str(k) for k, _ in shown] + (["(other)"] if rest > 0 else [])
    y = [int(v) for _, v in shown] + ([int(rest)] if rest > 0 else [])
    return {"kind": "bar", "x": x, "y": y}


def build_profile(scan: Scan) -> dict[str, Any]:
    """Per-column summary and chart data (plotly-ready: {"kind": "histogram"|"bar", "x": [...], "y": [...]}).

    Each column's `kinds` says, per figure, whether it is exact or which sketch made it."""
    cols = []
    complete = scan.sample_is_complete
    quantiles = _sample_quantiles(scan) if complete else {}
    for s in scan.columns.values():
        total = s.count + s.nulls
        sketched = scan.sketches.get(s.name, {})
        entry: dict[str, Any] = {
            "name": s.name,
            "type": s.type,
            "count": s.count,
            "nulls": s.nulls,
            "null_share": _r(s.nulls / total if total else 0.0),
        }
        kinds = {"count": EXACT, "nulls": EXACT}
        if s.type in ("integer", "number") and s.count:
            mean = s.sum / s.count
            var = max(0.0, s.m2 / s.count)
            entry.update(min=_r(s.min), max=_r(s.max), mean=_r(mean), std=_r(math.sqrt(var)))
            kinds.update(min=EXACT, max=EXACT, mean=EXACT, std=EXACT)
            if s.name in quantiles:
                entry["quantiles"], kinds["quantiles"] = quantiles[s.name], EXACT
            elif sketched.get("quantiles"):
                entry["quantiles"], kinds["quantiles"] = sketched["quantiles"], TDIGEST
            if s.hist_edges is not None and s.hist_counts is not None:
                e = s.hist_edges
                centres = [_r((e[i] + e[i + 1]) / 2) for i in range(len(e) - 1)]
                entry["chart"] = {
                    "kind": "histogram",
                    "x": centres,
                    "y": s.hist_counts.tolist(),
                    "width": _r(e[1] - e[0]) if len(e) > 1 else 1,
                }
                kinds["chart"] = EXACT
        elif s.counts is not None and s.type in ("string", "category", "boolean"):
            top = sorted(s.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            entry["distinct"] = len(s.counts)
            entry["top"] = [{"value": str(k), "count": int(v)} for k, v in top[:TOP_CATEGORIES]]
            entry["chart"] = _bar(top, s.count)
            kinds.update(distinct=EXACT, top=EXACT, chart=EXACT)
        elif s.counts is None:
            if complete and s.name in scan.sample:
                entry["distinct"], kinds["distinct"] = int(scan.sample[s.name].nunique(dropna=True)), EXACT
            elif sketched.get("distinct") is not None:
                entry["distinct"], kinds["distinct"] = int(sketched["distinct"]), HLL
            else:
                entry["distinct"] = f"more than {MAX_TRACKED:,}"
            if complete and s.name in scan.sample:  # the sample is the data: exact top values
                vc = scan.sample[s.name].value_counts(dropna=True)
                top, kind = sorted(vc.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_CATEGORIES], EXACT
            else:
                top, kind = sorted((s.heavy or {}).items(), key=lambda kv: (-kv[1], str(kv[0]))), MISRA_GRIES
            if top:
                entry["top"] = [{"value": str(k), "count": int(v)} for k, v in top[:TOP_CATEGORIES]]
                entry["chart"] = _bar(top, s.count)
                kinds.update(top=kind, chart=kind)
        entry["kinds"] = kinds
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
