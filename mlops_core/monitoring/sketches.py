"""Mergeable binned sketches of a frame's columns, and drift verdicts computed from them (issue 16, point 4).

A monitor over a window of millions of logged predictions cannot hold the window in memory. Instead
the reference (a model version's training data) is summarised once into sketches that are stored as
JSON, and the window is read in batches, each batch summarised with the *same* bin edges and merged.
The drift tests of :mod:`drift` are then computed from the binned counts.

Numeric column (:class:`NumericSketch`): fixed edges taken from the reference — every distinct
reference value when there are at most ``MAX_EDGES`` of them, else ``MAX_EDGES`` + 1 reference
quantiles (actual data values). Per edge the count of values equal to it, per open interval between
edges (and below the first / above the last) the count and the sum of the values in it, plus the
exact count, mean, M2 (for the standard deviation), min and max, the number of nulls, and up to
``MAX_OTHERS`` values that are not an edge with their counts (so a discrete column is counted exactly).

Categorical column (:class:`CategoricalSketch`): counts per reference category, counts of up to
``MAX_OTHERS`` values the reference never had, the total of all others, nulls, and the first and
last non-null value (the current's column type depends on them, as in evidently).

Every sketch merges with another built on the same edges or categories: ``a.merge(b)`` equals the
sketch of the concatenated data (counts exactly; the moments up to floating-point rounding).

How close the figures are to :func:`drift.detect_drift` on the same data:
  * categorical columns, and numeric columns with at most ``MAX_OTHERS`` values outside the edges:
    the counts are exact, so chi-square, z and Jensen-Shannon are the same numbers;
  * KS (reference of at most 1000 rows, so its edges are all its values): the statistic is exact —
    between two reference values the reference CDF is flat, so the largest gap is at an edge or just
    before one — and the p-value is scipy's for the same statistic and sample sizes;
  * Wasserstein: per interval the area between the two CDFs is exact when they do not cross inside it
    (computed from the interval's count and sum of values); where they cross it is interpolated, an
    error of at most (interval width x interval mass), tiny with 1000 quantile bins;
  * Jensen-Shannon on a continuous column (only with a method override) re-bins the fine bins into the
    Sturges bins the exact path uses, spreading an interval's count in proportion of its width;
  * text columns are not summarised: they are skipped with a reason.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import orjson
import pandas as pd

from . import drift as _drift
from .drift import (
    CAT,
    NUM,
    SMALL_REFERENCE_MAX_ROWS,
    SUPPORTED_METHODS,
    TEXT,
    ColumnDrift,
    DriftResult,
    categorical_effect,
)

__all__ = [
    "NumericSketch",
    "CategoricalSketch",
    "FrameSketch",
    "detect_drift_from_sketches",
    "MAX_EDGES",
    "MAX_OTHERS",
]

SKETCH_FORMAT = 1
#: A reference column with more distinct values than this is binned at this many quantiles.
MAX_EDGES = 1000
#: Values outside the edges / categories counted one by one; beyond this only their total is kept.
MAX_OTHERS = 64

_FLOAT_KINDS = "f"
_INT_KINDS = "iu"


def _scalar(value: Any) -> Any:
    """A JSON-safe Python scalar (numpy scalars unwrapped, anything else as its string)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _merge_others(a: Optional[Dict[Any, int]], b: Optional[Dict[Any, int]]) -> Optional[Dict[Any, int]]:
    if a is None or b is None:
        return None
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out if len(out) <= MAX_OTHERS else None


