"""Per-class metrics and per-class ROC / PR curves of a classifier (issue 15), on tiny synthetic splits whose
answers are worked out by hand, and through a real pipeline's plot data."""

import numpy as np
import pandas as pd
import pytest

from mlops_core.ml import training
from mlops_core.models.experiments import PlotDataPublic


def near(x):
    return pytest.approx(x, abs=1e-6)  # stored rounded to 6 decimals


def _by_label(items):
    return {i["label"]: i for i in items}


def test_multiclass_per_class_metrics_and_one_vs_rest_curves_match_the_hand_computed_answer():
    y_true = ["a", "a", "b", "b", "c", "c"]
    y_pred = ["a", "b", "b", "b", "c", "a"]
    # columns a, b, c. a's rows score highest on a (AUC 1); on b, positives 0.6 and 0.2 beat 4 + 1 of the
    # 8 (positive, negative) pairs (AUC 5/8); c's rows score lowest on c (AUC 0).
    proba = np.array(
        [
            [0.9, 0.5, 0.9],
            [0.8, 0.1, 0.8],
            [0.1, 0.6, 0.7],
            [0.2, 0.2, 0.6],
            [0.3, 0.4, 0.1],
            [0.4, 0.3, 0.2],
        ]
    )
    out = training.class_report(y_true, y_pred, proba, ["a", "b", "c"])
    assert out["class_counts"] == {"a": 2, "b": 2, "c": 2}
    per = _by_label(out["per_class"])
    assert per["a"]["precision"] == near(1 / 2) and per["a"]["recall"] == near(1 / 2)
    assert per["b"]["precision"] == near(2 / 3) and per["b"]["recall"] == near(1.0)
    assert per["b"]["f1"] == near(0.8)
    assert per["c"]["precision"] == near(1.0) and per["c"]["recall"] == near(1 / 2)
    assert [p["support"] for p in out["per_class"]] == [2, 2, 2]
    roc = _by_label(out["roc_curves"])
    assert list(roc) == ["a", "b", "c"]  # one vs rest: one curve per class
    assert roc["a"]["auc"] == near(1.0)
    assert roc["b"]["auc"] == near(5 / 8)
    assert roc["c"]["auc"] == near(0.0)
    assert roc["a"]["fpr"][0] == 0 and roc["a"]["tpr"][-1] == 1  # a curve from (0, 0) to (1, 1)
    pr = _by_label(out["pr_curves"])
    assert pr["a"]["average_precision"] == near(1.0)
    # c's positives rank 5th and 6th of 6: precision 1/5 at the first, 2/6 at the second; AP = (1/5 + 1/3) / 2
    assert pr["c"]["average_precision"] == near((1 / 5 + 1 / 3) / 2)
    assert pr["b"]["prevalence"] == near(1 / 3)


def test_binary_gives_one_curve_about_the_positive_class_and_a_class_absent_from_the_split_has_none():
    y_true = ["no", "no", "no", "yes", "yes"]
    y_pred = ["no", "no", "yes", "yes", "no"]
    p_yes = np.array([0.1, 0.2, 0.7, 0.8, 0.4])
    proba = np.column_stack([1 - p_yes, p_yes])
    out = training.class_report(y_true, y_pred, proba, ["no", "yes"], positive_class="yes")
    assert [c["label"] for c in out["roc_curves"]] == ["yes"] and [c["label"] for c in out["pr_curves"]] == ["yes"]
    # positives 0.8, 0.4 against negatives 0.1, 0.2, 0.7: 3 + 2 of 6 pairs
    assert out["roc_curves"][0]["auc"] == near(5 / 6)
    assert out["class_counts"] == {"no": 3, "yes": 2}
    per = _by_label(out["per_class"])
    assert per["yes"]["precision"] == near(1 / 2) and per["yes"]["recall"] == near(1 / 2)
    assert per["no"]["recall"] == near(2 / 3)
    # the canvas's positive class decides which class the curve is about
    flipped = training.class_report(y_true, y_pred, proba, ["no", "yes"], positive_class="no")
    assert [c["label"] for c in flipped["roc_curves"]] == ["no"]
    assert flipped["roc_curves"][0]["auc"] == near(5 / 6)  # ROC AUC is symmetric
    # a class the model knows but the test split lacks: support 0, no curve (its area is undefined)
    three = training.class_report(
        ["a", "a", "b"], ["a", "b", "b"], np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1]]), ["a", "b", "c"]
    )
    assert three["class_counts"]["c"] == 0 and [c["label"] for c in three["roc_curves"]] == ["a", "b"]
    # no probabilities (a model without predict_proba): the table, no curves
    plain = training.class_report(y_true, y_pred, None, ["no", "yes"])
    assert plain["per_class"] and plain["roc_curves"] == [] and plain["pr_curves"] == []


def test_a_trained_pipeline_stores_them_with_the_plots_and_names_features_without_prefixes():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "plan": rng.choice(["basic", "pro"], size=n),
            "noise": rng.normal(size=n),
        }
    )
    frame["kind"] = np.where(frame["x"] > 0.5, "high", np.where(frame["x"] < -0.5, "low", "mid"))
    cfg = training.validate_config(
        frame,
        {"target": "kind", "task": "classification", "algorithm": "random_forest", "params": {"n_estimators": 10}},
    )
    result = training.train(frame, cfg)
    plots = PlotDataPublic.model_validate(result.plots | {"n_test": result.n_test})
    assert sum(plots.class_counts.values()) == result.n_test
    assert {c.label for c in plots.per_class} == {"high", "low", "mid"}
    assert {c.label for c in plots.roc_curves} == {"high", "low", "mid"}
    assert all(c.auc is not None and c.auc > 0.9 for c in plots.roc_curves)  # x decides the class
    names = [f.feature for f in plots.feature_importance]
    assert names and not any(n.startswith(("num__", "cat__")) for n in names)
    assert "x" in names


def test_plot_data_of_a_run_trained_before_keeps_working_and_drops_the_old_prefixes():
    old = PlotDataPublic.model_validate(
        {
            "task": "classification",
            "feature_importance": [
                {"feature": "num__age", "importance": 0.5},
                {"feature": "cat__plan_basic", "importance": 0.1},
            ],
        }
    )
    assert [f.feature for f in old.feature_importance] == ["age", "plan_basic"]
    assert old.per_class == [] and old.class_counts == {} and old.roc_curves == []
