"""Value arithmetic and threshold choice against hand-computed confusion matrices."""

import math

import pytest

from mlops_core.errors import ValidationError
from mlops_core.ml import value as v

CHURN = v.ValueModel(
    problem_type="binary",
    currency="EUR",
    period="month",
    volume_per_period=1000,
    outcome_values={"tp": 100, "fp": -10, "fn": -200, "tn": 0},
)


def test_expected_value_by_hand():
    # 30*100 - 20*10 - 10*200 + 40*0 = 800 over 100 records -> 8 per record -> 8000 per month
    res = v.expected_value(CHURN, v.Confusion(tp=30, fp=20, fn=10, tn=40))
    assert res.status == "complete"
    assert res.value_per_record == pytest.approx(8.0)
    assert res.value_per_period == pytest.approx(8000.0)
    assert res.describe() == "8,000 EUR per month"


def test_confusion_from_sklearn_matrix_picks_the_positive_class():
    # rows = truth, columns = prediction; labels ["0", "1"]
    conf = v.confusion_from_matrix(["0", "1"], [[40, 20], [10, 30]], "1")
    assert conf.as_dict() == {"tp": 30, "fp": 20, "fn": 10, "tn": 40}
    flipped = v.confusion_from_matrix(["0", "1"], [[40, 20], [10, 30]], "0")
    assert flipped.as_dict() == {"tp": 40, "fp": 10, "fn": 20, "tn": 30}


def test_missing_cells_make_the_value_incomplete_and_are_named():
    m = v.ValueModel(currency="EUR", volume_per_period=None, outcome_values={"tp": 1, "fp": None, "fn": -2, "tn": None})
    res = v.expected_value(m, v.Confusion(1, 1, 1, 1))
    assert res.value_per_period is None and res.status == "incomplete"
    assert res.missing == ("FP", "TN", "volume per month")
    assert res.describe() == "incomplete: missing FP, TN, volume per month"


def test_regression_value_is_cost_per_unit_times_mae():
    m = v.check_value_model(
        problem_type="regression", currency="usd", period="week", volume_per_period="100", cost_per_unit_error=2
    )
    assert v.regression_value(m, 5.0).value_per_period == pytest.approx(-1000.0)
    assert v.expected_value(m, v.Confusion(1, 1, 1, 1)).value_per_period is None


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValidationError, match="regression use case has no TP/FP/FN/TN"):
        v.check_value_model(problem_type="regression", currency="EUR", period="month", outcome_values={"tp": 1})
    with pytest.raises(ValidationError, match="currency"):
        v.check_value_model(problem_type="binary", currency="€", period="month")
    with pytest.raises(ValidationError, match="value of a FN must be a number"):
        v.check_value_model(problem_type="binary", currency="EUR", period="month", outcome_values={"fn": "lots"})


HIST_POS = [0.95, 0.85, 0.65, 0.35]
HIST_NEG = [0.75, 0.45, 0.25, 0.15, 0.05, 0.05]
TEN = v.ValueModel(currency="EUR", volume_per_period=10, outcome_values={"tp": 100, "fp": -10, "fn": -200, "tn": 0})


def _hist():
    truth = [True] * 4 + [False] * 6
    return v.score_histogram(truth, HIST_POS + HIST_NEG, bins=10)


def test_threshold_maximises_value_by_hand():
    # t=0.1: tp4 fp4 -> 360; t=0.2: fp3 -> 370; t=0.3: fp2 -> 380 (best);
    # t=0.4: tp3 fn1 fp2 -> 80; t=0.5 (default): tp3 fn1 fp1 -> 90
    choice = v.choose_threshold(TEN, _hist())
    assert choice.threshold == pytest.approx(0.3)
    assert choice.confusion.as_dict() == {"tp": 4, "fp": 2, "fn": 0, "tn": 4}
    assert choice.value.value_per_period == pytest.approx(380.0)
    assert choice.default_value.value_per_period == pytest.approx(90.0)
    # the histogram agrees with counting records one by one
    assert v.confusion_at([True] * 4 + [False] * 6, HIST_POS + HIST_NEG, 0.3) == choice.confusion


