"""Scores: which class is "positive", and a model's predictions with its positive-class probability.

Pure rules shared by training (metrics at the deploy gate), the scoring service and its numpy fast
path, batch scoring and monitoring, so a recall or roc_auc KPI means the same thing everywhere.
numpy and scikit-learn are imported where used: services import this module, and their imports stay light.
"""

from __future__ import annotations

from typing import Any, Iterable

# Which class is "positive" for precision/recall/roc_auc on live traffic. Monitoring
# (services.monitoring.performance_metrics) and the logged `score` both use this rule, so a live
# roc_auc is computed from the probability of the class monitoring counts as positive. (AUC itself
# does not depend on the choice, so it is comparable with training's roc_auc, which scores classes_[1].)
POSITIVE_LABELS = (1, True, "1", "yes", "true", "churn", "churned", "positive")


def label_key(v: Any) -> str:
    """A label as text, so 1 / "1" / True / 1.0 compare equal everywhere."""
    item = getattr(v, "item", None)
    if item is not None and not isinstance(v, (str, bytes)):
        v = item()  # numpy scalars (a model's classes_)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def positive_label(keys: Iterable[str], preferred: str | None = None) -> str:
    """The positive class among label keys (`label_key`): `preferred` (the ML canvas's positive class) when
    it is one of them, else a known positive name, else the last in order."""
    keys = sorted(set(keys))
    if preferred and label_key(preferred) in keys:
        return label_key(preferred)
    return next((label_key(c) for c in POSITIVE_LABELS if label_key(c) in keys), keys[-1])


def positive_index(model: Any, preferred: str | None = None) -> int | None:
    """Index in model.classes_ of the positive class when the model is a binary classifier with
    predict_proba; None otherwise (regressors, multiclass, no probabilities: no score is logged).
    `preferred`: the positive class the use case's ML canvas states (used when it is one of the classes)."""
    classes = getattr(model, "classes_", None)
    if getattr(classes, "ndim", 0) != 1 or len(classes) != 2 or not hasattr(model, "predict_proba"):
        return None  # (a multi-output classifier's classes_ is a list of arrays)
    keys = [label_key(c) for c in classes]
    if keys[0] == keys[1]:
        return None
    return keys.index(positive_label(keys, preferred))


# Estimators whose predict() is, in scikit-learn's code, classes_.take(argmax(predict_proba)) (up to a
# positive row scale): one call gives both. (Others, e.g. boosting's `raw > 0`, can differ at p = 0.5.)
_ARGMAX_ESTIMATORS = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier")


def estimator_scored(est: Any, X: Any, positive: int):
    """(labels, positive-class probabilities) of a fitted binary classifier on model input X."""
    # numpy only when figures are computed, not at import
    import numpy as np

    proba = np.asarray(est.predict_proba(X))
    if type(est).__name__ in _ARGMAX_ESTIMATORS:
        labels = np.asarray(est.classes_).take(np.argmax(proba, axis=1))
    else:
        labels = est.predict(X)
    return labels, proba[:, positive]


def predict_scored(model: Any, X: Any, positive: int | None = -1, threshold: float | None = None):
    """(predictions, scores or None) for a model input frame: model.predict's answer, plus the
    positive-class probability for binary classifiers. A Pipeline is transformed once for both.
    `positive`: the index from `positive_index` (computed here when -1; None: no scores).
    `threshold`: a binary classifier's stored decision threshold (the value-maximising one of its model
    version): the positive class when score >= threshold, instead of the model's own rule."""
    if positive == -1:
        positive = positive_index(model)
    if positive is None:
        return model.predict(X), None
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        Xt = X
        for _, step in model.steps[:-1]:
            if step is not None and step != "passthrough":
                Xt = step.transform(Xt)
        labels, scores = estimator_scored(model.steps[-1][1], Xt, positive)
    else:
        labels, scores = estimator_scored(model, X, positive)
    return apply_threshold(model, labels, scores, positive, threshold), scores


def apply_threshold(model: Any, labels: Any, scores: Any, positive: int | None, threshold: float | None):
    """`labels` with the decision rule "positive class when score >= threshold" (unchanged without one)."""
    if threshold is None or positive is None or scores is None:
        return labels
    # numpy only when figures are computed, not at import
    import numpy as np

    classes = np.asarray(model.classes_)
    s = np.asarray(scores, dtype=float)
    return np.where(s >= float(threshold), classes[positive], classes[1 - positive])


def jsonable_scores(scores: Any, n: int) -> list[float | None]:
    """Scores as plain floats (None for a non-finite one), or n Nones when there are none."""
    if scores is None:
        return [None] * n
    out = []
    for v in scores:
        f = float(v)
        out.append(f if f == f and abs(f) != float("inf") else None)
    return out


def score_arrow(model: Any, batch: Any, to_model_input: Any, positive: int | None = -1, threshold: float | None = None):
    """`predict_scored` on an Arrow record batch (or table) of the model's input columns: the one scoring step of
    streamed batch scoring, on this process or on a Dask worker, so both give the same answers.
    `to_model_input`: DataFrame -> model input frame (the deployment's `RecordValidator.frame_to_model_input`)."""
    return predict_scored(model, to_model_input(batch.to_pandas()), positive, threshold)
