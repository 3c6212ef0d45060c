"""No-code training: a validated config -> one scikit-learn Pipeline, metrics, curves, a skops file.

UI-free and database-free, like all of `mlops_core.ml` (it imports no service): `services/experiments.py`
loads the data, calls `train()` inside the "train" job and stores what it returns. The algorithms are
registered in `algorithms.py`; model files are written and read by `persistence.py`. Everything random
is seeded from `config["seed"]`, so the same config on the same dataset version gives the same metrics
(that is what "reproduce" checks).

Preprocessing lives inside the Pipeline (ColumnTransformer: impute + scale numbers, impute + one-hot
categories), so the stored model takes raw records as the scoring service receives them.
"""

from __future__ import annotations

import itertools
import logging
import math
import platform
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..config import PROJECT_ROOT
from ..errors import ValidationError
from .algorithms import ALGORITHMS, TASKS, algorithms_for, default_params
from .persistence import dump_model
from .scoring import label_key, positive_label
from .value import score_histogram

log = logging.getLogger(__name__)

MAX_SEARCH_COMBINATIONS = 200
MAX_CATEGORIES = 30  # one-hot columns per categorical feature; rarer values share an "infrequent" column
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
# Metrics where lower is better (everything else: higher is better).
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


# --- the config ----------------------------------------------------------------------------


@dataclass
class TrainingConfig:
    """A normalised launch configuration (also what a run stores in `runs.config`)."""

    target: str
    task: str
    algorithm: str
    features: list[str]
    params: dict[str, Any]  # scalar values, or lists of values to search over
    search: str = "none"  # "none" | "grid" | "random"
    n_iter: int = 10  # random search: candidates drawn
    split: str = "holdout"  # "holdout" | "cv"
    test_size: float = 0.2
    folds: int = 5
    seed: int = 42

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "task": self.task,
            "algorithm": self.algorithm,
            "features": list(self.features),
            "params": dict(self.params),
            "search": self.search,
            "n_iter": self.n_iter,
            "split": self.split,
            "test_size": self.test_size,
            "folds": self.folds,
            "seed": self.seed,
        }


def suggest_task(target: pd.Series) -> str:
    """Classification for booleans, text and few distinct integers; regression for other numbers."""
    s = target.dropna()
    if s.empty:
        return "classification"
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return "classification"
    n_unique = s.nunique()
    is_integral = bool(np.all(np.isclose(np.asarray(s, dtype=float) % 1, 0)))
    if is_integral and n_unique <= 20:
        return "classification"
    return "regression"