# --------------------------------------------------------------------------------------------
# Numeric
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class NumericSketch:
    edges: np.ndarray  # sorted distinct float64
    at: np.ndarray  # int64, len(edges): values equal to each edge
    between: np.ndarray  # int64, len(edges) + 1: values in (edge[i-1], edge[i]); [0] below, [-1] above
    between_sum: np.ndarray  # float64, len(edges) + 1: their sum
    n: int = 0  # finite values
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    vmin: float = math.inf
    vmax: float = -math.inf
    nulls: int = 0  # null, non-numeric or non-finite values
    others: Optional[Dict[float, int]] = dataclasses.field(default_factory=dict)  # None: more than MAX_OTHERS
    exact: bool = False  # the edges are every distinct value of the reference

    @staticmethod
    def edges_for(values: np.ndarray, max_edges: int = MAX_EDGES) -> Tuple[np.ndarray, bool]:
        """(edges, every distinct value?) for a reference column's finite values."""
        v = np.sort(np.asarray(values, dtype=np.float64))
        v = v[np.isfinite(v)]
        distinct = np.unique(v)
        if distinct.size <= max_edges:
            return distinct, True
        idx = np.round(np.linspace(0, v.size - 1, max_edges + 1)).astype(np.int64)
        return np.unique(v[idx]), False

    @classmethod
    def empty(cls, edges: np.ndarray, exact: bool = False) -> "NumericSketch":
        k = len(edges)
        return cls(
            edges=np.asarray(edges, dtype=np.float64),
            at=np.zeros(k, dtype=np.int64),
            between=np.zeros(k + 1, dtype=np.int64),
            between_sum=np.zeros(k + 1, dtype=np.float64),
            exact=exact,
        )

    @classmethod
    def reference(cls, values: Any, max_edges: int = MAX_EDGES) -> "NumericSketch":
        arr = _as_float(values)
        edges, exact = cls.edges_for(arr, max_edges)
        return cls.from_batch(arr, edges, exact=exact)

    @classmethod
    def from_batch(cls, values: Any, edges: np.ndarray, *, exact: bool = False) -> "NumericSketch":
        out = cls.empty(edges, exact)
        arr = _as_float(values)
        finite = np.isfinite(arr)
        v = arr[finite] if not finite.all() else arr
        out.nulls = int(arr.size - v.size)
        if v.size == 0:
            return out
        k = len(out.edges)
        idx = np.searchsorted(out.edges, v, "left")
        if k:
            hit = out.edges[np.minimum(idx, k - 1)] == v
        else:
            hit = np.zeros(v.size, dtype=bool)
        out.at = np.bincount(idx[hit], minlength=k).astype(np.int64)
        miss = ~hit
        between_idx = idx[miss]
        rest = v[miss]
        out.between = np.bincount(between_idx, minlength=k + 1).astype(np.int64)
        out.between_sum = np.bincount(between_idx, weights=rest, minlength=k + 1)
        if rest.size:
            uniq, counts = np.unique(rest[: MAX_OTHERS * 64], return_counts=True)
            if uniq.size > MAX_OTHERS:
                out.others = None
            else:
                if rest.size > MAX_OTHERS * 64:
                    uniq, counts = np.unique(rest, return_counts=True)
                out.others = None if uniq.size > MAX_OTHERS else {float(a): int(c) for a, c in zip(uniq, counts)}
        out.n = int(v.size)
        out.mean = float(v.mean())
        out.m2 = float(((v - out.mean) ** 2).sum())
        out.vmin = float(v.min())
        out.vmax = float(v.max())
        return out

    def merge(self, other: "NumericSketch") -> "NumericSketch":
        if len(self.edges) != len(other.edges) or not np.array_equal(self.edges, other.edges):
            raise ValueError("numeric sketches with different bin edges cannot be merged")
        n = self.n + other.n
        if n:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.n / n
            m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        else:
            mean, m2 = 0.0, 0.0
        return NumericSketch(
            edges=self.edges,
            at=self.at + other.at,
            between=self.between + other.between,
            between_sum=self.between_sum + other.between_sum,
            n=n,
            mean=mean,
            m2=m2,
            vmin=min(self.vmin, other.vmin),
            vmax=max(self.vmax, other.vmax),
            nulls=self.nulls + other.nulls,
            others=_merge_others(self.others, other.others),
            exact=self.exact and other.exact,
        )

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    def distinct(self) -> Optional[int]:
        """Number of distinct values, None when more than the edges hit plus ``MAX_OTHERS``."""
        if self.others is None:
            return None
        return int(np.count_nonzero(self.at)) + len(self.others)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": "numeric",
            "edges": self.edges.tolist(),
            "at": self.at.tolist(),
            "between": self.between.tolist(),
            "between_sum": self.between_sum.tolist(),
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.vmin if self.n else None,
            "max": self.vmax if self.n else None,
            "nulls": self.nulls,
            "others": None if self.others is None else [[k, v] for k, v in sorted(self.others.items())],
            "exact": self.exact,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NumericSketch":
        return cls(
            edges=np.asarray(d["edges"], dtype=np.float64),
            at=np.asarray(d["at"], dtype=np.int64),
            between=np.asarray(d["between"], dtype=np.int64),
            between_sum=np.asarray(d["between_sum"], dtype=np.float64),
            n=int(d["n"]),
            mean=float(d["mean"]),
            m2=float(d["m2"]),
            vmin=math.inf if d.get("min") is None else float(d["min"]),
            vmax=-math.inf if d.get("max") is None else float(d["max"]),
            nulls=int(d.get("nulls", 0)),
            others=None if d.get("others") is None else {float(k): int(v) for k, v in d["others"]},
            exact=bool(d.get("exact", False)),
        )


