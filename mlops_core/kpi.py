"""KPI arithmetic shared by every stage: which metrics exist, and whether a value meets a target.

Pure functions (no database): experiments rank runs with them, deployment gates check them,
monitoring raises alerts with them — all against the KPI contracts of stage 1.
"""

from __future__ import annotations

import math

from .errors import ValidationError

DIRECTIONS = (">=", "<=")

# metric -> (what it is, the direction in which it is better)
KNOWN_METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("share of correct predictions", ">="),
    "balanced_accuracy": ("mean recall over classes", ">="),
    "precision": ("share of predicted positives that are positive", ">="),
    "recall": ("share of positives that are found", ">="),
    "f1": ("harmonic mean of precision and recall", ">="),
    "roc_auc": ("area under the ROC curve", ">="),
    "average_precision": ("area under the precision-recall curve", ">="),
    "log_loss": ("logistic loss", "<="),
    "rmse": ("root mean squared error", "<="),
    "mae": ("mean absolute error", "<="),
    "mape": ("mean absolute percentage error", "<="),
    "r2": ("coefficient of determination", ">="),
}

STATUSES = ("met", "warning", "missed", "unknown")


def check_metric(metric: str) -> str:
    """The metric name, normalised; a ValidationError listing the known ones otherwise."""
    name = (metric or "").strip().lower()
    if name not in KNOWN_METRICS:
        raise ValidationError(f"unknown metric {metric!r}; choose one of: {', '.join(KNOWN_METRICS)}")
    return name


def check_direction(direction: str) -> str:
    d = (direction or "").strip().replace("≥", ">=").replace("≤", "<=")
    if d not in DIRECTIONS:
        raise ValidationError(f"unknown direction {direction!r}; use >= (higher is better) or <= (lower is better)")
    return d


def to_number(value, what: str) -> float:
    """A finite float, or a ValidationError naming `what` and the value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"{what} is missing; enter a number")
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a number, not {value!r}")
    try:
        x = float(str(value).strip().replace(",", ".") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return x


def evaluate(direction: str, target: float, warning: float | None, value: float | None) -> str:
    """ "met" | "warning" | "missed" | "unknown" (no value).

    `warning` is a band next to the target on the wrong side: for ">=", a value in
    [target - warning, target) is "warning"; for "<=", a value in (target, target + warning].
    """
    if value is None:
        return "unknown"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "unknown"
    if math.isnan(v):
        return "unknown"
    band = abs(warning) if warning else 0.0
    if direction == ">=":
        if v >= target:
            return "met"
        return "warning" if band and v >= target - band else "missed"
    if direction == "<=":
        if v <= target:
            return "met"
        return "warning" if band and v <= target + band else "missed"
    raise ValueError(f"unknown direction {direction!r}")


def better(direction: str, a: float | None, b: float | None) -> float | None:
    """The better of two values under `direction` (None loses)."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if direction == ">=" else min(a, b)


def progress(baseline: float | None, target: float, value: float | None) -> float | None:
    """Share of the way from baseline to target (0 at baseline, 1 at target; may exceed either)."""
    if baseline is None or value is None or target == baseline:
        return None
    return (value - baseline) / (target - baseline)
