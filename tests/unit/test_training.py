"""No-code training without a database: every algorithm fits, saves with skops and loads back; bad
configurations are refused with a sentence that says what to change."""

import numpy as np
import pandas as pd
import pytest

from mlops_core.ml import algorithms, persistence, training
from mlops_core.demo.customers import make_customers
from mlops_core.errors import ValidationError


@pytest.fixture(scope="module")
def frame():
    df = make_customers(200, seed=5)
    df["spend"] = df["monthly_charges"] * 3 + np.random.default_rng(0).normal(0, 1, len(df))
    return df


SMALL = {
    "random_forest": {"n_estimators": 5},
    "gradient_boosting": {"n_estimators": 5},
    "hist_gradient_boosting": {"max_iter": 5},
}


TARGETS = {"classification": "churned", "regression": "spend"}
# Only the pairs that exist (logistic regression does not regress): no skipped cases, which CI refuses.
PAIRS = [
    (task, TARGETS[task], name)
    for name, algo in algorithms.ALGORITHMS.items()
    for task in TARGETS
    if task in algo.tasks
]


@pytest.mark.parametrize("task,target,algorithm", PAIRS)
def test_every_algorithm_round_trips_through_skops_and_predicts_the_same(frame, task, target, algorithm):
    features = [c for c in frame.columns if c not in ("churned", "spend")]
    cfg = training.validate_config(
        frame,
        {
            "target": target,
            "task": task,
            "algorithm": algorithm,
            "features": features,
            "params": SMALL.get(algorithm, {}),
        },
    )
    result = training.train(frame, cfg)
    loaded = persistence.load_model_bytes(persistence.dump_model(result.pipeline))
    raw = frame[features].head(20)
    np.testing.assert_array_equal(loaded.predict(raw), result.pipeline.predict(raw))
    expected = training.CLASSIFICATION_METRICS if task == "classification" else training.REGRESSION_METRICS
    assert set(expected) <= set(result.test_metrics)


def test_input_schema_uses_the_rest_type_words(frame):
    schema = {
        c["name"]: c
        for c in training.infer_input_schema(frame[["tenure_months", "monthly_charges", "contract", "senior"]])
    }
    assert schema["tenure_months"]["type"] == "integer" and schema["monthly_charges"]["type"] == "number"
    assert schema["contract"]["type"] == "category" and "two-year" in schema["contract"]["categories"]
    assert schema["senior"]["type"] in ("boolean", "integer")


def test_the_task_is_suggested_from_the_target(frame):
    assert training.suggest_task(frame["churned"]) == "classification"
    assert training.suggest_task(frame["spend"]) == "regression"


def test_a_model_file_with_foreign_types_is_refused_by_name():
    import skops.io as sio

    data = sio.dumps({"x": pd.DataFrame({"a": [1]}).index})
    with pytest.raises(ValidationError, match="does not load: pandas"):
        persistence.load_model_bytes(data)


def _cfg(frame, **kw):
    return training.validate_config(frame, {"target": "churned", "algorithm": "random_forest", **kw})


def test_a_missing_target_column_is_refused_with_the_columns_listed(frame):
    with pytest.raises(ValidationError, match="'label' is not in this dataset version; its columns are: .*churned"):
        _cfg(frame, target="label")


def test_a_constant_target_is_refused(frame):
    with pytest.raises(ValidationError, match="is constant"):
        _cfg(frame.assign(churned=1))


def test_a_task_that_does_not_fit_the_target_is_refused(frame):
    with pytest.raises(ValidationError, match="regression needs a numeric target.*choose classification"):
        _cfg(frame, target="contract", task="regression")
    with pytest.raises(ValidationError, match="continuous number.*choose regression"):
        _cfg(frame, target="spend", task="classification")


def test_an_all_missing_feature_is_refused(frame):
    with pytest.raises(ValidationError, match="empty_col have no values"):
        _cfg(frame.assign(empty_col=np.nan))


def test_a_ten_thousand_combination_grid_is_refused_with_the_count_and_the_limit(frame):
    params = {"n_estimators": list(range(1, 101)), "min_samples_leaf": list(range(1, 101))}
    with pytest.raises(ValidationError, match="10,000 combinations, more than the limit of 200"):
        _cfg(frame, params=params)


def test_a_hyperparameter_of_the_wrong_type_is_refused(frame):
    with pytest.raises(ValidationError, match="n_estimators of random_forest must be an integer, got 'many'"):
        _cfg(frame, params={"n_estimators": "many"})
    with pytest.raises(ValidationError, match="must be a whole number"):
        _cfg(frame, params={"n_estimators": 2.5})
    with pytest.raises(ValidationError, match="has no hyperparameter depth"):
        _cfg(frame, params={"depth": 3})


def test_a_small_grid_search_picks_one_candidate_and_reports_all(frame):
    cfg = _cfg(frame, params={"n_estimators": [3, 6], "max_depth": [2, 4]})
    assert cfg.search == "grid" and len(training.candidates(cfg)) == 4
    result = training.train(frame, cfg)
    assert len(result.search_results) == 4 and result.params in [r["params"] for r in result.search_results]
    rnd = _cfg(frame, params={"n_estimators": [3, 6, 9], "max_depth": [2, 4]}, search="random", n_iter=3)
    assert len(training.candidates(rnd)) == 3


def test_the_same_config_and_seed_give_the_same_metrics(frame):
    cfg = _cfg(frame, params={"n_estimators": 5}, seed=11)
    assert training.train(frame, cfg).test_metrics == training.train(frame, cfg).test_metrics


def test_binary_metrics_score_the_same_positive_class_as_serving_and_monitoring():
    """Labels "churn"/"stay": sklearn sorts "churn" first, but it is the positive class for precision and
    recall — the class serving logs the score of and monitoring computes live recall for."""
    import numpy as np
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    from mlops_core.ml.scoring import label_key, positive_label
    from mlops_core.ml.training import classification_metrics

    classes = np.array(["churn", "stay"])
    y_true = np.array(["churn", "churn", "churn", "stay", "stay", "stay", "stay", "stay"])
    y_pred = np.array(["churn", "stay", "stay", "stay", "stay", "stay", "churn", "stay"])
    p_churn = np.array([0.9, 0.4, 0.3, 0.2, 0.1, 0.35, 0.6, 0.05])
    proba = np.column_stack([p_churn, 1 - p_churn])
    m = classification_metrics(y_true, y_pred, proba, classes)
    assert positive_label([label_key(c) for c in classes]) == "churn"
    assert m["recall"] == recall_score(y_true, y_pred, pos_label="churn") == 1 / 3
    assert m["precision"] == precision_score(y_true, y_pred, pos_label="churn") == 0.5
    assert m["roc_auc"] == roc_auc_score(y_true == "churn", p_churn)


def test_permutation_importance_names_original_columns_and_ranks_the_signal_first():
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame(
        {
            "signal": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "plan": rng.choice(["basic", "plus"], n),
        }
    )
    df["y"] = (df["signal"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    cfg = training.validate_config(
        df, {"algorithm": "logistic_regression", "target": "y", "params": {}, "split": "holdout", "seed": 1}
    )
    result = training.train(df, cfg)
    pi = result.plots["permutation_importance"]
    assert {p["feature"] for p in pi} == {"signal", "noise", "plan"}  # no num__/cat__ prefixes
    assert pi[0]["feature"] == "signal" and pi[0]["importance"] > 0.2
    assert all(abs(p["importance"]) < 0.05 for p in pi[1:]) and all(p["std"] >= 0 for p in pi)
    assert training.plain_feature_name("num__age") == "age" and training.plain_feature_name("age") == "age"
