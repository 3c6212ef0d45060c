"""What a model is worth: value arithmetic from a value model and a confusion matrix (or errors).

Pure code (no database, no service). A *value model* says, for a classification use case, the gain
(positive number) or cost (negative number) of each outcome — TP, FP, FN, TN — in one currency, plus how
many records are scored per period; for a regression use case, the cost of one unit of absolute error.
From it:

- `expected_value(model, confusion)`: value per record and per period on a confusion matrix;
  "incomplete" (no number) while any outcome's value is missing, naming the missing cells;
- `regression_value(model, mae)`: minus cost per unit x mean absolute error x volume;
- `choose_threshold(model, histogram)`: the decision threshold that maximises value on validation
  scores, refusing a threshold that leaves no positive prediction (with the reason);
- `expected_confusion(scores, threshold)`: the confusion matrix a calibrated model expects on
  unlabelled scores (sums of scores), and `estimated_value` with a band from its variance;
- `suggest_kpis(model)`: model KPIs that fit the stated costs (FN cost 10x FP -> a recall KPI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ValidationError

OUTCOMES = ("tp", "fp", "fn", "tn")
OUTCOME_LABELS = {
    "tp": "true positive (predicted yes, was yes)",
    "fp": "false positive (predicted yes, was no)",
    "fn": "false negative (predicted no, was yes)",
    "tn": "true negative (predicted no, was no)",
}
PERIODS = ("day", "week", "month", "quarter", "year")
PROBLEM_TYPES = ("binary", "multiclass", "regression")
BINS = 100  # score histogram resolution: thresholds are chosen on a 0.01 grid


@dataclass(frozen=True)
class ValueModel:
    """Gain (+) or cost (-) per outcome and volume per period; or a cost per unit of error (regression)."""

    problem_type: str = "binary"
    currency: str = "EUR"
    period: str = "month"
    volume_per_period: float | None = None
    outcome_values: Mapping[str, float | None] = field(default_factory=dict)
    cost_per_unit_error: float | None = None

    def missing(self) -> list[str]:
        """What must still be stated before a value can be computed (cells, volume or unit cost)."""
        out: list[str] = []
        if self.problem_type == "regression":
            if self.cost_per_unit_error is None:
                out.append("cost per unit of error")
        else:
            out += [o.upper() for o in OUTCOMES if self.outcome_values.get(o) is None]
        if self.volume_per_period is None:
            out.append(f"volume per {self.period}")
        return out


@dataclass(frozen=True)
class Confusion:
    tp: float
    fp: float
    fn: float
    tn: float

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def predicted_positive(self) -> float:
        return self.tp + self.fp

    def as_dict(self) -> dict[str, float]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


@dataclass(frozen=True)
class ValueResult:
    """`value_per_period` is None when incomplete (see `missing`) or not applicable (see `reason`)."""

    value_per_period: float | None
    value_per_record: float | None
    currency: str
    period: str
    missing: tuple[str, ...] = ()
    reason: str = ""
    low: float | None = None  # band (estimates only)
    high: float | None = None

    @property
    def status(self) -> str:
        if self.value_per_period is not None:
            return "complete"
        return "incomplete" if self.missing else "unavailable"

    def describe(self) -> str:
        if self.value_per_period is not None:
            band = ""
            if self.low is not None and self.high is not None:
                band = f" (band {format_money(self.low, self.currency)} to {format_money(self.high, self.currency)})"
            return f"{format_money(self.value_per_period, self.currency)} per {self.period}{band}"
        if self.missing:
            return "incomplete: missing " + ", ".join(self.missing)
        return self.reason or "no value"


def format_money(x: float, currency: str) -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}{abs(x):,.0f} {currency}"


def check_value_model(
    *,
    problem_type: str,
    currency: str,
    period: str,
    volume_per_period: Any = None,
    outcome_values: Mapping[str, Any] | None = None,
    cost_per_unit_error: Any = None,
) -> ValueModel:
    """A ValueModel from user input, or a ValidationError that says what to fix. Missing numbers stay None."""
    pt = (problem_type or "").strip().lower()
    if pt not in PROBLEM_TYPES:
        raise ValidationError(f"unknown problem type {problem_type!r}; use one of: {', '.join(PROBLEM_TYPES)}")
    cur = (currency or "").strip().upper()
    if not (3 <= len(cur) <= 8) or not cur.isalpha():
        raise ValidationError(f"currency {currency!r} must be a code of 3 letters such as EUR or USD")
    per = (period or "").strip().lower()
    if per not in PERIODS:
        raise ValidationError(f"unknown period {period!r}; use one of: {', '.join(PERIODS)}")
    vol = _number(volume_per_period, f"volume per {per}")
    if vol is not None and vol < 0:
        raise ValidationError(f"volume per {per} must be zero or more, got {vol:g}")
    cells: dict[str, float | None] = {}
    if pt == "regression":
        if outcome_values and any(v not in (None, "") for v in outcome_values.values()):
            raise ValidationError(
                "a regression use case has no TP/FP/FN/TN outcomes; give a cost per unit of error instead"
            )
        unit = _number(cost_per_unit_error, "cost per unit of error")
        if unit is not None and unit < 0:
            raise ValidationError("cost per unit of error is a cost: enter it as a positive number")
    else:
        unknown = set(outcome_values or {}) - set(OUTCOMES)
        if unknown:
            raise ValidationError(f"unknown outcome(s) {', '.join(sorted(unknown))}; use TP, FP, FN, TN")
        cells = {o: _number((outcome_values or {}).get(o), f"value of a {o.upper()}") for o in OUTCOMES}
        if cost_per_unit_error not in (None, ""):
            raise ValidationError("a cost per unit of error is for regression; a classifier has a value per outcome")
        unit = None
    return ValueModel(
        problem_type=pt,
        currency=cur,
        period=per,
        volume_per_period=vol,
        outcome_values=cells,
        cost_per_unit_error=unit,
    )


def _number(v: Any, what: str) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        raise ValidationError(f"{what} must be a number, not {v!r}")
    try:
        x = float(v.strip().replace(",", "") if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise ValidationError(f"{what} must be a finite number, got {v!r}")
    return x


# --- classification ---------------------------------------------------------------------------------------


def expected_value(model: ValueModel, confusion: Confusion) -> ValueResult:
    """Value per record = sum(count x value) / n; per period = per record x volume."""
    if model.problem_type == "regression":
        return ValueResult(None, None, model.currency, model.period, reason="a regression value needs the errors")
    missing = tuple(model.missing())
    if missing:
        return ValueResult(None, None, model.currency, model.period, missing=missing)
    if confusion.n <= 0:
        return ValueResult(None, None, model.currency, model.period, reason="no records to value")
    total = sum(getattr(confusion, o) * float(model.outcome_values[o]) for o in OUTCOMES)
    per_record = total / confusion.n
    return ValueResult(per_record * float(model.volume_per_period), per_record, model.currency, model.period)


def confusion_from_matrix(labels: Sequence[Any], matrix: Sequence[Sequence[float]], positive: Any) -> Confusion:
    """TP/FP/FN/TN of a 2x2 matrix (rows = truth, columns = prediction, as scikit-learn) for `positive`."""
    keys = [str(x) for x in labels]
    if len(keys) != 2 or len(matrix) != 2:
        raise ValueError("a value per outcome needs a binary confusion matrix (two classes)")
    p = keys.index(str(positive))
    q = 1 - p
    return Confusion(tp=matrix[p][p], fp=matrix[q][p], fn=matrix[p][q], tn=matrix[q][q])


def confusion_at(truth: Iterable[bool], scores: Iterable[float], threshold: float) -> Confusion:
    tp = fp = fn = tn = 0
    for t, s in zip(truth, scores):
        yes = s >= threshold
        if yes and t:
            tp += 1
        elif yes:
            fp += 1
        elif t:
            fn += 1
        else:
            tn += 1
    return Confusion(tp, fp, fn, tn)


def score_histogram(truth: Iterable[bool], scores: Iterable[float], bins: int = BINS) -> dict[str, list[int]]:
    """Counts of positives and negatives per score bin [k/bins, (k+1)/bins) (the last bin includes 1.0):
    enough to rebuild the confusion matrix at any threshold on the k/bins grid."""
    pos, neg = [0] * bins, [0] * bins
    for t, s in zip(truth, scores):
        s = float(s)
        if not math.isfinite(s):
            continue
        k = min(bins - 1, max(0, int(math.floor(s * bins + 1e-9))))
        (pos if t else neg)[k] += 1
    return {"pos": pos, "neg": neg}


def confusion_from_histogram(hist: Mapping[str, Sequence[int]], k: int) -> Confusion:
    """Confusion matrix predicting positive when score >= k / bins."""
    pos, neg = list(hist["pos"]), list(hist["neg"])
    return Confusion(tp=sum(pos[k:]), fp=sum(neg[k:]), fn=sum(pos[:k]), tn=sum(neg[:k]))


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    value: ValueResult
    confusion: Confusion
    default_value: ValueResult  # at 0.5, for comparison


def check_threshold(hist: Mapping[str, Sequence[int]], threshold: float) -> Confusion:
    """The confusion at `threshold`; a ValidationError when it would leave no positive prediction."""
    if not (0.0 < threshold <= 1.0):
        raise ValidationError(f"threshold {threshold:g} must be above 0 and at most 1")
    bins = len(hist["pos"])
    k = int(math.ceil(threshold * bins - 1e-9))
    conf = confusion_from_histogram(hist, k)
    if conf.predicted_positive <= 0:
        raise ValidationError(
            f"threshold {threshold:g} is refused: no validation record scores that high, so the model would "
            "never predict the positive class (every case would be missed); choose a lower threshold"
        )
    return conf


def choose_threshold(model: ValueModel, hist: Mapping[str, Sequence[int]]) -> ThresholdChoice:
    """The threshold on the histogram's grid that maximises expected value, among those that leave at least
    one positive prediction (ties: the threshold nearest 0.5). ValidationError when the value model is
    incomplete or no threshold leaves a positive."""
    missing = model.missing()
    if missing:
        raise ValidationError("cannot choose a threshold: the value model is incomplete, missing " + ", ".join(missing))
    if model.problem_type != "binary":
        raise ValidationError("a decision threshold is chosen for a binary classifier only")
    bins = len(hist["pos"])
    best: tuple[float, float, int] | None = None  # (value, -distance to 0.5, k)
    for k in range(1, bins + 1):
        conf = confusion_from_histogram(hist, k)
        if conf.predicted_positive <= 0:
            continue
        v = expected_value(model, conf).value_per_period
        if v is None:
            continue
        key = (round(v, 9), -abs(k / bins - 0.5), k)
        if best is None or key > best:
            best = key
    if best is None:
        raise ValidationError(
            "no threshold is possible: no validation record has a score above 0, so every threshold "
            "leaves no positive prediction"
        )
    k = best[2]
    conf = confusion_from_histogram(hist, k)
    half = confusion_from_histogram(hist, bins // 2)
    return ThresholdChoice(k / bins, expected_value(model, conf), conf, expected_value(model, half))


# --- regression -------------------------------------------------------------------------------------------


def regression_value(model: ValueModel, mae: float | None) -> ValueResult:
    """Cost of errors per period: - cost per unit x mean absolute error x volume."""
    if model.problem_type != "regression":
        return ValueResult(None, None, model.currency, model.period, reason="a classifier is valued per outcome")
    missing = tuple(model.missing())
    if missing:
        return ValueResult(None, None, model.currency, model.period, missing=missing)
    if mae is None or not math.isfinite(mae):
        return ValueResult(None, None, model.currency, model.period, reason="no mean absolute error to value")
    per_record = -float(model.cost_per_unit_error) * float(mae)
    return ValueResult(per_record * float(model.volume_per_period), per_record, model.currency, model.period)


# --- estimates without labels -----------------------------------------------------------------------------


def expected_confusion(scores: Iterable[float], threshold: float = 0.5) -> tuple[Confusion, list[tuple[bool, float]]]:
    """Expected confusion of a calibrated model: a record scored s and predicted positive is a TP with
    probability s and an FP with 1 - s (predicted negative: FN with s, TN with 1 - s). Also returns
    (predicted positive, s) per record, for the variance."""
    tp = fp = fn = tn = 0.0
    rows: list[tuple[bool, float]] = []
    for s in scores:
        s = float(s)
        if not math.isfinite(s):
            continue
        s = min(1.0, max(0.0, s))
        yes = s >= threshold
        if yes:
            tp, fp = tp + s, fp + 1 - s
        else:
            fn, tn = fn + s, tn + 1 - s
        rows.append((yes, s))
    return Confusion(tp, fp, fn, tn), rows


def estimated_value(model: ValueModel, scores: Iterable[float], threshold: float = 0.5, z: float = 1.96) -> ValueResult:
    """Expected value per period from unlabelled calibrated scores, with a band of +/- z standard deviations
    (each record's outcome is a Bernoulli draw between its two cells)."""
    conf, rows = expected_confusion(scores, threshold)
    res = expected_value(model, conf)
    if res.value_per_period is None or not rows:
        return res
    v = {o: float(model.outcome_values[o]) for o in OUTCOMES}
    var = 0.0
    for yes, s in rows:
        spread = (v["tp"] - v["fp"]) if yes else (v["fn"] - v["tn"])
        var += s * (1 - s) * spread * spread
    scale = float(model.volume_per_period) / len(rows)
    half = z * math.sqrt(var) * scale
    return ValueResult(
        res.value_per_period,
        res.value_per_record,
        res.currency,
        res.period,
        low=res.value_per_period - half,
        high=res.value_per_period + half,
    )


def band_from_confusions(model: ValueModel, low: Confusion, high: Confusion) -> tuple[float | None, float | None]:
    """Value band from two confusion matrices (e.g. the bounds of a performance estimate)."""
    a = expected_value(model, low).value_per_period
    b = expected_value(model, high).value_per_period
    if a is None or b is None:
        return None, None
    return min(a, b), max(a, b)


# --- KPI suggestions --------------------------------------------------------------------------------------


def suggest_kpis(model: ValueModel, ratio: float = 3.0) -> list[dict[str, Any]]:
    """Model KPIs that fit the stated costs: a false negative much dearer than a false positive -> recall,
    the other way round -> precision, comparable -> f1; regression -> mae. Each: metric, direction, target, why."""
    if model.problem_type == "regression":
        why = "errors are costed per unit, so the mean absolute error is what the value depends on"
        return [{"metric": "mae", "direction": "<=", "target": None, "why": why}]
    fp = model.outcome_values.get("fp")
    fn = model.outcome_values.get("fn")
    tn = model.outcome_values.get("tn") or 0.0
    tp = model.outcome_values.get("tp") or 0.0
    if fp is None or fn is None:
        return []
    # The cost of a mistake is what it loses against getting that record right.
    miss = max(0.0, tp - fn)  # a positive missed instead of found
    alarm = max(0.0, tn - fp)  # a negative flagged instead of left alone
    out: list[dict[str, Any]] = []
    if alarm == 0 and miss == 0:
        return out
    if miss >= ratio * alarm:
        times = "far more" if alarm == 0 else f"{miss / alarm:.0f}x"
        out.append(
            {
                "metric": "recall",
                "direction": ">=",
                "target": 0.8,
                "why": f"a false negative costs {times} a false positive: find most positives, even with false alarms",
            }
        )
    elif alarm >= ratio * miss:
        times = "far more" if miss == 0 else f"{alarm / miss:.0f}x"
        out.append(
            {
                "metric": "precision",
                "direction": ">=",
                "target": 0.8,
                "why": f"a false positive costs {times} a false negative: flag only cases you are sure of",
            }
        )
    else:
        out.append(
            {
                "metric": "f1",
                "direction": ">=",
                "target": 0.7,
                "why": "both kinds of error cost about the same: balance precision and recall",
            }
        )
    out.append(
        {
            "metric": "roc_auc",
            "direction": ">=",
            "target": 0.75,
            "why": "ranking quality: the value-maximising threshold can only be as good as the ranking",
        }
    )
    return out