def _coerce_param(algorithm: str, name: str, value: Any) -> Any:
    spec = ALGORITHMS[algorithm].params[name]
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if spec.nullable:
            return None
        raise ValidationError(f"hyperparameter {name} of {algorithm} needs a value; its default is {spec.default}")
    if isinstance(value, bool):
        raise ValidationError(
            f"hyperparameter {name} of {algorithm} must be {'an integer' if spec.type is int else 'a number'}, "
            f"not {value!r}"
        )
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(
                f"hyperparameter {name} of {algorithm} must be {'an integer' if spec.type is int else 'a number'}, "
                f"got {value!r}; e.g. {spec.default}"
            ) from None
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(
            f"hyperparameter {name} of {algorithm} must be {'an integer' if spec.type is int else 'a number'}, "
            f"got {type(value).__name__} {value!r}; e.g. {spec.default}"
        )
    if spec.type is int:
        if float(value) != int(value):
            raise ValidationError(f"hyperparameter {name} of {algorithm} must be a whole number, got {value}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValidationError(f"hyperparameter {name} of {algorithm} must be a finite number, got {value}")
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        raise ValidationError(
            f"hyperparameter {name} of {algorithm} must be between {spec.min:g} and {spec.max:g}, got {value}"
        )
    return value


def normalise_params(algorithm: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults filled in, types checked; a list value means "search over these values"."""
    if algorithm not in ALGORITHMS:
        raise ValidationError(f"unknown algorithm {algorithm!r}; choose one of: {', '.join(ALGORITHMS)}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(ALGORITHMS[algorithm].params))
    if unknown:
        raise ValidationError(
            f"{algorithm} has no hyperparameter {', '.join(unknown)}; it takes: {', '.join(ALGORITHMS[algorithm].params)}"
        )
    out = default_params(algorithm)
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValidationError(f"hyperparameter {name} of {algorithm} has an empty list of values to search")
            vals = [_coerce_param(algorithm, name, v) for v in value]
            out[name] = list(dict.fromkeys(vals)) if len(set(map(repr, vals))) > 1 else vals[0]
        else:
            out[name] = _coerce_param(algorithm, name, value)
    return out


def search_space_size(params: dict[str, Any]) -> int:
    n = 1
    for v in params.values():
        if isinstance(v, list):
            n *= len(v)
    return n


def candidates(cfg: TrainingConfig) -> list[dict[str, Any]]:
    """The parameter sets to try: one (no search), the grid, or `n_iter` draws from it (seeded)."""
    keys = list(cfg.params)
    values = [v if isinstance(v, list) else [v] for v in cfg.params.values()]
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    if cfg.search == "random" and len(grid) > cfg.n_iter:
        rng = np.random.default_rng(cfg.seed)
        idx = sorted(rng.choice(len(grid), size=cfg.n_iter, replace=False).tolist())
        grid = [grid[i] for i in idx]
    return grid


def validate_config(frame: pd.DataFrame, raw: dict[str, Any]) -> TrainingConfig:
    """Check a launch config against the data; every refusal says what to change."""
    raw = dict(raw or {})
    target = str(raw.get("target") or "").strip()
    if not target:
        raise ValidationError("choose a target column (the column the model should predict)")
    if target not in frame.columns:
        raise ValidationError(
            f"the target column {target!r} is not in this dataset version; its columns are: {', '.join(map(str, frame.columns))}"
        )
    y = frame[target]
    if y.isna().all():
        raise ValidationError(f"the target column {target!r} is empty (all values missing); choose another target")
    if y.dropna().nunique() < 2:
        raise ValidationError(
            f"the target column {target!r} is constant ({y.dropna().iloc[0]!r} in every row): there is nothing to "
            "learn; choose another target or a dataset version where it varies"
        )
    task = str(raw.get("task") or suggest_task(y))
    if task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; choose classification or regression")
    if task == "regression" and (pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y)):
        raise ValidationError(
            f"regression needs a numeric target, but {target!r} holds text or categories "
            f"(e.g. {y.dropna().iloc[0]!r}); choose classification"
        )
    if task == "classification" and suggest_task(y) == "regression" and y.dropna().nunique() > 50:
        raise ValidationError(
            f"classification needs a target with a few classes, but {target!r} is a continuous number with "
            f"{y.dropna().nunique()} distinct values; choose regression"
        )
    if task == "classification":
        counts = y.dropna().value_counts()
        if counts.min() < 2:
            raise ValidationError(
                f"class {counts.idxmin()!r} of {target!r} has a single row; each class needs at least 2 rows "
                "(drop or merge rare classes)"
            )
    features = raw.get("features") or [c for c in frame.columns if c != target]
    features = [str(f) for f in features]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValidationError(f"feature column(s) not in this dataset version: {', '.join(missing)}")
    if target in features:
        raise ValidationError(f"the target {target!r} cannot also be a feature; remove it from the features")
    if not features:
        raise ValidationError("choose at least one feature column")
    all_nan = [f for f in features if frame[f].isna().all()]
    if all_nan:
        raise ValidationError(
            f"feature(s) {', '.join(all_nan)} have no values at all (every row missing); remove them from the features"
        )
    algorithm = str(raw.get("algorithm") or "")
    if algorithm not in ALGORITHMS:
        raise ValidationError(
            f"unknown algorithm {algorithm!r}; for {task} choose one of: {', '.join(algorithms_for(task))}"
        )
    if task not in ALGORITHMS[algorithm].tasks:
        raise ValidationError(
            f"{ALGORITHMS[algorithm].label} does not do {task}; choose one of: {', '.join(algorithms_for(task))}"
        )
    params = normalise_params(algorithm, raw.get("params"))
    search = str(raw.get("search") or ("grid" if search_space_size(params) > 1 else "none"))
    if search not in ("none", "grid", "random"):
        raise ValidationError(f"unknown search {search!r}; choose none, grid or random")
    size = search_space_size(params)
    if search == "none" and size > 1:
        search = "grid"
    try:
        n_iter = int(raw.get("n_iter") or 10)
    except (TypeError, ValueError):
        raise ValidationError(f"n_iter must be a whole number, got {raw.get('n_iter')!r}") from None
    if search == "grid" and size > MAX_SEARCH_COMBINATIONS:
        raise ValidationError(
            f"the grid has {size:,} combinations, more than the limit of {MAX_SEARCH_COMBINATIONS}; "
            "use fewer values per hyperparameter, or random search with at most "
            f"{MAX_SEARCH_COMBINATIONS} draws"
        )
    if search == "random" and not 1 <= n_iter <= MAX_SEARCH_COMBINATIONS:
        raise ValidationError(
            f"random search draws {n_iter} candidates; choose between 1 and the limit of {MAX_SEARCH_COMBINATIONS}"
        )
    split = str(raw.get("split") or "holdout")
    if split not in ("holdout", "cv"):
        raise ValidationError(f"unknown split {split!r}; choose holdout or cv")
    try:
        test_size = float(raw.get("test_size", 0.2))
        folds = int(raw.get("folds", 5))
        seed = int(raw.get("seed", 42))
    except (TypeError, ValueError):
        raise ValidationError("test_size must be a number, folds and seed whole numbers") from None
    if split == "holdout" and not 0.05 <= test_size <= 0.5:
        raise ValidationError(f"the test share must be between 0.05 and 0.5, got {test_size}")
    if split == "cv" and not 2 <= folds <= 20:
        raise ValidationError(f"k-fold CV needs between 2 and 20 folds, got {folds}")
    n = int(y.notna().sum())
    if n < 10:
        raise ValidationError(f"only {n} rows have a target value; training needs at least 10")
    if split == "cv" and task == "classification" and y.dropna().value_counts().min() < folds:
        raise ValidationError(
            f"the rarest class of {target!r} has {y.dropna().value_counts().min()} rows, fewer than the {folds} folds; "
            "use fewer folds or a holdout split"
        )
    return TrainingConfig(
        target=target,
        task=task,
        algorithm=algorithm,
        features=features,
        params=params,
        search=search,
        n_iter=n_iter,
        split=split,
        test_size=test_size,
        folds=folds,
        seed=seed,
    )


# --- schema of the model's inputs ------------------------------------------------------------


def column_kind(s: pd.Series) -> str:
    """The DESIGN.md REST type of a column: number, integer, category, boolean or string."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "integer"
    if pd.api.types.is_numeric_dtype(s):
        non_null = s.dropna()
        if (
            len(non_null)
            and bool(np.all(np.isclose(np.asarray(non_null, dtype=float) % 1, 0)))
            and s.isna().any()
            and str(s.dtype).startswith("float")
        ):
            return "integer"  # an integer column with missing values comes back from pandas as float
        return "number"
    non_null = s.dropna()
    if len(non_null) and set(non_null.unique()) <= {True, False}:
        return "boolean"
    n_unique = non_null.nunique()
    if (
        isinstance(s.dtype, pd.CategoricalDtype)
        or n_unique <= max(MAX_CATEGORIES, 1)
        and n_unique < max(2, len(non_null))
    ):
        return "category"
    return "string"


def infer_input_schema(X: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for c in X.columns:
        kind = column_kind(X[c])
        item: dict[str, Any] = {"name": str(c), "type": kind}
        if kind == "category":
            item["categories"] = sorted(map(str, X[c].dropna().unique()))
        out.append(item)
    return out


# --- the pipeline --------------------------------------------------------------------------------


def _numeric_and_categorical(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric, categorical = [], []
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric.append(c)
        else:
            categorical.append(c)
    return numeric, categorical


def prepare_features(X: pd.DataFrame) -> pd.DataFrame:
    """Raw records -> what the pipeline's ColumnTransformer expects (booleans and categories as text)."""
    X = X.copy()
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            X[c] = s.astype(object).where(s.notna(), np.nan).map(lambda v: v if v is np.nan or v is None else str(v))
    return X


def build_pipeline(X: pd.DataFrame, algorithm: str, task: str, params: dict[str, Any], seed: int):
    """ColumnTransformer (impute + scale numbers; impute + one-hot the rest) -> estimator, in one Pipeline."""
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = _numeric_and_categorical(X)
    transformers = []
    if numeric:
        transformers.append(
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)
        )
    if categorical:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    if algorithm not in ALGORITHMS:
        raise ValidationError(f"unknown algorithm {algorithm!r}")
    return Pipeline([("preprocess", pre), ("model", ALGORITHMS[algorithm].build(task, params, seed))])


# --- metrics --------------------------------------------------------------------------------------


def _positive_index(classes, preferred: str | None = None) -> int:
    """Index of the positive class of a binary classifier: `preferred` (the use case's ML canvas) when it is
    one of the classes, else the rule serving and monitoring use (1 / true / "yes" / "churn"... else the last)."""
    keys = [label_key(c) for c in classes]
    return keys.index(positive_label(keys, preferred)) if keys[0] != keys[1] else 1


def classification_metrics(y_true, y_pred, proba, classes, positive_class: str | None = None) -> dict[str, float]:
    """`positive_class`: the ML canvas's positive class (binary precision, recall, f1, AUC are about it)."""
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    binary = len(classes) == 2
    avg = "binary" if binary else "macro"
    pos, k = None, 1
    if binary:
        # The positive class by the one rule serving and monitoring use (the canvas's, else 1 / true / "yes" /
        # "churn"... else the last class), so a recall KPI means the same thing at the deploy gate and live.
        k = _positive_index(classes, positive_class)
        pos = classes[k]
    kw = {"average": avg, "zero_division": 0}
    if binary:
        kw["pos_label"] = pos
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, **kw)),
        "recall": float(recall_score(y_true, y_pred, **kw)),
        "f1": float(f1_score(y_true, y_pred, **kw)),
    }
    if proba is not None:
        try:
            if binary:
                out["roc_auc"] = float(roc_auc_score(np.asarray(y_true) == pos, proba[:, k]))
            else:
                out["roc_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr", labels=list(classes)))
        except ValueError:
            pass  # a fold with one class only: AUC undefined
        out["log_loss"] = float(log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=list(classes)))
    return out


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def _predict_proba(pipe, X):
    return pipe.predict_proba(X) if hasattr(pipe, "predict_proba") else None


