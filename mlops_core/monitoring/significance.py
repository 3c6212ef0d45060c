"""Is the challenger different from the champion? Pure statistics for the canary comparison (issue 15).

No database and no service here: the service (services/canary.py) reads the two arms' rows and hands
over counts and arrays. Each function answers with a `Comparison`: both values, the difference
(challenger minus champion), the p-value, whether it is significant at `alpha`, and a sentence. Below
`min_n` observations in either arm it says plainly that there is not enough to tell yet.

- rates and accuracy-like metrics (error rate, accuracy, precision, recall): the two-proportion z-test
  (pooled standard error for the test, unpooled for the 95% interval of the difference);
- latency and scores: the Mann-Whitney U test (two-sided, no normality assumed) for the shift of the
  distribution, shown with a bootstrap 95% interval of the difference of medians (or means);
- a tail quantile (latency p95), where a rank test says nothing: the bootstrap alone, significant when
  its 95% interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..ml.scoring import label_key, positive_label

ALPHA = 0.05
MIN_N = 30  # per arm, below which no verdict is given
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger on one figure."""

    metric: str
    method: str  # "two-proportion z-test" | "Mann-Whitney U" | "bootstrap" | "" (not tested)
    champion: float | None
    challenger: float | None
    n_champion: int
    n_challenger: int
    difference: float | None = None  # challenger - champion
    ci_low: float | None = None  # 95% interval of the difference
    ci_high: float | None = None
    p_value: float | None = None
    significant: bool | None = None  # None: not enough data to tell (or not tested)
    enough: bool = False
    verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _not_enough(metric: str, method: str, a, b, n1: int, n2: int, min_n: int, unit: str) -> Comparison:
    return Comparison(
        metric=metric,
        method=method,
        champion=a,
        challenger=b,
        n_champion=n1,
        n_challenger=n2,
        difference=(b - a) if a is not None and b is not None else None,
        enough=False,
        verdict=f"not enough {unit} yet to tell (n={n1:,} champion, {n2:,} challenger; {min_n:,} each needed)",
    )


def _verdict(p: float, alpha: float, diff: float, higher: str = "higher", lower: str = "lower") -> str:
    if p < alpha:
        return f"challenger {higher if diff > 0 else lower}, significant (p={p:.3g})"
    return f"no significant difference (p={p:.3g})"


def two_proportions(
    x1: int,
    n1: int,
    x2: int,
    n2: int,
    *,
    metric: str = "rate",
    alpha: float = ALPHA,
    min_n: int = MIN_N,
    unit: str = "requests",
) -> Comparison:
    """Two-proportion z-test of x1/n1 (champion) against x2/n2 (challenger), two-sided.
    z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2)) with the pooled p = (x1 + x2) / (n1 + n2)."""
    for x, n in ((x1, n1), (x2, n2)):
        if n < 0 or x < 0 or x > n:
            raise ValueError(f"a proportion needs 0 <= successes <= trials (got {x} of {n})")
    p1 = x1 / n1 if n1 else None
    p2 = x2 / n2 if n2 else None
    method = "two-proportion z-test"
    if n1 < min_n or n2 < min_n:
        return _not_enough(metric, method, p1, p2, n1, n2, min_n, unit)
    diff = p2 - p1
    se_ci = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # both arms all 0 or all 1: identical, nothing to test
        p = 1.0
    else:
        z = diff / se
        p = math.erfc(abs(z) / math.sqrt(2))  # = 2 * (1 - Phi(|z|))
    return Comparison(
        metric=metric,
        method=method,
        champion=p1,
        challenger=p2,
        n_champion=n1,
        n_challenger=n2,
        difference=diff,
        ci_low=diff - Z_95 * se_ci,
        ci_high=diff + Z_95 * se_ci,
        p_value=p,
        significant=p < alpha,
        enough=True,
        verdict=_verdict(p, alpha, diff),
    )


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def mann_whitney(
    champion: Sequence[float] | np.ndarray,
    challenger: Sequence[float] | np.ndarray,
    *,
    metric: str = "latency",
    summary: Callable[[np.ndarray], float] = np.median,
    alpha: float = ALPHA,
    min_n: int = MIN_N,
    unit: str = "requests",
    seed: int = 0,
    n_boot: int = 1000,
) -> Comparison:
    """Mann-Whitney U (two-sided) on two samples; the values shown are `summary` of each (the median by
    default) and the interval is a bootstrap 95% interval of the difference of that summary."""
    from scipy import stats

    a, b = _clean(champion), _clean(challenger)
    va = float(summary(a)) if a.size else None
    vb = float(summary(b)) if b.size else None
    method = "Mann-Whitney U"
    if a.size < min_n or b.size < min_n:
        return _not_enough(metric, method, va, vb, int(a.size), int(b.size), min_n, unit)
    if np.ptp(np.concatenate([a, b])) == 0:
        p = 1.0  # every value the same: no shift
    else:
        p = float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    lo, hi = bootstrap_difference(a, b, summary=summary, seed=seed, n_boot=n_boot)
    diff = vb - va
    return Comparison(
        metric=metric,
        method=method,
        champion=va,
        challenger=vb,
        n_champion=int(a.size),
        n_challenger=int(b.size),
        difference=diff,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        significant=p < alpha,
        enough=True,
        verdict=_verdict(p, alpha, diff),
    )