def test_threshold_leaving_no_positive_is_refused():
    with pytest.raises(ValidationError, match="never predict the positive class"):
        v.check_threshold(_hist(), 0.99)
    assert v.check_threshold(_hist(), 0.9).as_dict() == {"tp": 1, "fp": 0, "fn": 3, "tn": 6}
    nothing = v.score_histogram([True, False], [0.0, 0.0], bins=10)
    with pytest.raises(ValidationError, match="no threshold is possible"):
        v.choose_threshold(TEN, nothing)
    incomplete = v.ValueModel(volume_per_period=10, outcome_values={"tp": 1})
    with pytest.raises(ValidationError, match="missing FP, FN, TN"):
        v.choose_threshold(incomplete, _hist())


def test_estimated_value_from_calibrated_scores_with_band():
    # scores 0.9 (predicted yes) and 0.2 (no): tp .9 fp .1 fn .2 tn .8 -> 90 - 1 - 40 = 49 over 2 -> 24.5 x 10
    res = v.estimated_value(TEN, [0.9, 0.2])
    assert res.value_per_period == pytest.approx(245.0)
    var = 0.9 * 0.1 * 110**2 + 0.2 * 0.8 * 200**2
    half = 1.96 * math.sqrt(var) * 10 / 2
    assert res.low == pytest.approx(245.0 - half) and res.high == pytest.approx(245.0 + half)


def test_kpi_suggestions_follow_the_costs():
    fn_dear = v.ValueModel(outcome_values={"tp": 0, "fp": -10, "fn": -100, "tn": 0}, volume_per_period=1)
    assert v.suggest_kpis(fn_dear)[0]["metric"] == "recall"
    assert "10x" in v.suggest_kpis(fn_dear)[0]["why"]
    fp_dear = v.ValueModel(outcome_values={"tp": 0, "fp": -100, "fn": -10, "tn": 0}, volume_per_period=1)
    assert v.suggest_kpis(fp_dear)[0]["metric"] == "precision"
    even = v.ValueModel(outcome_values={"tp": 0, "fp": -10, "fn": -12, "tn": 0}, volume_per_period=1)
    assert v.suggest_kpis(even)[0]["metric"] == "f1"
    assert v.suggest_kpis(v.ValueModel(problem_type="regression"))[0]["metric"] == "mae"


def test_scoring_honours_a_stored_threshold():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mlops_core.ml.scoring import predict_scored

    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    model = LogisticRegression().fit(X, [0, 0, 0, 1, 1, 1])
    own, scores = predict_scored(model, X)
    assert list(own) == [0, 0, 0, 1, 1, 1]
    low, same = predict_scored(model, X, threshold=float(scores[1]))  # positive from the 2nd record up
    assert list(low) == [0, 1, 1, 1, 1, 1] and list(same) == list(scores)
    high, _ = predict_scored(model, X, threshold=float(scores[5]))
    assert list(high) == [0, 0, 0, 0, 0, 1]


def test_the_canvas_positive_class_wins_over_the_shared_rule():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mlops_core.ml.scoring import positive_index, positive_label
    from mlops_core.monitoring.figures import performance_metrics

    assert positive_label(["0", "1"]) == "1" and positive_label(["0", "1"], "0") == "0"
    assert positive_label(["0", "1"], "maybe") == "1"  # not a class: the rule stands
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    assert positive_index(model) == 1 and positive_index(model, "0") == 0
    labelled = [(1, 1, 0.0), (1, 0, 0.0), (0, 0, 0.0), (0, 0, 0.0)]  # (prediction, label, latency)
    assert performance_metrics("classification", labelled)["recall"] == 1.0  # positive 1: 1 of 1 found
    assert performance_metrics("classification", labelled, "0")["recall"] == pytest.approx(2 / 3)
