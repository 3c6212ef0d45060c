"""Estimated model performance before labels arrive (pure: numpy/scikit-learn, no database, no service).

Two estimators, after NannyML's:

- **CBPE** (confidence-based performance estimation) for classifiers. `CBPE.fit` calibrates the model's
  scores on labelled reference data (isotonic regression; one-vs-rest per class for multiclass);
  `CBPE.estimate` turns the calibrated probabilities of live predictions into an *expected* confusion
  matrix and from it accuracy, precision, recall, f1 (and roc_auc from the expected ROC curve).
- **DLE** (direct loss estimation) for regressors. `DLE.fit` trains a "nanny" model on reference data that
  predicts each row's loss (absolute and squared error) from its inputs and the model's prediction;
  `DLE.estimate` averages the predicted losses of live rows -> mae, rmse.

Every figure is an `Estimate` with a confidence band `[lower, upper]` = value ± `Z` x sampling std.
For CBPE the std is that of the metric over label sets drawn from the calibrated probabilities (the
labels the window would get if the calibration holds), so a small window gets a wide band. For DLE it
is the standard error of the mean loss, taken from the spread of the reference losses.

A figure the data cannot support is still an `Estimate`, with `value=None` and `reason` saying why
("no scores were logged", "the reference holds a single class", ...). Use it like this:

    cbpe = CBPE.fit(ref_scores, ref_labels)             # raises EstimationUnavailable (a ValueError)
    result = cbpe.estimate(live_scores)                 # or live_predictions=... for the served classes
    result.get("recall").value, .lower, .upper          # floats, or None with .reason
    result.confusion                                    # expected tp/fp/fn/tn counts (binary) for value models

`estimate_classification(...)` and `estimate_regression(...)` do fit + estimate in one call and never raise
for bad data: they return an `EstimationResult` whose `reason` says what is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

# Band half-width in standard deviations (NannyML draws its band at 3 standard errors).
Z = 3.0
# Label sets drawn from the calibrated probabilities to measure the sampling std of a CBPE estimate.
N_DRAWS = 40
# Fewer labelled reference rows than this: no calibration (and no nanny model).
MIN_REFERENCE_ROWS = 20
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")


class EstimationUnavailable(ValueError):
    """The data cannot support an estimate; the message says why (shown to users as is)."""


@dataclass
class Estimate:
    """One estimated metric over a window: value with band, or value None and the reason."""

    metric: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    std: float | None = None
    n: int = 0
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "std": self.std,
            "n": self.n,
            "reason": self.reason,
        }


@dataclass
class EstimationResult:
    """The estimates of one window. `reason` is "" when they are available, else why not."""

    method: str  # "cbpe" | "dle"
    n: int
    estimates: dict[str, Estimate] = field(default_factory=dict)
    reason: str = ""
    confusion: dict[str, float] | None = None  # binary CBPE: expected tp, fp, fn, tn counts
    note: str = ""  # e.g. rows left out because they had no score

    def get(self, metric: str) -> Estimate:
        """The estimate of `metric`, or an unavailable one saying why."""
        if metric in self.estimates:
            return self.estimates[metric]
        why = self.reason or f"{metric} is not estimated by {self.method.upper()}"
        return Estimate(metric=metric, value=None, n=self.n, reason=why)

    def values(self) -> dict[str, float]:
        """{metric: estimated value} of the available estimates (the shape KPI evaluation takes)."""
        return {k: e.value for k, e in self.estimates.items() if e.value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n": self.n,
            "reason": self.reason,
            "note": self.note,
            "confusion": self.confusion,
            "estimates": {k: e.to_dict() for k, e in self.estimates.items()},
        }


def unavailable(method: str, reason: str, n: int = 0, metrics: Sequence[str] = ()) -> EstimationResult:
    """A result that says why there is no estimate (every metric in `metrics` carries the reason)."""
    return EstimationResult(
        method=method,
        n=n,
        reason=reason,
        estimates={m: Estimate(metric=m, value=None, n=n, reason=reason) for m in metrics},
    )


def _band(metric: str, value: float, std: float, n: int, lo: float | None = 0.0, hi: float | None = 1.0) -> Estimate:
    lower, upper = value - Z * std, value + Z * std
    if lo is not None:
        lower = max(lo, lower)
    if hi is not None:
        upper = min(hi, upper)
    return Estimate(metric=metric, value=float(value), lower=float(lower), upper=float(upper), std=float(std), n=n)


def _key(v: Any) -> str:
    """Labels compared as text so 1 / "1" / 1.0 / True line up (as mlops_core.ml.scoring.label_key does)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def label_keys(values) -> np.ndarray:
    """`_key` of many values at once (numbers and booleans without a per-value Python call)."""
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind in "biuf":
        f = arr.astype(float)
        if np.isfinite(f).all() and (f == np.round(f)).all():
            return f.astype(np.int64).astype(str).astype(object)
    return np.array([_key(v) for v in values], dtype=object)


