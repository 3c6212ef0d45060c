"""A numpy fast path for scoring ONE record with the pipelines the hub trains.

A scikit-learn Pipeline(ColumnTransformer -> estimator) costs milliseconds per call for a single
row (a pandas frame, per-transformer validation, column selection). For the shapes `training.py`
builds — numeric columns: SimpleImputer + StandardScaler; categorical columns: SimpleImputer +
OneHotEncoder; then any estimator — the transform of one record is a few array operations:

- numeric column: missing -> the imputer's statistic, then (x - mean) / scale;
- categorical column: a lookup table value -> its one-hot block, built at load time by asking the
  fitted encoder itself for every known category, for a missing value and for an unseen value;
- linear estimators: X @ coef.T + intercept (as scikit-learn computes them); others: est.predict.
- binary classifiers (when asked, `positive` = index in classes_): the positive-class probability too,
  for logistic regression the sigmoid of the decision value (as LogisticRegression.predict_proba
  computes it for two classes), for others est.predict_proba on the transformed row.

`compile_fast_path` returns None for any other shape, and the caller verifies the compiled
function against `pipeline.predict` (and `pipeline.predict_proba` for the score) on sample rows
before using it (see ServingState._load): a fast path that disagrees is never used.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .scoring import estimator_scored

_UNSEEN = "\x00unseen-category\x00"


def _steps(trans) -> list:
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.pipeline import Pipeline

    return [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans]


def _numeric_block(trans, cols: list[str]):
    # numpy only when figures are computed, not at import
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    steps = _steps(trans)
    fill = np.full(len(cols), np.nan)
    mean = np.zeros(len(cols))
    scale = np.ones(len(cols))
    for step in steps:
        if isinstance(step, SimpleImputer):
            if getattr(step, "add_indicator", False) or len(step.statistics_) != len(cols):
                return None
            try:
                fill = np.asarray(step.statistics_, dtype=float)
            except (TypeError, ValueError):
                return None  # a text fill value: not a numeric block
        elif isinstance(step, StandardScaler):
            mean = np.asarray(step.mean_, dtype=float) if step.with_mean else np.zeros(len(cols))
            scale = np.asarray(step.scale_, dtype=float) if step.with_std else np.ones(len(cols))
        else:
            return None
    return fill, mean, scale


def _categorical_block(trans, cols: list[str]):
    # numpy only when figures are computed, not at import
    import numpy as np
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    steps = _steps(trans)
    if not steps or not isinstance(steps[-1], OneHotEncoder):
        return None
    if any(not isinstance(s, (SimpleImputer, OneHotEncoder)) for s in steps):
        return None
    enc = steps[-1]
    widths = getattr(enc, "_n_features_outs", None)
    if widths is None or len(widths) != len(cols):
        return None
    base = {c: [str(enc.categories_[j][0])] for j, c in enumerate(cols)}
    tables = []
    offset = 0
    for j, c in enumerate(cols):
        width = widths[j]
        values = [str(v) for v in enc.categories_[j]] + [_UNSEEN]
        frames = []
        for v in values + [None]:
            row = dict(base)
            row[c] = [np.nan if v is None else v]
            frames.append(pd.DataFrame(row, columns=cols).astype(object))
        out = trans.transform(pd.concat(frames, ignore_index=True))
        out = out.toarray() if hasattr(out, "toarray") else np.asarray(out, dtype=float)
        block = out[:, offset : offset + width]
        table = {v: block[i].copy() for i, v in enumerate(values)}
        tables.append((c, table, block[len(values) - 1].copy(), block[len(values)].copy()))
        offset += width
    return tables


def _sigmoid(d: float) -> float:
    if d >= 0:
        return 1.0 / (1.0 + math.exp(-d))
    e = math.exp(d)
    return e / (1.0 + e)


def compile_fast_path(model, names: list[str], positive: int | None = None) -> Callable[[dict[str, Any]], Any] | None:
    """A function record -> prediction equal to model.predict on that one record, or None.

    With `positive` (the index of the positive class of a binary classifier), the function also has
    `.scored(record) -> (prediction, positive-class probability)`."""
    try:
        # numpy only when figures are computed, not at import
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
        from sklearn.pipeline import Pipeline
    except ImportError:  # _base is scikit-learn's private module: if a release moves it, score with model.predict
        return None
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    pre, est = model.steps[0][1], model.steps[1][1]
    if not isinstance(pre, ColumnTransformer):
        return None
    parts: list[tuple[str, Any, Any]] = []
    width = 0
    for name, trans, cols in pre.transformers_:
        if isinstance(trans, str):
            if trans == "drop":
                continue
            return None
        cols = list(cols)
        if any(not isinstance(c, str) or c not in names for c in cols):
            return None
        num = _numeric_block(trans, cols)
        if num is not None:
            parts.append(("num", cols, num))
            width += len(cols)
            continue
        cat = _categorical_block(trans, cols)
        if cat is None:
            return None
        parts.append(("cat", cols, cat))
        width += sum(len(t[2]) for t in cat)

    linear_clf = isinstance(est, LinearClassifierMixin) and hasattr(est, "coef_")
    linear_reg = isinstance(est, LinearModel) and not linear_clf and hasattr(est, "coef_")
    if linear_clf:
        coef_t = np.ascontiguousarray(np.asarray(est.coef_, dtype=float).T)
        intercept = np.asarray(est.intercept_, dtype=float)
        classes = est.classes_
    elif linear_reg:
        coef = np.asarray(est.coef_, dtype=float)
        intercept_r = np.asarray(est.intercept_, dtype=float) if np.ndim(est.intercept_) else float(est.intercept_)

    nan = math.nan

    def transform(rec: dict[str, Any]):
        x = np.empty(width)
        pos = 0
        for kind, cols, spec in parts:
            if kind == "num":
                fill, mean, scale = spec
                vals = np.array([nan if (v := rec[c]) is None else float(v) for c in cols])
                missing = np.isnan(vals)
                if missing.any():
                    vals[missing] = fill[missing]
                n = len(cols)
                x[pos : pos + n] = (vals - mean) / scale
                pos += n
            else:
                for c, table, unseen, missing in spec:
                    v = rec[c]
                    block = missing if v is None else table.get(str(v), unseen)
                    n = len(block)
                    x[pos : pos + n] = block
                    pos += n
        return x

    def predict_one(rec: dict[str, Any]):
        x = transform(rec)
        if linear_clf:
            scores = x @ coef_t + intercept
            if scores.shape[0] == 1:
                return classes[int(scores[0] > 0)]
            return classes[int(np.argmax(scores))]
        if linear_reg:
            return x @ coef.T + intercept_r if np.ndim(coef) > 1 else float(x @ coef + intercept_r)
        return est.predict(x.reshape(1, -1))[0]

    predict_one.transform = transform  # type: ignore[attr-defined]
    if positive is None:
        return predict_one
    if linear_clf and isinstance(est, LogisticRegression) and coef_t.shape[1] == 1 and len(classes) == 2:

        def scored(rec: dict[str, Any]):
            d = float((transform(rec) @ coef_t + intercept)[0])
            p1 = _sigmoid(d)  # probability of classes_[1]; classes_[0] gets 1 - p1, as in predict_proba
            return classes[int(d > 0)], (p1 if positive == 1 else 1.0 - p1)
    elif hasattr(est, "predict_proba") and not linear_clf:

        def scored(rec: dict[str, Any]):
            labels, scores = estimator_scored(est, transform(rec).reshape(1, -1), positive)
            return labels[0], float(scores[0])
    else:
        return None  # a score we cannot compute the way the pipeline does: no fast path
    predict_one.scored = scored  # type: ignore[attr-defined]
    return predict_one


SCORE_TOLERANCE = 1e-9


def verify_fast_path(fast, model, validator, records: list[dict[str, Any]], positive: int | None = None) -> bool:
    """True when `fast` gives exactly model.predict's answer on every record (and its transform matches);
    with `positive`, also when `fast.scored` gives model.predict_proba[:, positive] (within 1e-9) and the
    same label on every record."""
    # numpy only when figures are computed, not at import
    import numpy as np

    if not records:
        return False
    frame = validator.to_frame(records)
    expected = model.predict(frame)
    try:
        got = [fast(r) for r in records]
        if positive is not None:
            pairs = [fast.scored(r) for r in records]
            want = np.asarray(model.predict_proba(frame), dtype=float)[:, positive]
            scores = np.array([sc for _, sc in pairs], dtype=float)
            if scores.shape != want.shape or not np.all(np.abs(scores - want) <= SCORE_TOLERANCE):
                return False
            if not all(_same(a, b) for (a, _), b in zip(pairs, expected)):
                return False
        pre = model.steps[0][1]
        ref = pre.transform(frame)
        ref = ref.toarray() if hasattr(ref, "toarray") else np.asarray(ref, dtype=float)
        mine = np.vstack([fast.transform(r) for r in records])
    except Exception:  # noqa: BLE001 - a fast path that fails is simply not used
        return False
    if ref.shape != mine.shape or not np.allclose(ref, mine, rtol=1e-12, atol=1e-12):
        return False
    return all(_same(a, b) for a, b in zip(got, expected))


def _same(a, b) -> bool:
    a = a.item() if hasattr(a, "item") else a
    b = b.item() if hasattr(b, "item") else b
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return a == b