def _as_float(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        if values.dtype.kind in "fiub":
            return values.to_numpy(dtype=np.float64)
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Categorical
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CategoricalSketch:
    keys: List[Any]  # the reference's categories, in order of first appearance
    counts: np.ndarray  # int64, len(keys)
    others: Optional[Dict[Any, int]] = dataclasses.field(default_factory=dict)  # None: more than MAX_OTHERS
    other_total: int = 0  # every value that is not a key
    nulls: int = 0
    first: Any = None  # first and last non-null values (evidently's text check looks at their type)
    last: Any = None
    _index: Optional[Dict[Any, int]] = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.other_total

    @classmethod
    def empty(cls, keys: Sequence[Any]) -> "CategoricalSketch":
        return cls(keys=list(keys), counts=np.zeros(len(keys), dtype=np.int64))

    @classmethod
    def reference(cls, values: Any) -> "CategoricalSketch":
        s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        codes, uniques = pd.factorize(s.to_numpy(), use_na_sentinel=True)
        keys = [_scalar(u) for u in uniques]
        keep = [i for i, k in enumerate(keys) if not (isinstance(k, float) and math.isinf(k))]
        return cls.from_batch(s, [keys[i] for i in keep])

    def index(self) -> Dict[Any, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys)}
        return self._index

    @classmethod
    def from_batch(
        cls, values: Any, keys: Sequence[Any], index: Optional[Dict[Any, int]] = None
    ) -> "CategoricalSketch":
        out = cls.empty(keys)
        if index is not None:
            out._index = index
        s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        arr = s.to_numpy()
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        present = np.flatnonzero(codes >= 0)
        out.nulls = int(len(arr) - present.size)
        if present.size == 0:
            return out
        out.first = _scalar(uniques[codes[present[0]]])
        out.last = _scalar(uniques[codes[present[-1]]])
        counts = np.bincount(codes[present], minlength=len(uniques))
        idx = out.index()
        others: Dict[Any, int] = {}
        for u, c in zip(uniques, counts):
            key = _scalar(u)
            if isinstance(key, float) and math.isinf(key):  # evidently drops +-inf like nulls
                out.nulls += int(c)
                continue
            i = idx.get(key)
            if i is None:
                others[key] = others.get(key, 0) + int(c)
                out.other_total += int(c)
            else:
                out.counts[i] += int(c)
        out.others = others if len(others) <= MAX_OTHERS else None
        return out

    def merge(self, other: "CategoricalSketch") -> "CategoricalSketch":
        if self.keys != other.keys:
            raise ValueError("categorical sketches with different categories cannot be merged")
        has_self = self.n > 0
        has_other = other.n > 0
        return CategoricalSketch(
            keys=self.keys,
            counts=self.counts + other.counts,
            others=_merge_others(self.others, other.others),
            other_total=self.other_total + other.other_total,
            nulls=self.nulls + other.nulls,
            first=self.first if has_self else other.first,
            last=other.last if has_other else self.last,
            _index=self._index,
        )

    def distinct(self) -> Optional[int]:
        if self.others is None:
            return None
        return int(np.count_nonzero(self.counts)) + len(self.others)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "type": "categorical",
            "keys": list(self.keys),
            "counts": self.counts.tolist(),
            "others": None if self.others is None else [[k, v] for k, v in self.others.items()],
            "other_total": self.other_total,
            "nulls": self.nulls,
            "first": self.first,
            "last": self.last,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CategoricalSketch":
        return cls(
            keys=list(d["keys"]),
            counts=np.asarray(d["counts"], dtype=np.int64),
            others=None if d.get("others") is None else {k: int(v) for k, v in d["others"]},
            other_total=int(d.get("other_total", 0)),
            nulls=int(d.get("nulls", 0)),
            first=d.get("first"),
            last=d.get("last"),
        )


# --------------------------------------------------------------------------------------------
# A frame's sketches
# --------------------------------------------------------------------------------------------

Sketch = Any  # NumericSketch | CategoricalSketch | None (a dtype that is not summarised)


