"""Drift figures people can read: the statistic and the p-value labelled apart, compact numbers, and the
size of a shift in plain units (means and shares). Pure formatting, no Streamlit; used by the deployment
monitoring page's Drift tab and the dataset page (validation report, Compare versions)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

P_VALUE_METHODS = ("ks", "chisquare", "z")
_STAT_NAMES = {"ks": "KS statistic", "chisquare": "chi-square", "z": "|z|"}
_DISTANCE_NAMES = {
    "wasserstein": "Wasserstein distance (in reference sd)",
    "jensenshannon": "Jensen-Shannon distance",
    "abs_text_content_drift": "domain classifier ROC AUC",
    "perc_text_content_drift": "domain classifier ROC AUC",
}


def num(value: Optional[float]) -> str:
    """3 significant digits in plain units ('1,340', '878', '15.5', '0.0123'); scientific notation only
    below 0.001 (p-values); '—' when missing. The one number formatter of the drift screens."""
    if value is None:
        return "—"
    value = float(value)
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    text = f"{value:.3g}"
    if "e" in text or abs(value) >= 1000:  # 1340 -> '1.34e+03' in %g: round to 3 digits, print with commas
        digits = 3 - 1 - math.floor(math.log10(abs(float(text))))
        return f"{round(value, digits):,.0f}"
    return text


def signed_sd(shift: float) -> str:
    """A shift in reference standard deviations, '+4.1 sd'; a shift that rounds to zero reads '0.0 sd'."""
    shift = round(float(shift), 1)
    return "0.0 sd" if shift == 0 else f"{shift:+.1f} sd"


def stat_text(method: str, score: Optional[float], statistic: Optional[float] = None) -> str:
    """'KS statistic 0.41, p-value 2.7e-76' for p-value tests; 'Jensen-Shannon distance 0.12' for distances."""
    if method in P_VALUE_METHODS:
        parts = []
        if statistic is not None:
            parts.append(f"{_STAT_NAMES[method]} {num(statistic)}")
        parts.append(f"p-value {num(score)}")
        return ", ".join(parts)
    return f"{_DISTANCE_NAMES.get(method, method)} {num(score)}"


def threshold_text(method: str, threshold: float) -> str:
    """The rule in words: p-value tests drift below their threshold, distances above it."""
    if method in P_VALUE_METHODS:
        return f"drift if p-value < {num(threshold)}"
    return f"drift if ≥ {num(threshold)}"


def _share(value: Optional[float]) -> str:
    return "—" if value is None else f"{float(value):.0%}"


def effect_text(effect: Optional[Mapping[str, Any]]) -> str:
    """'mean 13.0 → 15.5 (+4.1 sd)' or 'north 32% → 51%'; '' when the result has no effect size."""
    if not effect:
        return ""
    if effect.get("kind") == "mean":
        text = f"mean {num(effect.get('reference_mean'))} → {num(effect.get('current_mean'))}"
        shift = effect.get("shift_sd")
        if shift is not None:
            text += f" ({signed_sd(shift)})"
        return text
    if effect.get("kind") == "share" and effect.get("value") is not None:
        return f"{effect['value']} {_share(effect.get('reference_share'))} → {_share(effect.get('current_share'))}"
    return ""


def yes_no(flag: Any) -> str:
    if flag is None or flag == "":
        return ""
    return "yes" if bool(flag) else "no"


def column_row(column: str, result: Any) -> dict:
    """One table row for a per-column drift result (ColumnDriftPublic or anything with the same fields)."""
    method = result.method
    return {
        "column": column,
        "type": {"num": "numeric", "cat": "categorical", "text": "text"}.get(result.column_type, result.column_type),
        "change (reference → current)": effect_text(getattr(result, "effect", None)),
        "test": stat_text(method, result.score, getattr(result, "statistic", None)),
        "rule": threshold_text(method, result.threshold),
        "drifted": yes_no(result.drifted),
    }