# --- CBPE --------------------------------------------------------------------------------------


def _binary_from_counts(tp, fp, fn, tn):
    """accuracy, precision, recall, f1 from (arrays of) confusion counts."""
    n = tp + fp + fn + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (tp + tn) / n
        prec = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
        rec = np.where(tp + fn > 0, tp / np.where(tp + fn > 0, tp + fn, 1), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.where(2 * tp + fp + fn > 0, 2 * tp + fp + fn, 1), 0.0)
    return acc, prec, rec, f1


def _expected_auc(p: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC expected under labels ~ Bernoulli(p), ranking by `scores` (ties count half)."""
    pos, neg = p.sum(), (1 - p).sum()
    if pos <= 0 or neg <= 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, pp = scores[order], p[order]
    # group ties: per distinct score, expected positives and negatives
    uniq_idx = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    gp = np.add.reduceat(pp, uniq_idx)
    gn = np.add.reduceat(1 - pp, uniq_idx)
    neg_above = np.cumsum(gn) - gn
    # each positive ranks above the negatives with a higher score...: AUC = P(score_pos > score_neg)
    auc_num = np.sum(gp * ((neg - neg_above - gn) + 0.5 * gn))
    return float(auc_num / (pos * neg))


def _auc_draws(y: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of label draws `y` (draws x n, bool) given the scores' average ranks."""
    n_pos = y.sum(axis=1).astype(float)
    n_neg = y.shape[1] - n_pos
    rank_sum = y.astype(np.float32) @ ranks.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


class CBPE:
    """Confidence-based performance estimation: calibrated on reference scores and labels.

    Binary: `scores` are the probabilities of the positive class (1-d). Multiclass: a 2-d array with one
    column per class in `classes` order (one-vs-rest calibration, rows renormalised).
    """

    def __init__(self, classes: list[str], positive: str | None, calibrators: list[Any], threshold: float):
        self.classes = classes
        self.positive = positive
        self.calibrators = calibrators
        self.threshold = threshold

    @property
    def binary(self) -> bool:
        return self.positive is not None

    @classmethod
    def fit(
        cls,
        reference_scores,
        reference_labels,
        *,
        classes: Sequence[Any] | None = None,
        positive: Any = None,
        threshold: float = 0.5,
    ) -> "CBPE":
        """Calibrate. Binary when `reference_scores` is 1-d (positive: the class the score is the probability
        of; default the last of the sorted classes, "1" for 0/1 labels). Raises EstimationUnavailable."""
        from sklearn.isotonic import IsotonicRegression

        if reference_scores is None or len(reference_scores) == 0:
            raise EstimationUnavailable("the reference data has no model scores, so the scores cannot be calibrated")
        scores = np.asarray(reference_scores, dtype=float)
        labels = label_keys(reference_labels)
        if len(labels) != len(scores):
            raise EstimationUnavailable("the reference scores and labels differ in length")
        ok = np.isfinite(scores) if scores.ndim == 1 else np.isfinite(scores).all(axis=1)
        ok &= np.array([v not in ("None", "nan") for v in labels], dtype=bool)
        scores, labels = scores[ok], labels[ok]
        if len(labels) < MIN_REFERENCE_ROWS:
            raise EstimationUnavailable(
                f"only {len(labels)} labelled reference rows with a score: calibration needs at least "
                f"{MIN_REFERENCE_ROWS}"
            )
        seen = sorted(set(labels.tolist()))
        if len(seen) < 2:
            raise EstimationUnavailable(
                f"the reference data holds a single class ({seen[0]!r}): the scores cannot be calibrated "
                "against both outcomes, so there is no estimate; use a reference with every class"
            )
        if scores.ndim == 1:
            cls_list = [_key(c) for c in classes] if classes is not None else seen
            if len(cls_list) != 2:
                raise EstimationUnavailable(
                    f"one score per prediction fits a binary classifier, but the reference has {len(cls_list)} "
                    "classes; log one probability per class for a multiclass model"
                )
            pos = _key(positive) if positive is not None else sorted(cls_list)[-1]
            if pos not in cls_list:
                raise EstimationUnavailable(f"the positive class {pos!r} is not one of {cls_list}")
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(scores, (labels == pos).astype(float))
            return cls(cls_list, pos, [iso], threshold)
        cls_list = [_key(c) for c in classes] if classes is not None else seen
        if scores.shape[1] != len(cls_list):
            raise EstimationUnavailable(
                f"{scores.shape[1]} score columns for {len(cls_list)} classes: pass one probability per class"
            )
        missing = [c for c in cls_list if c not in seen]
        if missing:
            raise EstimationUnavailable(
                f"class(es) {', '.join(map(repr, missing))} never occur in the reference data, so their scores "
                "cannot be calibrated"
            )
        cals = []
        for j, c in enumerate(cls_list):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(scores[:, j], (labels == c).astype(float))
            cals.append(iso)
        return cls(cls_list, None, cals, threshold)

    def calibrate(self, scores) -> np.ndarray:
        """Calibrated probabilities: 1-d (binary, of the positive class) or rows summing to 1."""
        s = np.asarray(scores, dtype=float)
        if self.binary:
            return np.clip(self.calibrators[0].predict(s), 0.0, 1.0)
        p = np.column_stack([cal.predict(s[:, j]) for j, cal in enumerate(self.calibrators)])
        tot = p.sum(axis=1, keepdims=True)
        # a row every calibrator maps to 0: fall back to the raw scores' shares
        raw = np.clip(s, 0, None)
        raw_tot = raw.sum(axis=1, keepdims=True)
        fallback = np.where(raw_tot > 0, raw / np.where(raw_tot > 0, raw_tot, 1), 1.0 / s.shape[1])
        return np.where(tot > 0, p / np.where(tot > 0, tot, 1), fallback)

    def estimate(
        self,
        scores,
        *,
        predictions: Sequence[Any] | None = None,
        metrics: Sequence[str] = CLASSIFICATION_METRICS,
        seed: int = 0,
        keyed: bool = False,
    ) -> EstimationResult:
        """Estimate `metrics` on live scores. `predictions`: the served classes (default: the score against
        the threshold, or the most likely class). Rows without a finite score are left out (see `note`)."""
        if scores is None or len(scores) == 0:
            return unavailable(
                "cbpe", "no scores were logged in the window, so performance cannot be estimated", 0, metrics
            )
        s = np.asarray(scores, dtype=float)
        ok = np.isfinite(s) if s.ndim == 1 else np.isfinite(s).all(axis=1)
        n_all = len(s)
        note = ""
        if not ok.all():
            note = f"{int((~ok).sum()):,} of {n_all:,} predictions had no score and were left out of the estimate"
        s = s[ok]
        if len(s) == 0:
            return unavailable(
                "cbpe", "no scores were logged in the window, so performance cannot be estimated", 0, metrics
            )
        if predictions is None:
            preds = None
        else:  # `keyed`: already `label_keys` output (callers estimating many subsets key once)
            preds = (np.asarray(predictions, dtype=object) if keyed else label_keys(predictions))[ok]
        rng = np.random.default_rng(seed)
        res = self._binary(s, preds, metrics, rng) if self.binary else self._multiclass(s, preds, metrics, rng)
        res.note = note
        return res

    def _binary(self, s, preds, metrics, rng) -> EstimationResult:
        n = len(s)
        p = self.calibrate(s)
        yhat = (s >= self.threshold) if preds is None else (preds == self.positive)
        yh = yhat.astype(float)
        tp, fp = float(np.sum(p * yh)), float(np.sum((1 - p) * yh))
        fn, tn = float(np.sum(p * (1 - yh))), float(np.sum((1 - p) * (1 - yh)))
        acc, prec, rec, f1 = (float(x) for x in _binary_from_counts(tp, fp, fn, tn))
        point = {"accuracy": acc, "precision": prec, "recall": rec, "f1": f1, "roc_auc": _expected_auc(p, s)}
        # sampling std: the metrics over label sets drawn from the calibrated probabilities
        draws = min(N_DRAWS, max(10, 4_000_000 // max(n, 1)))
        y = rng.random((draws, n)) < p
        dtp = (y & yhat).sum(axis=1).astype(float)
        dfp = (~y & yhat).sum(axis=1).astype(float)
        dfn = (y & ~yhat).sum(axis=1).astype(float)
        dtn = n - dtp - dfp - dfn
        stds = dict(
            zip(("accuracy", "precision", "recall", "f1"), (np.std(x) for x in _binary_from_counts(dtp, dfp, dfn, dtn)))
        )
        if "roc_auc" in metrics and point["roc_auc"] is not None:
            from scipy.stats import rankdata

            aucs = _auc_draws(y, rankdata(s))
            aucs = aucs[np.isfinite(aucs)]
            stds["roc_auc"] = float(np.std(aucs)) if len(aucs) > 1 else 0.0
        out = EstimationResult(method="cbpe", n=n, confusion={"tp": tp, "fp": fp, "fn": fn, "tn": tn})
        for m in metrics:
            if m not in point:
                out.estimates[m] = Estimate(m, None, n=n, reason=f"{m} is not estimated for classifiers")
            elif point[m] is None:
                out.estimates[m] = Estimate(
                    m,
                    None,
                    n=n,
                    reason="the calibrated scores expect a single class in the window: roc_auc is undefined",
                )
            else:
                out.estimates[m] = _band(m, point[m], float(stds[m]), n)
        return out

    def _multiclass(self, s, preds, metrics, rng) -> EstimationResult:
        n, k = s.shape
        P = self.calibrate(s)
        idx = (
            np.argmax(s, axis=1)
            if preds is None
            else np.array([self.classes.index(v) if v in self.classes else -1 for v in preds])
        )
        Yh = np.zeros((n, k), dtype=bool)
        valid = idx >= 0
        Yh[np.flatnonzero(valid), idx[valid]] = True

        def macro(conf_tp, conf_fp, conf_fn):
            with np.errstate(divide="ignore", invalid="ignore"):
                prec = np.where(
                    conf_tp + conf_fp > 0, conf_tp / np.where(conf_tp + conf_fp > 0, conf_tp + conf_fp, 1), 0.0
                )
                rec = np.where(
                    conf_tp + conf_fn > 0, conf_tp / np.where(conf_tp + conf_fn > 0, conf_tp + conf_fn, 1), 0.0
                )
                den = 2 * conf_tp + conf_fp + conf_fn
                f1 = np.where(den > 0, 2 * conf_tp / np.where(den > 0, den, 1), 0.0)
            return prec.mean(axis=-1), rec.mean(axis=-1), f1.mean(axis=-1)

        tp = (P * Yh).sum(axis=0)
        fp = ((1 - P) * Yh).sum(axis=0)
        fn = (P * ~Yh).sum(axis=0)
        prec, rec, f1 = macro(tp, fp, fn)
        aucs = [_expected_auc(P[:, j], s[:, j]) for j in range(k)]
        point = {
            "accuracy": float(tp.sum() / n),
            "precision": float(prec),
            "recall": float(rec),
            "f1": float(f1),
            "roc_auc": None if any(a is None for a in aucs) else float(np.mean(aucs)),
        }
        # draws: one class per row from the calibrated probabilities
        draws = min(N_DRAWS, max(10, 2_000_000 // max(n * k, 1)))
        cum = np.cumsum(P, axis=1)
        u = rng.random((draws, n, 1))
        drawn = np.minimum((u > cum[None, :, :]).sum(axis=2), k - 1)  # draws x n class index
        Y = drawn[:, :, None] == np.arange(k)[None, None, :]
        dtp = (Y & Yh[None]).sum(axis=1).astype(float)
        dfp = (~Y & Yh[None]).sum(axis=1).astype(float)
        dfn = (Y & ~Yh[None]).sum(axis=1).astype(float)
        dprec, drec, df1 = macro(dtp, dfp, dfn)
        stds = {
            "accuracy": float(np.std(dtp.sum(axis=1) / n)),
            "precision": float(np.std(dprec)),
            "recall": float(np.std(drec)),
            "f1": float(np.std(df1)),
        }
        if "roc_auc" in metrics and point["roc_auc"] is not None:
            from scipy.stats import rankdata

            per_class = []
            for j in range(k):
                a = _auc_draws(Y[:, :, j], rankdata(s[:, j]))
                per_class.append(a)
            m_auc = np.mean(np.vstack(per_class), axis=0)
            m_auc = m_auc[np.isfinite(m_auc)]
            stds["roc_auc"] = float(np.std(m_auc)) if len(m_auc) > 1 else 0.0
        out = EstimationResult(method="cbpe", n=n)
        for m in metrics:
            if m not in point:
                out.estimates[m] = Estimate(m, None, n=n, reason=f"{m} is not estimated for classifiers")
            elif point[m] is None:
                out.estimates[m] = Estimate(
                    m, None, n=n, reason="a class is expected to be absent from the window: roc_auc is undefined"
                )
            else:
                out.estimates[m] = _band(m, point[m], stds[m], n)
        return out


def estimate_classification(
    reference_scores,
    reference_labels,
    live_scores,
    *,
    live_predictions: Sequence[Any] | None = None,
    classes: Sequence[Any] | None = None,
    positive: Any = None,
    threshold: float = 0.5,
    metrics: Sequence[str] = CLASSIFICATION_METRICS,
) -> EstimationResult:
    """CBPE fit + estimate in one call; never raises for bad data (the result's `reason` says why)."""
    if live_scores is None or len(live_scores) == 0:
        return unavailable(
            "cbpe", "no scores were logged in the window, so performance cannot be estimated", 0, metrics
        )
    try:
        cbpe = CBPE.fit(reference_scores, reference_labels, classes=classes, positive=positive, threshold=threshold)
    except EstimationUnavailable as exc:
        return unavailable("cbpe", str(exc), len(live_scores), metrics)
    return cbpe.estimate(live_scores, predictions=live_predictions, metrics=metrics)


# --- DLE ---------------------------------------------------------------------------------------


def _design(frame, columns: list[str], categories: dict[str, dict[str, int]], prediction) -> np.ndarray:
    """Numeric design matrix: numbers as they are, text as reference category codes (unknown -> NaN)."""
    import pandas as pd

    cols = []
    for c in columns:
        v = frame[c] if c in frame.columns else pd.Series([np.nan] * len(frame))
        if c in categories:
            cols.append(v.astype(str).map(categories[c]).astype(float).to_numpy())
        else:
            cols.append(pd.to_numeric(v, errors="coerce").astype(float).to_numpy())
    cols.append(np.asarray(prediction, dtype=float))
    return np.column_stack(cols)


class DLE:
    """Direct loss estimation: a nanny model of each row's absolute and squared error."""

    def __init__(self, columns, categories, abs_model, sq_model, abs_sd: float, sq_sd: float):
        self.columns = columns
        self.categories = categories
        self.abs_model = abs_model
        self.sq_model = sq_model
        self.abs_sd = abs_sd
        self.sq_sd = sq_sd

    @classmethod
    def fit(cls, reference_frame, reference_predictions, reference_targets, *, seed: int = 0) -> "DLE":
        """Train the nanny models on reference inputs + the model's predictions vs the true targets."""
        import pandas as pd
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        frame = pd.DataFrame(reference_frame).reset_index(drop=True)
        if reference_predictions is None or len(reference_predictions) != len(frame):
            raise EstimationUnavailable("the reference data has no model predictions, so losses cannot be learned")
        pred = pd.to_numeric(pd.Series(list(reference_predictions)), errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(pd.Series(list(reference_targets)), errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(pred) & np.isfinite(y)
        if ok.sum() < MIN_REFERENCE_ROWS:
            raise EstimationUnavailable(
                f"only {int(ok.sum())} reference rows have a numeric target and prediction: the loss model "
                f"needs at least {MIN_REFERENCE_ROWS}"
            )
        columns = [str(c) for c in frame.columns]
        categories = {}
        for c in columns:
            if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
                vals = sorted(frame[c].dropna().astype(str).unique().tolist())
                categories[c] = {v: i for i, v in enumerate(vals)}
        X = _design(frame.loc[ok], columns, categories, pred[ok])
        err = y[ok] - pred[ok]
        a, q = np.abs(err), err**2
        params = dict(max_iter=60, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=20, random_state=seed)
        # one thread: OpenMP on a shared machine costs far more than it gains on a few thousand rows
        with threadpool_limits(limits=1):
            abs_model = HistGradientBoostingRegressor(**params).fit(X, a)
            sq_model = HistGradientBoostingRegressor(**params).fit(X, q)
        return cls(columns, categories, abs_model, sq_model, float(np.std(a)), float(np.std(q)))

    def estimate(self, frame, predictions, *, metrics: Sequence[str] = REGRESSION_METRICS) -> EstimationResult:
        """Estimate `metrics` (mae, rmse) of live `predictions` on their input `frame`."""
        import pandas as pd
        from threadpoolctl import threadpool_limits

        if predictions is None or len(predictions) == 0:
            return unavailable("dle", "no predictions were logged in the window", 0, metrics)
        frame = pd.DataFrame(frame).reset_index(drop=True)
        pred = pd.to_numeric(pd.Series(list(predictions)), errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(pred)
        n = int(ok.sum())
        if n == 0:
            return unavailable("dle", "no numeric predictions in the window, so losses cannot be estimated", 0, metrics)
        X = _design(frame.loc[ok], self.columns, self.categories, pred[ok])
        with threadpool_limits(limits=1):
            abs_loss = np.clip(self.abs_model.predict(X), 0, None)
            sq_loss = np.clip(self.sq_model.predict(X), 0, None)
        out = EstimationResult(method="dle", n=n)
        if n < len(pred):
            out.note = f"{len(pred) - n:,} of {len(pred):,} predictions were not numbers and were left out"
        for m in metrics:
            if m == "mae":
                v = float(np.mean(abs_loss))
                out.estimates[m] = _band(m, v, self.abs_sd / math.sqrt(n), n, 0.0, None)
            elif m == "rmse":
                mse = float(np.mean(sq_loss))
                v = math.sqrt(mse)
                se_mse = self.sq_sd / math.sqrt(n)
                lo, hi = math.sqrt(max(0.0, mse - Z * se_mse)), math.sqrt(mse + Z * se_mse)
                std = se_mse / (2 * v) if v > 0 else 0.0
                out.estimates[m] = Estimate(m, v, lower=lo, upper=hi, std=std, n=n)
            else:
                out.estimates[m] = Estimate(m, None, n=n, reason=f"{m} is not estimated for regressors")
        return out


def estimate_regression(
    reference_frame,
    reference_predictions,
    reference_targets,
    live_frame,
    live_predictions,
    *,
    metrics: Sequence[str] = REGRESSION_METRICS,
) -> EstimationResult:
    """DLE fit + estimate in one call; never raises for bad data (the result's `reason` says why)."""
    if live_predictions is None or len(live_predictions) == 0:
        return unavailable("dle", "no predictions were logged in the window", 0, metrics)
    try:
        dle = DLE.fit(reference_frame, reference_predictions, reference_targets)
    except EstimationUnavailable as exc:
        return unavailable("dle", str(exc), len(live_predictions), metrics)
    return dle.estimate(live_frame, live_predictions, metrics=metrics)