def evaluate(pipe, X, y, task: str, positive_class: str | None = None) -> dict[str, float]:
    pred = pipe.predict(X)
    if task == "classification":
        classes = list(pipe.classes_)
        return classification_metrics(y, pred, _predict_proba(pipe, X), classes, positive_class)
    return regression_metrics(y, pred)


def primary_metric(task: str) -> str:
    return "roc_auc" if task == "classification" else "rmse"


# --- curves and plot data -------------------------------------------------------------------------


def _thin(xs, ys, n: int = 200) -> tuple[list[float], list[float]]:
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(xs) > n:
        idx = np.unique(np.linspace(0, len(xs) - 1, n).astype(int))
        xs, ys = xs[idx], ys[idx]
    return [round(float(v), 6) for v in xs], [round(float(v), 6) for v in ys]


def plot_data(
    pipe, X_test, y_test, task: str, y_pred=None, proba=None, positive_class: str | None = None
) -> dict[str, Any]:
    """What the run page plots (confusion matrix, ROC/PR, residuals, feature importance), as plain JSON.
    Binary curves are about `positive_class` (the ML canvas's) when it is one of the classes, else classes_[1]."""
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    out: dict[str, Any] = {"task": task}
    if y_pred is None:
        y_pred = pipe.predict(X_test)
    if task == "classification":
        classes = list(pipe.classes_)
        if proba is None:
            proba = _predict_proba(pipe, X_test)
        cm = confusion_matrix(y_test, y_pred, labels=classes)
        out["confusion_matrix"] = {"labels": [str(c) for c in classes], "matrix": cm.tolist()}
        if proba is not None and len(classes) == 2:
            keys = [label_key(c) for c in classes]
            k = keys.index(label_key(positive_class)) if positive_class and label_key(positive_class) in keys else 1
            truth = np.asarray(y_test) == classes[k]
            if truth.any() and (~truth).any():
                fpr, tpr, _ = roc_curve(truth, proba[:, k])
                prec, rec, _ = precision_recall_curve(truth, proba[:, k])
                out["roc"] = dict(zip(("fpr", "tpr"), _thin(fpr, tpr)))
                out["pr"] = dict(zip(("recall", "precision"), _thin(rec, prec)))
                out["positive_class"] = str(classes[k])
            # Scores of the positive class per bin, positives and negatives apart: the value of any threshold
            # (issue 20); "positive_class" says which class they are about.
            out["score_histogram"] = score_histogram(truth, proba[:, k])
        out.update(class_report(y_test, y_pred, proba, classes, positive_class))
    else:
        y_true = np.asarray(y_test, dtype=float)
        pred = np.asarray(y_pred, dtype=float)
        if len(y_true) > 1000:
            idx = np.random.default_rng(0).choice(len(y_true), 1000, replace=False)
            y_true, pred = y_true[idx], pred[idx]
        out["residuals"] = {
            "predicted": [round(float(v), 6) for v in pred],
            "residual": [round(float(v), 6) for v in (y_true - pred)],
        }
    out["feature_importance"] = feature_importance(pipe)
    return out


