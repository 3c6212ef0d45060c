"""The algorithms a no-code run can train: one `Algorithm` object each, registered once in ALGORITHMS.

To add an algorithm, add one `Algorithm(...)` to the tuple at the end of this file: its key, its label
for the form, the tasks it does, its hyperparameters (type, default, bounds: the form, the config
validation and the grid search all read them from here) and `estimator`, which builds the unfitted
scikit-learn estimator. `training.build_pipeline` puts that estimator behind the shared preprocessing.

scikit-learn is imported inside the builders: pages import this module to draw the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ValidationError

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter: its type, default, bounds or choices, and a sentence for the form."""

    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    help: str = ""


# (task, normalised params, seed) -> an unfitted scikit-learn estimator
EstimatorBuilder = Callable[[str, dict[str, Any], int], Any]


@dataclass(frozen=True)
class Algorithm:
    key: str
    label: str
    tasks: tuple[str, ...]
    params: dict[str, ParamSpec]
    estimator: EstimatorBuilder

    def defaults(self) -> dict[str, Any]:
        return {k: s.default for k, s in self.params.items()}

    def build(self, task: str, params: dict[str, Any], seed: int):
        """The unfitted estimator for `task` with these (scalar, already validated) hyperparameters."""
        if task not in self.tasks:
            raise ValidationError(f"{self.label} does not do {task}; choose one of: {', '.join(algorithms_for(task))}")
        return self.estimator(task, dict(params), seed)


# --- the estimators ------------------------------------------------------------------------------


def _logistic_regression(task: str, p: dict[str, Any], seed: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=seed)


def _ridge(task: str, p: dict[str, Any], seed: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.linear_model import Ridge

    return Ridge(alpha=p["alpha"], random_state=seed)


def _random_forest(task: str, p: dict[str, Any], seed: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return cls(
        n_estimators=p["n_estimators"],
        max_depth=p["max_depth"],
        min_samples_leaf=p["min_samples_leaf"],
        random_state=seed,
        n_jobs=1,
    )


def _gradient_boosting(task: str, p: dict[str, Any], seed: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor
    return cls(
        n_estimators=p["n_estimators"], learning_rate=p["learning_rate"], max_depth=p["max_depth"], random_state=seed
    )


def _hist_gradient_boosting(task: str, p: dict[str, Any], seed: int):
    # scikit-learn is heavy: loaded only when a model is built or scored
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return cls(
        max_iter=p["max_iter"],
        learning_rate=p["learning_rate"],
        max_leaf_nodes=p["max_leaf_nodes"],
        l2_regularization=p["l2_regularization"],
        random_state=seed,
        early_stopping=False,
    )


# --- the registry (in the order the form lists them) ---------------------------------------------------

ALGORITHMS: dict[str, Algorithm] = {
    a.key: a
    for a in (
        Algorithm(
            "logistic_regression",
            "Logistic regression",
            ("classification",),
            {
                "C": ParamSpec(float, 1.0, 1e-6, 1e6, help="inverse regularisation strength"),
                "max_iter": ParamSpec(int, 1000, 10, 100_000),
            },
            _logistic_regression,
        ),
        Algorithm(
            "linear_regression",
            "Linear regression (ridge)",
            ("regression",),
            {"alpha": ParamSpec(float, 1.0, 0.0, 1e6, help="L2 regularisation; 0 is ordinary least squares")},
            _ridge,
        ),
        Algorithm(
            "random_forest",
            "Random forest",
            TASKS,
            {
                "n_estimators": ParamSpec(int, 200, 1, 5000),
                "max_depth": ParamSpec(int, None, 1, 200, nullable=True, help="empty: grow until pure"),
                "min_samples_leaf": ParamSpec(int, 1, 1, 10_000),
            },
            _random_forest,
        ),
        Algorithm(
            "gradient_boosting",
            "Gradient boosting",
            TASKS,
            {
                "n_estimators": ParamSpec(int, 100, 1, 5000),
                "learning_rate": ParamSpec(float, 0.1, 1e-4, 1.0),
                "max_depth": ParamSpec(int, 3, 1, 50),
            },
            _gradient_boosting,
        ),
        Algorithm(
            "hist_gradient_boosting",
            "Histogram gradient boosting",
            TASKS,
            {
                "max_iter": ParamSpec(int, 100, 1, 5000),
                "learning_rate": ParamSpec(float, 0.1, 1e-4, 1.0),
                "max_leaf_nodes": ParamSpec(int, 31, 2, 4096),
                "l2_regularization": ParamSpec(float, 0.0, 0.0, 1e6),
            },
            _hist_gradient_boosting,
        ),
    )
}


def algorithms_for(task: str) -> list[str]:
    return [k for k, a in ALGORITHMS.items() if task in a.tasks]


def default_params(algorithm: str) -> dict[str, Any]:
    return ALGORITHMS[algorithm].defaults()