def _boot_diffs(a: np.ndarray, b: np.ndarray, summary, n_boot: int, seed: int) -> np.ndarray:
    """n_boot resampled values of summary(challenger) - summary(champion), each arm resampled on its own."""
    rng = np.random.default_rng(seed)
    # resample in chunks so a large arm does not allocate n_boot x n at once
    diffs = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // max(a.size, b.size)))
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        ra = a[rng.integers(0, a.size, size=(k, a.size))]
        rb = b[rng.integers(0, b.size, size=(k, b.size))]
        diffs[start : start + k] = _rowwise(summary, rb) - _rowwise(summary, ra)
    return diffs


def bootstrap_difference(
    champion: Sequence[float] | np.ndarray,
    challenger: Sequence[float] | np.ndarray,
    *,
    summary: Callable[[np.ndarray], float] = np.median,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of summary(challenger) - summary(champion), resampling each arm."""
    a, b = _clean(champion), _clean(challenger)
    if not a.size or not b.size:
        raise ValueError("a bootstrap needs values in both arms")
    diffs = _boot_diffs(a, b, summary, n_boot, seed)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap(
    champion: Sequence[float] | np.ndarray,
    challenger: Sequence[float] | np.ndarray,
    *,
    metric: str = "latency p95",
    summary: Callable[[np.ndarray], float] = np.median,
    alpha: float = ALPHA,
    min_n: int = MIN_N,
    unit: str = "requests",
    seed: int = 0,
    n_boot: int = 2000,
) -> Comparison:
    """The difference of a summary (a tail quantile, where a rank test says nothing) with its percentile
    bootstrap interval; significant when the (1 - alpha) interval excludes 0. The p-value is the bootstrap's
    two-sided share: 2 x min(share of resampled differences <= 0, share >= 0)."""
    a, b = _clean(champion), _clean(challenger)
    va = float(summary(a)) if a.size else None
    vb = float(summary(b)) if b.size else None
    method = "bootstrap"
    if a.size < min_n or b.size < min_n:
        return _not_enough(metric, method, va, vb, int(a.size), int(b.size), min_n, unit)
    diffs = _boot_diffs(a, b, summary, n_boot, seed)
    tail = alpha / 2 * 100
    lo, hi = (float(x) for x in np.percentile(diffs, [tail, 100 - tail]))
    p = float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
    diff = vb - va
    significant = lo > 0 or hi < 0
    return Comparison(
        metric=metric,
        method=method,
        champion=va,
        challenger=vb,
        n_champion=int(a.size),
        n_challenger=int(b.size),
        difference=diff,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        significant=significant,
        enough=True,
        verdict=(
            f"challenger {'higher' if diff > 0 else 'lower'}, significant (95% interval excludes 0)"
            if significant
            else "no significant difference (95% interval includes 0)"
        ),
    )


def _rowwise(summary: Callable[[np.ndarray], float], m: np.ndarray) -> np.ndarray:
    try:
        out = summary(m, axis=1)  # numpy reductions (median, mean, percentile partials) take axis
        return np.asarray(out, dtype=float)
    except TypeError:
        return np.array([summary(row) for row in m], dtype=float)


def p95(values, axis=None):
    """The 95th percentile (interpolated like percentile_cont), usable as a `summary`."""
    return np.percentile(values, 95, axis=axis)


def classification_counts(
    predictions: Sequence[Any], labels: Sequence[Any], positive: str | None = None
) -> dict[str, tuple[int, int]]:
    """(successes, trials) of the accuracy-like metrics on labelled predictions: accuracy (correct of all),
    and for a binary task precision (true positives of predicted positives) and recall (true positives of
    actual positives). Labels compare as text (1 / "1" / True alike); `positive` as in monitoring figures."""
    pairs = [(label_key(p), label_key(y)) for p, y in zip(predictions, labels) if p is not None and y is not None]
    out: dict[str, tuple[int, int]] = {"accuracy": (sum(p == y for p, y in pairs), len(pairs))}
    classes = {c for pair in pairs for c in pair}
    if pairs and len(classes) <= 2:
        pos = positive_label(classes, positive)
        tp = sum(p == pos and y == pos for p, y in pairs)
        out["precision"] = (tp, sum(p == pos for p, _ in pairs))
        out["recall"] = (tp, sum(y == pos for _, y in pairs))
    return out


def histogram(
    champion: Sequence[float] | np.ndarray, challenger: Sequence[float] | np.ndarray, bins: int = 20
) -> dict[str, list[float]]:
    """Shared bin edges and each arm's share of values per bin (for an overlaid score chart)."""
    a, b = _clean(champion), _clean(challenger)
    both = np.concatenate([a, b])
    if not both.size:
        return {"edges": [], "champion": [], "challenger": []}
    lo, hi = float(both.min()), float(both.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    ha = np.histogram(a, edges)[0] / max(1, a.size)
    hb = np.histogram(b, edges)[0] / max(1, b.size)
    return {"edges": edges.tolist(), "champion": ha.tolist(), "challenger": hb.tolist()}