def class_report(y_true, y_pred, proba, classes, positive_class: str | None = None) -> dict[str, Any]:
    """Per-class metrics and curves of a classifier on the test split (issue 15), as plain JSON:
    - `class_counts`: rows of each class in the test split (what every metric is computed on);
    - `per_class`: precision, recall, f1 and support of each class;
    - `roc_curves` / `pr_curves`: binary, one curve about the positive class (as `roc`/`pr`); multiclass, one
      one-vs-rest curve per class, each with its area (ROC AUC; average precision for PR). A class with no
      positive or no negative row in the split has no curve (its area is undefined)."""
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        precision_recall_fscore_support,
        roc_auc_score,
        roc_curve,
    )

    y_true = np.asarray(y_true)
    classes = list(classes)
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    out: dict[str, Any] = {
        "class_counts": {str(c): int(n) for c, n in zip(classes, support)},
        "per_class": [
            {
                "label": str(c),
                "precision": round(float(p), 6),
                "recall": round(float(r), 6),
                "f1": round(float(f), 6),
                "support": int(n),
            }
            for c, p, r, f, n in zip(classes, prec, rec, f1, support)
        ],
        "roc_curves": [],
        "pr_curves": [],
    }
    if proba is None or len(classes) < 2:
        return out
    if len(classes) == 2:
        about = [_positive_index(classes, positive_class)]
    else:
        about = list(range(len(classes)))
    for k in about:
        truth = y_true == classes[k]
        if not truth.any() or truth.all():
            continue
        score = np.asarray(proba)[:, k]
        fpr, tpr, _ = roc_curve(truth, score)
        p, r, _ = precision_recall_curve(truth, score)
        x, y = _thin(fpr, tpr)
        out["roc_curves"].append(
            {"label": str(classes[k]), "fpr": x, "tpr": y, "auc": round(float(roc_auc_score(truth, score)), 6)}
        )
        x, y = _thin(r, p)
        out["pr_curves"].append(
            {
                "label": str(classes[k]),
                "recall": x,
                "precision": y,
                "average_precision": round(float(average_precision_score(truth, score)), 6),
                "prevalence": round(float(truth.mean()), 6),
            }
        )
    return out


