"""Pure monitoring figures: model metrics on labelled predictions and label coverage/delay.

No database and no service here (the service layer reads the rows and hands them over), so the rules
can be tested and reused on their own. Names of metrics are those of mlops_core.kpi.KNOWN_METRICS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ml.scoring import label_key, positive_label


def finite(x) -> float | None:
    """`x` as a float, or None when it is not a finite number (SQL NULL, NaN, inf)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def label_figures(n_ok: int, labelled: list[tuple[Any, Any, float]]) -> dict[str, Any]:
    """Label coverage and delay over the ok predictions of a window (labelled: (prediction, label, delay s))."""
    n_lab = len(labelled)
    delays = np.array([d for *_, d in labelled], dtype=float)
    return {
        "n_predictions": n_ok,
        "n_labelled": n_lab,
        "n_unlabelled": max(0, n_ok - n_lab),
        "coverage": (n_lab / n_ok) if n_ok else None,
        "delay_p50_s": float(np.median(delays)) if n_lab else None,
        "delay_p95_s": float(np.percentile(delays, 95)) if n_lab else None,
        "delay_max_s": float(delays.max()) if n_lab else None,
    }


def prediction_value(p: Any) -> Any:
    """The served value of a logged prediction (a scalar, or a dict holding it)."""
    if isinstance(p, dict):
        for key in ("prediction", "label", "value", "class"):
            if key in p:
                return p[key]
        return None
    if isinstance(p, list) and len(p) == 1:
        return p[0]
    return p


def performance_metrics(
    task: str, labelled: list[tuple[Any, Any, float]], positive: str | None = None
) -> dict[str, float]:
    """The model's metrics on labelled predictions (names as in mlops_core.kpi.KNOWN_METRICS).
    `positive`: the use case's positive class from its ML canvas (else the shared rule picks it)."""
    if not labelled:
        return {}
    y_pred = [prediction_value(p) for p, _, _ in labelled]
    y_true = [lab for _, lab, _ in labelled]
    keep = [i for i, (a, b) in enumerate(zip(y_pred, y_true)) if a is not None and b is not None]
    y_pred = [y_pred[i] for i in keep]
    y_true = [y_true[i] for i in keep]
    if not y_true:
        return {}
    if task == "regression":
        t = np.asarray(y_true, dtype=float)
        p = np.asarray(y_pred, dtype=float)
        # plain numpy: importing scikit-learn would cost more than the whole check
        out = {"rmse": float(np.sqrt(np.mean((t - p) ** 2))), "mae": float(np.mean(np.abs(t - p)))}
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        if len(t) > 1 and ss_tot > 0:
            out["r2"] = 1.0 - float(np.sum((t - p) ** 2)) / ss_tot
        nz = t != 0
        if nz.any():
            out["mape"] = float(np.mean(np.abs((t[nz] - p[nz]) / t[nz])))
        return out
    # classification: compare as strings so 1 / "1" / True line up the same way everywhere
    norm = label_key

    try:
        # numbers and booleans (the usual case): compare numerically, no per-value Python work
        tn_ = np.asarray(y_true, dtype=float)
        pn_ = np.asarray(y_pred, dtype=float)
        if np.isnan(tn_).any() or np.isnan(pn_).any() or (tn_ != np.round(tn_)).any() or (pn_ != np.round(pn_)).any():
            raise ValueError("not integral")
        t = tn_.astype(np.int64).astype(str).astype(object)
        p = pn_.astype(np.int64).astype(str).astype(object)
    except (TypeError, ValueError):
        t = np.array([norm(v) for v in y_true], dtype=object)
        p = np.array([norm(v) for v in y_pred], dtype=object)
    classes = sorted(set(t.tolist()) | set(p.tolist()))
    out: dict[str, float] = {"accuracy": float(np.mean(t == p))}
    if len(classes) <= 2:
        # binary: counts with numpy (sklearn's input validation costs more than the arithmetic here)
        pos = positive_label(classes, positive)  # the class whose probability the logged score is
        tp = float(np.sum((t == pos) & (p == pos)))
        fp = float(np.sum((t != pos) & (p == pos)))
        fn = float(np.sum((t == pos) & (p != pos)))
        tn = float(np.sum((t != pos) & (p != pos)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out["precision"] = precision
        out["recall"] = recall
        out["f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        tnr = tn / (tn + fp) if tn + fp else None
        out["balanced_accuracy"] = (recall + tnr) / 2 if (tnr is not None and tp + fn) else out["accuracy"]
        raw = [labelled[i][0] for i in keep]
        scores = [x.get("probability", x.get("proba", x.get("score"))) if isinstance(x, dict) else None for x in raw]
        # roc_auc only when every labelled prediction carries a score and both classes were observed
        if (
            all(isinstance(sc, (int, float)) and not isinstance(sc, bool) and math.isfinite(sc) for sc in scores)
            and len(set(t.tolist())) == 2
        ):
            out["roc_auc"] = _roc_auc((t == pos), np.asarray(scores, dtype=float))
    else:
        # scikit-learn only here (multiclass, rare): importing it would cost more than a binary check
        from sklearn import metrics as skm

        tl, pl = t.tolist(), p.tolist()
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(tl, pl))
        out["precision"] = float(skm.precision_score(tl, pl, average="macro", zero_division=0))
        out["recall"] = float(skm.recall_score(tl, pl, average="macro", zero_division=0))
        out["f1"] = float(skm.f1_score(tl, pl, average="macro", zero_division=0))
    return out


def _roc_auc(positive, scores) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties (= sklearn's roc_auc_score)."""
    # scipy.stats is slow to import and only scored binary predictions need it
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = int(len(positive) - n_pos)
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