def _sketch_from_dict(d: Optional[Mapping[str, Any]]) -> Sketch:
    if d is None:
        return None
    return NumericSketch.from_dict(d) if d["type"] == "numeric" else CategoricalSketch.from_dict(d)


def _kind_of(dtype: Any) -> Optional[str]:
    """Which sketch a reference dtype gets: "numeric", "categorical" or None (not summarised)."""
    name = getattr(dtype, "name", str(dtype))
    kind = getattr(dtype, "kind", "")
    if name.startswith(("float", "int")) and kind in _FLOAT_KINDS + _INT_KINDS:
        return "numeric"
    if name in ("bool", "object", "string", "str", "category"):
        return "categorical"
    return None


@dataclasses.dataclass
class FrameSketch:
    """Sketches of a frame's columns; ``dtypes`` are the *reference's* dtype names (drift rules use them)."""

    dtypes: Dict[str, str]
    columns: Dict[str, Sketch]
    n_rows: int = 0

    @classmethod
    def reference(cls, frame: pd.DataFrame, max_edges: int = MAX_EDGES) -> "FrameSketch":
        dtypes, cols = {}, {}
        for c in frame.columns:
            s = frame[c]
            dtypes[str(c)] = s.dtype.name
            kind = _kind_of(s.dtype)
            if kind == "numeric":
                cols[str(c)] = NumericSketch.reference(s, max_edges)
            elif kind == "categorical":
                cols[str(c)] = CategoricalSketch.reference(s)
            else:
                cols[str(c)] = None
        return cls(dtypes=dtypes, columns=cols, n_rows=len(frame))

    def empty_like(self) -> "FrameSketch":
        cols: Dict[str, Sketch] = {}
        for c, sk in self.columns.items():
            if isinstance(sk, NumericSketch):
                cols[c] = NumericSketch.empty(sk.edges, sk.exact)
            elif isinstance(sk, CategoricalSketch):
                cols[c] = CategoricalSketch.empty(sk.keys)
                cols[c]._index = sk.index()
            else:
                cols[c] = None
        return FrameSketch(dtypes=dict(self.dtypes), columns=cols, n_rows=0)

    def from_batch(self, frame: pd.DataFrame) -> "FrameSketch":
        """The sketch of ``frame`` (the current data) on this (reference) sketch's edges and categories."""
        cols: Dict[str, Sketch] = {}
        for c, sk in self.columns.items():
            if sk is None:
                cols[c] = None
                continue
            values = frame[c] if c in frame.columns else pd.Series([None] * len(frame), dtype=object)
            if isinstance(sk, NumericSketch):
                cols[c] = NumericSketch.from_batch(values, sk.edges, exact=sk.exact)
            else:
                cols[c] = CategoricalSketch.from_batch(values, sk.keys, sk.index())
        return FrameSketch(dtypes=dict(self.dtypes), columns=cols, n_rows=len(frame))

    def merge(self, other: "FrameSketch") -> "FrameSketch":
        if list(self.columns) != list(other.columns):
            raise ValueError("frame sketches with different columns cannot be merged")
        cols = {c: (None if sk is None else sk.merge(other.columns[c])) for c, sk in self.columns.items()}
        return FrameSketch(dtypes=dict(self.dtypes), columns=cols, n_rows=self.n_rows + other.n_rows)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": SKETCH_FORMAT,
            "n_rows": self.n_rows,
            "dtypes": dict(self.dtypes),
            "columns": {c: (None if sk is None else sk.to_dict()) for c, sk in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FrameSketch":
        if int(d.get("format", 0)) != SKETCH_FORMAT:
            raise ValueError(f"sketch format {d.get('format')} is not {SKETCH_FORMAT}; recompute the sketches")
        return cls(
            dtypes=dict(d["dtypes"]),
            columns={c: _sketch_from_dict(v) for c, v in dict(d["columns"]).items()},
            n_rows=int(d.get("n_rows", 0)),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> "FrameSketch":
        return cls.from_dict(orjson.loads(data))

    def empty_frame(self) -> pd.DataFrame:
        """A 0-row frame with the reference's dtypes (what ``windows.align`` aligns a batch to)."""
        return pd.DataFrame({c: pd.Series(dtype=dt) for c, dt in self.dtypes.items()})


# --------------------------------------------------------------------------------------------
# Drift from sketches
# --------------------------------------------------------------------------------------------


class _Skip(Exception):
    pass


class _Unsupported(Exception):
    pass


def _current_type(dtype: str, cur: Sketch) -> str:
    """The column type ``detect_drift`` infers on the aligned current column (see ``windows.align``)."""
    if dtype.startswith("float"):
        return NUM
    if dtype.startswith(("int", "uint")):
        if cur.nulls:  # align leaves an int column with a null as float
            return NUM
        d = cur.distinct()
        if cur.n and d is not None and d <= _drift.INTEGER_CARDINALITY_LIMIT:
            return CAT
        return NUM
    if dtype in ("category",):
        return CAT
    if dtype == "bool":
        if cur.n == 0:
            raise _Skip("no non-null values in the current data")
        if cur.nulls:  # align leaves a bool column with a null as object: not checked by evidently
            raise _Unsupported("object")
        return CAT
    # object / string
    if cur.n == 0:
        if dtype == "object":
            raise _Skip("no non-null values in the current data")
        return CAT
    if dtype == "object" and not (isinstance(cur.first, str) and isinstance(cur.last, str)):
        raise _Unsupported("object")
    d = cur.distinct()
    if d is None:
        if MAX_OTHERS + 1 > cur.n * 0.5:
            return TEXT  # more distinct values than could be counted, and more than half of them
        raise _Skip("too many distinct values to tell a text column from a categorical one in sketches")
    return TEXT if d > cur.n * 0.5 else CAT


def _discrete_numeric(ref: NumericSketch, cur: NumericSketch) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, reference counts, current counts) of every value present; NaN keys one bucket of the values
    a side has beyond MAX_OTHERS (none of them is a reference value when the reference is exact)."""
    keys: Dict[float, List[int]] = {}
    for e, a, b in zip(ref.edges.tolist(), ref.at.tolist(), cur.at.tolist()):
        if a or b:
            keys[e] = [a, b]
    for side, sk in ((0, ref), (1, cur)):
        if sk.others is None:
            rest = int(sk.between.sum())
            if rest:
                keys.setdefault(math.nan, [0, 0])[side] += rest
            continue
        for v, c in sk.others.items():
            keys.setdefault(v, [0, 0])[side] += c
    ordered = sorted(keys.items(), key=lambda kv: (math.isnan(kv[0]), kv[0]))
    k = np.array([kv[0] for kv in ordered], dtype=np.float64)
    rc = np.array([kv[1][0] for kv in ordered], dtype=np.int64)
    cc = np.array([kv[1][1] for kv in ordered], dtype=np.int64)
    return k, rc, cc


def _cumulative(sk: NumericSketch) -> Tuple[np.ndarray, np.ndarray]:
    """(values < edge[i], values <= edge[i]) for every edge."""
    below = np.cumsum(sk.between[:-1]) + np.concatenate(([0], np.cumsum(sk.at)[:-1]))
    return below, below + sk.at


def _ks_from_sketches(ref: NumericSketch, cur: NumericSketch) -> Tuple[float, float]:
    """(statistic, p-value) of scipy's two-sided ks_2samp; the statistic is exact when ``ref.exact``."""
    n1, n2 = ref.n, cur.n
    r_lt, r_le = _cumulative(ref)
    c_lt, c_le = _cumulative(cur)
    # the reference CDF at its own values and just below them, the current's likewise (right-continuous)
    f1 = np.concatenate((r_le / n1, r_lt / n1, [0.0, 1.0]))
    f2 = np.concatenate((c_le / n2, c_lt / n2, [c_lt[0] / n2 if len(c_lt) else 0.0, 1.0]))
    diffs = f1 - f2
    d = float(max(np.clip(-diffs.min(), 0, 1), diffs.max()))
    return d, _ks_pvalue(d, n1, n2)


def _ks_pvalue(d: float, n1: int, n2: int) -> float:
    """scipy.stats.ks_2samp's two-sided p-value (method "auto") for statistic ``d``."""
    from scipy.stats import distributions

    prob = None
    if max(n1, n2) <= 10000:
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            g = math.gcd(n1, n2)
            success, d, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
            if not success:
                prob = None
        except Exception:  # noqa: BLE001 - scipy moved its private helper: fall back to the asymptotic formula
            prob = None
    if prob is None:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = distributions.kstwo.sf(d, np.round(en))
    return float(np.clip(prob, 0, 1))


def _wasserstein_from_sketches(ref: NumericSketch, cur: NumericSketch) -> float:
    """The area between the two CDFs (scipy.stats.wasserstein_distance), from the binned counts and sums."""
    n1, n2 = ref.n, cur.n
    edges = ref.edges
    lo = min(ref.vmin, cur.vmin)
    hi = max(ref.vmax, cur.vmax)
    # interval j spans (left[j], right[j]): below the first edge, between edges, above the last
    left = np.concatenate(([lo], edges))
    right = np.concatenate((edges, [hi]))
    width = np.maximum(right - left, 0.0)
    r_lt, r_le = _cumulative(ref)
    c_lt, c_le = _cumulative(cur)
    r_start = np.concatenate(([0], r_le))  # values <= left[j]
    c_start = np.concatenate(([0], c_le))
    # integral of F over the interval: (start * width + m * right - sum) / n
    int_r = (r_start * width + ref.between * right - ref.between_sum) / n1
    int_c = (c_start * width + cur.between * right - cur.between_sum) / n2
    a0, b0 = r_start / n1, c_start / n2  # each CDF just inside the interval's left end
    a1, b1 = (r_start + ref.between) / n1, (c_start + cur.between) / n2  # and just before its right end
    no_cross = ((a0 >= b0) & (a1 >= b1)) | ((a0 <= b0) & (a1 <= b1))
    exact_part = np.abs(int_r - int_c)
    # Where the CDFs cross inside an interval: each side's mass put at its mean there (which keeps both
    # integrals exact), so each CDF is one step and the area is three rectangles.
    with np.errstate(divide="ignore", invalid="ignore"):
        mu_r = np.where(ref.between > 0, ref.between_sum / ref.between, right)
        mu_c = np.where(cur.between > 0, cur.between_sum / cur.between, right)
    mu_r = np.clip(mu_r, left, right)
    mu_c = np.clip(mu_c, left, right)
    p1, p2 = np.minimum(mu_r, mu_c), np.maximum(mu_r, mu_c)
    middle = np.where(mu_r <= mu_c, a1 - b0, a0 - b1)
    stepped = np.abs(a0 - b0) * (p1 - left) + np.abs(middle) * (p2 - p1) + np.abs(a1 - b1) * (right - p2)
    area = np.where(no_cross, exact_part, stepped)
    return float(area[width > 0].sum())


def _numeric_js_from_sketches(ref: NumericSketch, cur: NumericSketch, ref_unique: Optional[int]) -> float:
    if ref_unique is not None and ref_unique <= 20:
        _, rc, cc = _discrete_numeric(ref, cur)
        return _drift._jensenshannon_from_counts(rc, cc)
    # Sturges bins over both samples, as evidently's get_binned_data; fine counts spread by width
    n = ref.n + cur.n
    lo, hi = min(ref.vmin, cur.vmin), max(ref.vmax, cur.vmax)
    n_bins = int(np.ceil(np.log2(n) + 1)) if hi > lo else 1
    coarse = np.linspace(lo, hi, n_bins + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
    out = []
    for sk in (ref, cur):
        counts = np.zeros(len(coarse) - 1)
        at_bin = np.clip(np.searchsorted(coarse, sk.edges, "right") - 1, 0, len(counts) - 1)
        np.add.at(counts, at_bin, sk.at)
        left = np.concatenate(([lo], sk.edges))
        right = np.concatenate((sk.edges, [hi]))
        for j in np.flatnonzero(sk.between):
            a, b = left[j], right[j]
            if b <= a:
                counts[int(np.clip(np.searchsorted(coarse, a, "right") - 1, 0, len(counts) - 1))] += sk.between[j]
                continue
            overlap = np.clip(np.minimum(coarse[1:], b) - np.maximum(coarse[:-1], a), 0, None)
            counts += sk.between[j] * overlap / (b - a)
        out.append(counts / sk.n)
    from scipy.spatial import distance

    return float(distance.jensenshannon(out[0], out[1]))


def _numeric_effect(ref: NumericSketch, cur: NumericSketch) -> Dict[str, Any]:
    return _drift.effect_from_moments(ref.mean, ref.std, cur.mean)


def _check_numeric(ref: NumericSketch, cur: NumericSketch, method, threshold) -> ColumnDrift:
    if ref.n == 0:
        raise _Skip("no non-null values in the reference data")
    if cur.n == 0:
        raise _Skip("no non-null values in the current data")
    ref_unique = ref.distinct() if ref.exact else None
    cur_unique = cur.distinct()
    big = 6
    if (ref_unique is None or ref_unique > 5) or (cur_unique is None or cur_unique > 5):
        n_values = big
    else:
        n_values = len(_discrete_numeric(ref, cur)[0])
    if ref.n <= SMALL_REFERENCE_MAX_ROWS:
        default = "ks" if n_values > 5 else ("chisquare" if n_values > 2 else "z")
    else:
        default = "wasserstein" if n_values > 5 else "jensenshannon"
    method, threshold = _drift._resolve(method, threshold, default)
    statistic = None
    if method == "ks":
        statistic, score = _ks_from_sketches(ref, cur)
    elif method == "wasserstein":
        score = _wasserstein_from_sketches(ref, cur) / max(ref.std, 0.001)
    elif method == "jensenshannon":
        score = _numeric_js_from_sketches(ref, cur, ref_unique)
    else:
        keys, rc, cc = _discrete_numeric(ref, cur)
        if method == "chisquare":
            statistic, score = _drift._chisquare_test(rc, cc)
        else:
            statistic, score = _drift._z_test(keys, rc, cc)
    return ColumnDrift(
        method,
        score,
        threshold,
        _drift._decide(method, score, threshold),
        NUM,
        statistic,
        _numeric_effect(ref, cur),
    )


_OTHER = "(other values)"


def _categorical_counts(ref: Sketch, cur: Sketch, dtype: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(ref, NumericSketch):  # an int column judged categorical
        keys, rc, cc = _discrete_numeric(ref, cur)
        as_keys = np.array([_OTHER if math.isnan(k) else int(k) for k in keys.tolist()], dtype=object)
        return as_keys, rc, cc
    keys = list(ref.keys)
    rc = [int(c) for c in ref.counts]
    cc = [int(c) for c in cur.counts]
    for sk, side in ((ref, 0), (cur, 1)):
        if sk.others is None:
            keys.append(_OTHER)
            rc.append(sk.other_total if side == 0 else 0)
            cc.append(sk.other_total if side == 1 else 0)
            continue
        for k, c in sk.others.items():
            if k in keys:
                i = keys.index(k)
            else:
                keys.append(k)
                rc.append(0)
                cc.append(0)
                i = len(keys) - 1
            (rc if side == 0 else cc)[i] += c
    rc_a, cc_a = np.array(rc, dtype=np.int64), np.array(cc, dtype=np.int64)
    keep = (rc_a + cc_a) > 0
    keys_a = np.empty(len(keys), dtype=object)
    keys_a[:] = keys
    return keys_a[keep], rc_a[keep], cc_a[keep]


def _check_categorical(ref: Sketch, cur: Sketch, dtype: str, method, threshold) -> ColumnDrift:
    keys, rc, cc = _categorical_counts(ref, cur, dtype)
    n_ref = int(rc.sum())
    if n_ref == 0:
        raise _Skip("no non-null values in the reference data")
    if int(cc.sum()) == 0:
        raise _Skip("no non-null values in the current data")
    if n_ref <= SMALL_REFERENCE_MAX_ROWS:
        default = "chisquare" if len(keys) > 2 else "z"
    else:
        default = "jensenshannon"
    method, threshold = _drift._resolve(method, threshold, default)
    statistic = None
    if method == "chisquare":
        statistic, score = _drift._chisquare_test(rc, cc)
    elif method == "z":
        statistic, score = _drift._z_test(keys, rc, cc)
    else:
        score = _drift._jensenshannon_from_counts(rc, cc)
    return ColumnDrift(
        method,
        score,
        threshold,
        _drift._decide(method, score, threshold),
        CAT,
        statistic,
        categorical_effect(keys, rc, cc),
    )


def detect_drift_from_sketches(
    reference: FrameSketch,
    current: FrameSketch,
    columns: Optional[Sequence[str]] = None,
    *,
    stattest_overrides: Optional[Mapping[str, str]] = None,
    threshold_overrides: Optional[Mapping[str, float]] = None,
    drift_share: float = 0.5,
) -> DriftResult:
    """:func:`drift.detect_drift` on sketches: ``reference`` from the reference frame, ``current`` merged
    from the window's batches on the same edges (the batches aligned with ``windows.align``).

    ``columns`` given: a column of unsupported type raises ValueError, as detect_drift does; None: every
    column, unsupported ones skipped. Text columns are skipped (not summarised)."""
    if current.n_rows == 0:
        raise ValueError("The current data is empty (0 rows); drift needs at least one row in the current window.")
    if reference.n_rows == 0:
        raise ValueError("The reference data is empty (0 rows); pick a reference window that holds data.")
    explicit = columns is not None
    selected = list(dict.fromkeys(columns)) if columns is not None else list(reference.columns)
    missing = [c for c in selected if c not in reference.columns]
    if missing:
        raise ValueError(f"Unknown columns requested for drift (not in the reference data: {', '.join(missing)}).")
    if not selected:
        raise ValueError("There are no columns to check for drift.")
    methods = dict(stattest_overrides or {})
    thresholds = dict(threshold_overrides or {})
    for col, method in methods.items():
        if method not in SUPPORTED_METHODS:
            raise ValueError(f"stattest_overrides['{col}'] = {method!r} is not supported.")
    results: Dict[str, ColumnDrift] = {}
    skipped: Dict[str, str] = {}
    unsupported: List[str] = []
    for col in selected:
        ref, cur, dtype = reference.columns[col], current.columns[col], reference.dtypes[col]
        try:
            if ref is None:
                raise _Unsupported(dtype)
            kind = _current_type(dtype, cur)
            method = methods.get(col)
            if method is not None and kind not in SUPPORTED_METHODS[method][1]:
                raise ValueError(
                    f"Method {method!r} cannot be applied to column '{col}' of type {kind!r}; "
                    f"it accepts {', '.join(SUPPORTED_METHODS[method][1])} columns."
                )
            if kind == TEXT:
                raise _Skip("text column: text drift is not computed from sketches (needs the texts)")
            if kind == NUM:
                results[col] = _check_numeric(ref, cur, method, thresholds.get(col))
            else:
                results[col] = _check_categorical(ref, cur, dtype, method, thresholds.get(col))
        except _Skip as exc:
            skipped[col] = str(exc)
        except _Unsupported as exc:
            if explicit:
                unsupported.append(f"{col} ({exc})")
            else:
                skipped[col] = f"dtype {exc} is not checked by default; pass column_types to include it"
    return _drift.assemble_result(results, skipped, unsupported, drift_share)


# --------------------------------------------------------------------------------------------
# Arrow batches (the fast path of a monitor reading its window: JSON parsed by pyarrow, no Python rows)
# --------------------------------------------------------------------------------------------


def arrow_schema(sketch: FrameSketch):
    """The pyarrow schema a window's JSON inputs are parsed with: each summarised column typed as the
    reference's dtype. A value of another JSON type makes the parse fail, and the caller falls back to
    decoding those rows one by one (with ``windows.align``'s coercions)."""
    import pyarrow as pa

    fields = []
    for c, sk in sketch.columns.items():
        if sk is None:
            continue
        dt = sketch.dtypes[c]
        if dt.startswith("float"):
            fields.append((c, pa.float64()))
        elif dt.startswith(("int", "uint")):
            fields.append((c, pa.int64()))
        elif dt == "bool":
            fields.append((c, pa.bool_()))
        else:
            fields.append((c, pa.string()))
    return pa.schema(fields)


def _categorical_from_arrow(arr, keys: Sequence[Any], index: Dict[Any, int]) -> CategoricalSketch:
    import pyarrow.compute as pc

    out = CategoricalSketch.empty(keys)
    out._index = index
    out.nulls = int(arr.null_count)
    if len(arr) == out.nulls:
        return out
    present = arr.drop_null()
    out.first = present[0].as_py()
    out.last = present[len(present) - 1].as_py()
    counted = pc.value_counts(present)
    others: Dict[Any, int] = {}
    for key, c in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
        i = index.get(key)
        if i is None:
            others[key] = others.get(key, 0) + int(c)
            out.other_total += int(c)
        else:
            out.counts[i] += int(c)
    out.others = others if len(others) <= MAX_OTHERS else None
    return out


def frame_sketch_from_arrow(reference: FrameSketch, table) -> FrameSketch:
    """The sketch of one batch parsed by pyarrow with :func:`arrow_schema` (same result as
    ``reference.from_batch(align(frame))`` on the same rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols: Dict[str, Sketch] = {}
    for c, sk in reference.columns.items():
        if sk is None:
            cols[c] = None
            continue
        arr = table.column(c).combine_chunks()
        if isinstance(sk, NumericSketch):
            values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
            cols[c] = NumericSketch.from_batch(values, sk.edges, exact=sk.exact)
        else:
            cols[c] = _categorical_from_arrow(arr, sk.keys, sk.index())
    return FrameSketch(dtypes=dict(reference.dtypes), columns=cols, n_rows=table.num_rows)