def feature_importance(pipe, top: int = 25) -> list[dict[str, Any]]:
    model = pipe.named_steps["model"]
    try:
        names = list(pipe.named_steps["preprocess"].get_feature_names_out())
    except Exception:  # noqa: BLE001 - names are a nicety
        names = None
    values = None
    if hasattr(model, "feature_importances_"):
        values = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.asarray(model.coef_, dtype=float)
        values = np.abs(coef).mean(axis=0) if coef.ndim > 1 else np.abs(coef)
    if values is None:
        return []
    names = names if names is not None and len(names) == len(values) else [f"x{i}" for i in range(len(values))]
    order = np.argsort(-values)[:top]
    # the input column (or column_category) without the ColumnTransformer's "num__"/"cat__" prefix
    return [{"feature": plain_feature_name(names[i]), "importance": round(float(values[i]), 6)} for i in order]


def plain_feature_name(name: str) -> str:
    """A transformed feature's input column: "num__age" -> "age", "cat__plan_basic" stays "plan_basic"
    (only the ColumnTransformer's prefix is dropped)."""
    return str(name).split("__", 1)[1] if "__" in str(name) else str(name)


# Permutation importance: rows of the test split used (a sample beyond this) and shuffles per column.
PERMUTATION_MAX_ROWS = 2000
PERMUTATION_REPEATS = 3


def permutation_importances(pipe, X_test, y_test, task: str, seed: int = 0) -> list[dict[str, Any]]:
    """scikit-learn's permutation importance of each *input column* on the test split: how much the score
    (roc_auc for a binary classifier with probabilities, accuracy for others, r2 for regressors) drops when
    that column is shuffled. Names are the original columns (the pipeline is permuted before preprocessing).
    [] when it cannot be computed (a note is logged)."""
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.inspection import permutation_importance

    X, y = X_test, y_test
    if len(X) > PERMUTATION_MAX_ROWS:
        idx = np.random.default_rng(seed).choice(len(X), PERMUTATION_MAX_ROWS, replace=False)
        X, y = X.iloc[idx], y.iloc[idx]
    scoring = None
    if task == "classification" and hasattr(pipe, "predict_proba") and len(getattr(pipe, "classes_", [])) == 2:
        if len(set(np.asarray(y).tolist())) == 2:
            scoring = "roc_auc"
    try:
        r = permutation_importance(pipe, X, y, scoring=scoring, n_repeats=PERMUTATION_REPEATS, random_state=seed)
    except Exception as exc:  # noqa: BLE001 - importance is a nicety; the run still finishes
        log.info("permutation importance skipped: %s", exc)
        return []
    order = np.argsort(-r.importances_mean)
    return [
        {
            "feature": str(X.columns[i]),
            "importance": round(float(r.importances_mean[i]), 6),
            "std": round(float(r.importances_std[i]), 6),
        }
        for i in order
    ]


def staged_scores(pipe, X_train, y_train, X_test, y_test, task: str, max_points: int = 100) -> dict[str, list]:
    """Per-stage train/test score of a boosting model (log loss or RMSE), for the learning curve."""
    model = pipe.named_steps["model"]
    if not hasattr(model, "staged_predict"):
        return {}
    pre = pipe.named_steps["preprocess"]
    Xtr, Xte = pre.transform(X_train), pre.transform(X_test)
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.metrics import log_loss, mean_squared_error

    def curve(Xp, y):
        vals = []
        if task == "classification":
            for p in model.staged_predict_proba(Xp):
                vals.append(float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=list(model.classes_))))
        else:
            for p in model.staged_predict(Xp):
                vals.append(float(math.sqrt(mean_squared_error(y, p))))
        return vals

    tr, te = curve(Xtr, y_train), curve(Xte, y_test)
    stages = list(range(1, len(te) + 1))
    if len(stages) > max_points:
        idx = np.unique(np.linspace(0, len(stages) - 1, max_points).astype(int))
        stages, tr, te = [stages[i] for i in idx], [tr[i] for i in idx], [te[i] for i in idx]
    return {"metric": "log_loss" if task == "classification" else "rmse", "stage": stages, "train": tr, "test": te}


# --- training --------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    pipeline: Any
    config: TrainingConfig
    params: dict[str, Any]  # the chosen (scalar) hyperparameters
    test_metrics: dict[str, float]  # holdout test, or CV mean over folds
    train_metrics: dict[str, float]
    fold_metrics: list[dict[str, float]]  # per fold (CV) test metrics; empty for holdout
    search_results: list[dict[str, Any]]  # per candidate: params and mean validation score
    plots: dict[str, Any]
    input_schema: list[dict[str, Any]]
    duration_seconds: float
    n_train: int
    n_test: int
    extra: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[float, str], None]


def _noop_progress(_f: float, _m: str) -> None:
    return None


def _noop() -> None:
    return None


def _splitter(cfg: TrainingConfig, folds: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.model_selection import KFold, StratifiedKFold

    if cfg.task == "classification":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
    return KFold(n_splits=folds, shuffle=True, random_state=cfg.seed)


def _score(metrics: dict[str, float], task: str) -> float:
    key = primary_metric(task)
    if key not in metrics:
        key = "accuracy" if task == "classification" else "rmse"
    v = metrics[key]
    return -v if key in LOWER_IS_BETTER else v


# Native thread pools (OpenMP in hist gradient boosting, BLAS) are limited to one thread per fit: a
# worker runs several jobs side by side, and oversubscribed OpenMP spin-waits made a 3 s fit take 25 s
# on a busy 2-core machine. One thread also makes the float sums, hence "reproduce", deterministic.
TRAIN_THREADS = 1


def train(
    frame: pd.DataFrame,
    cfg: TrainingConfig,
    *,
    progress: Progress = _noop_progress,
    check_cancelled: Callable[[], None] = _noop,
    dask_scheduler: str | None = None,
    positive_class: str | None = None,
) -> TrainingResult:
    """Fit, evaluate and describe one run. `check_cancelled` is called between fits (it may raise).
    `positive_class`: the use case's ML canvas positive class, passed in by the caller; binary precision,
    recall, f1, AUC and the curves are about it when it is one of the classes (else the usual rule).

    With `dask_scheduler` (a Dask scheduler address, passed in by the job handler from MLOPS_DASK_SCHEDULER)
    the search's candidates run on that Dask cluster (`dask_exec.py`); the result is the same as locally.
    `extra` then says where it ran (`dask_scheduler`, `dask_workers`, `dask_workers_lost`)."""
    # threadpoolctl only around a fit
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=TRAIN_THREADS):
        return _train(
            frame,
            cfg,
            progress=progress,
            check_cancelled=check_cancelled,
            dask_scheduler=dask_scheduler,
            positive_class=positive_class,
        )


@dataclass
class SearchData:
    """What every candidate of a search needs (shipped once to each Dask worker)."""

    X: pd.DataFrame
    y: pd.Series
    splits: list[tuple[np.ndarray, np.ndarray]]
    algorithm: str
    task: str
    seed: int
    positive_class: str | None = None  # the ML canvas's (binary metrics are about it)


def fit_candidate(
    data: SearchData,
    cand: dict[str, Any],
    *,
    check_cancelled: Callable[[], None] = _noop,
    on_fold: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One candidate's mean validation score over the search folds, and the seconds it took. The same code
    runs locally and as a Dask task (module-level, so Dask workers import it), single-threaded either way."""
    # threadpoolctl only around a fit
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    scores = []
    with threadpool_limits(limits=TRAIN_THREADS):
        for i, (tr_idx, va_idx) in enumerate(data.splits):
            check_cancelled()
            pipe = build_pipeline(data.X, data.algorithm, data.task, cand, data.seed)
            pipe.fit(data.X.iloc[tr_idx], data.y.iloc[tr_idx])
            metrics = evaluate(pipe, data.X.iloc[va_idx], data.y.iloc[va_idx], data.task, data.positive_class)
            scores.append(_score(metrics, data.task))
            if on_fold is not None:
                on_fold(i + 1)
    return {"params": cand, "score": float(np.mean(scores)), "seconds": round(time.perf_counter() - started, 4)}


def _search_on_dask(
    address: str,
    data: SearchData,
    cands: list[dict[str, Any]],
    progress: Progress,
    check_cancelled: Callable[[], None],
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    from . import dask_exec

    progress(0.0, f"search: connecting to the Dask scheduler at {address}")
    results, info = dask_exec.map_candidates(
        address,
        fit_candidate,
        cands,
        data,
        on_done=lambda k, n: progress(0.6 * k / n, f"search: {k} of {n} candidates finished on Dask"),
        check_cancelled=check_cancelled,
    )
    extra.update(
        dask_scheduler=info.scheduler,
        dask_workers=info.n_workers,
        dask_workers_lost=info.workers_lost,
    )
    return results


def _train(
    frame: pd.DataFrame,
    cfg: TrainingConfig,
    *,
    progress: Progress,
    check_cancelled: Callable[[], None],
    dask_scheduler: str | None = None,
    positive_class: str | None = None,
) -> TrainingResult:
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    data = frame[frame[cfg.target].notna()]
    X = prepare_features(data[cfg.features])
    y = data[cfg.target]
    if cfg.task == "classification" and (y.dtype == object or pd.api.types.is_bool_dtype(y)):
        y = y.astype(str)
    input_schema = infer_input_schema(data[cfg.features])
    cands = candidates(cfg)
    stratify = y if cfg.task == "classification" else None

    if cfg.split == "holdout":
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=cfg.test_size, random_state=cfg.seed, stratify=stratify
        )
    else:
        X_tr, y_tr, X_te, y_te = X, y, None, None

    # 1) choose hyperparameters (only when there is more than one candidate): k-fold on the training part.
    search_results: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    best = cands[0]
    search_started = time.perf_counter()
    if len(cands) > 1:
        search_folds = cfg.folds if cfg.split == "cv" else 3
        splits = list(_splitter(cfg, search_folds).split(X_tr, y_tr))
        data = SearchData(X_tr, y_tr, splits, cfg.algorithm, cfg.task, cfg.seed, positive_class or None)
        if dask_scheduler:
            search_results = _search_on_dask(dask_scheduler, data, cands, progress, check_cancelled, extra)
        else:
            total = len(cands) * len(splits)
            for cand in cands:
                search_results.append(
                    fit_candidate(
                        data,
                        cand,
                        check_cancelled=check_cancelled,
                        on_fold=lambda done, n=len(search_results): progress(
                            0.6 * (n * len(splits) + done) / total, f"search: candidate {n + 1} of {len(cands)}"
                        ),
                    )
                )
        best_score = -math.inf
        for r in search_results:  # the first best in candidate order, locally and on Dask alike
            if r["score"] > best_score:
                best_score, best = r["score"], r["params"]
    search_seconds = time.perf_counter() - search_started
    base = 0.6 if len(cands) > 1 else 0.0

    # 2) evaluate the chosen hyperparameters.
    fold_metrics: list[dict[str, float]] = []
    if cfg.split == "holdout":
        check_cancelled()
        progress(base + 0.05, "fitting the pipeline")
        pipe = build_pipeline(X_tr, cfg.algorithm, cfg.task, best, cfg.seed)
        pipe.fit(X_tr, y_tr)
        check_cancelled()
        progress(base + 0.3 * (1 - base), "evaluating")
        test_metrics = evaluate(pipe, X_te, y_te, cfg.task, positive_class)
        train_metrics = evaluate(pipe, X_tr, y_tr, cfg.task, positive_class)
        plots = plot_data(pipe, X_te, y_te, cfg.task, positive_class=positive_class)
        plots["staged"] = staged_scores(pipe, X_tr, y_tr, X_te, y_te, cfg.task)
        progress(base + 0.4 * (1 - base), "permutation importance on the test split")
        plots["permutation_importance"] = permutation_importances(pipe, X_te, y_te, cfg.task, cfg.seed)
        n_train, n_test = len(X_tr), len(X_te)
    else:
        splits = list(_splitter(cfg, cfg.folds).split(X, y))
        train_folds = []
        oof_pred = np.empty(len(y), dtype=np.asarray(y).dtype if cfg.task == "classification" else float)
        oof_proba = None
        for i, (tr_idx, te_idx) in enumerate(splits):
            check_cancelled()
            progress(base + (1 - base) * 0.8 * i / len(splits), f"fold {i + 1} of {len(splits)}")
            pipe = build_pipeline(X, cfg.algorithm, cfg.task, best, cfg.seed)
            pipe.fit(X.iloc[tr_idx], y.iloc[tr_idx])
            fold_metrics.append(evaluate(pipe, X.iloc[te_idx], y.iloc[te_idx], cfg.task, positive_class))
            train_folds.append(evaluate(pipe, X.iloc[tr_idx], y.iloc[tr_idx], cfg.task, positive_class))
            oof_pred[te_idx] = pipe.predict(X.iloc[te_idx])
            if cfg.task == "classification":
                p = _predict_proba(pipe, X.iloc[te_idx])
                if p is not None:
                    if oof_proba is None:
                        oof_proba = np.zeros((len(y), p.shape[1]))
                    oof_proba[te_idx] = p
        keys = set.intersection(*(set(m) for m in fold_metrics))
        test_metrics = {k: float(np.mean([m[k] for m in fold_metrics])) for k in sorted(keys)}
        tkeys = set.intersection(*(set(m) for m in train_folds))
        train_metrics = {k: float(np.mean([m[k] for m in train_folds])) for k in sorted(tkeys)}
        check_cancelled()
        progress(base + (1 - base) * 0.85, "refitting on all rows")
        pipe = build_pipeline(X, cfg.algorithm, cfg.task, best, cfg.seed)
        pipe.fit(X, y)
        # Plots from out-of-fold predictions: every row predicted by a model that did not see it.
        plots = plot_data(
            pipe,
            X,
            y,
            cfg.task,
            y_pred=oof_pred if cfg.task == "classification" else oof_pred.astype(float),
            proba=oof_proba,
            positive_class=positive_class,
        )
        plots["staged"] = {}
        n_train, n_test = len(X), len(X)
    progress(0.97, "saving")
    extra["search_seconds"] = round(search_seconds, 3) if len(cands) > 1 else 0.0
    return TrainingResult(
        pipeline=pipe,
        config=cfg,
        params=dict(best),
        test_metrics=test_metrics,
        train_metrics=train_metrics,
        fold_metrics=fold_metrics,
        search_results=search_results,
        plots=plots,
        input_schema=input_schema,
        duration_seconds=time.perf_counter() - started,
        n_train=n_train,
        n_test=n_test,
        extra=extra,
    )


def warm_up() -> None:
    """Fit, evaluate, describe and serialise a tiny model once, so that the process (the worker's fork
    server, whose job processes inherit it) has paid the one-off costs of a first training: lazy imports
    and caches in pandas, scikit-learn, threadpoolctl and skops (~0.1-0.2 s of CPU per job otherwise).
    Single-threaded like every fit here (TRAIN_THREADS), so no thread pool is left behind to fork."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, size=n),
            "c": rng.choice(["a", "b", "c"], size=n),
            "flag": rng.random(n) < 0.5,
            "y": np.tile([0, 1], n // 2),
        }
    )
    frame.loc[0, "x"] = np.nan
    cfg = validate_config(
        frame,
        {
            "target": "y",
            "algorithm": "random_forest",
            "params": {"n_estimators": 2},
            "split": "holdout",
            "test_size": 0.25,
            "seed": 0,
        },
    )
    dump_model(train(frame, cfg).pipeline)


# --- reproducibility facts -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the code that trains (empty when not in a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, fixed arguments, read-only
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("scikit-learn", "numpy", "pandas", "scipy", "skops"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
