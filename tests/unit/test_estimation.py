"""Estimators of performance without labels (CBPE, DLE) on synthetic data where the truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlops_core.monitoring.estimation import (
    CBPE,
    DLE,
    EstimationUnavailable,
    estimate_classification,
    estimate_regression,
)


def _binary(n, rng, shift=0.0, miscalibrate=False):
    """A feature x, true P(y=1|x) = sigmoid(2x - 1); the model's score is that probability (or a
    miscalibrated version of it). `shift` moves the inputs (covariate shift: P(y|x) unchanged)."""
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(2 * x - 1)))
    y = (rng.random(n) < p).astype(int)
    score = p**3 if miscalibrate else p
    return score, y


def _realized(score, y, thr=0.5):
    pred = (score >= thr).astype(int)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, score),
    }


@pytest.mark.parametrize("shift", [0.0, -1.0, 1.0])
@pytest.mark.parametrize("miscalibrate", [False, True])
def test_cbpe_binary_tracks_the_realized_metrics_with_and_without_shift(shift, miscalibrate):
    rng = np.random.default_rng(7)
    ref_s, ref_y = _binary(20_000, rng, miscalibrate=miscalibrate)
    cbpe = CBPE.fit(ref_s, ref_y)
    live_s, live_y = _binary(5_000, rng, shift=shift, miscalibrate=miscalibrate)
    res = cbpe.estimate(live_s)
    assert res.reason == "" and res.n == 5_000
    truth = _realized(live_s, live_y)
    for m, true_value in truth.items():
        e = res.get(m)
        assert e.available, e.reason
        assert e.lower <= true_value <= e.upper, (m, e, true_value)
        assert abs(e.value - true_value) < 0.04, (m, e.value, true_value)
        assert 0 < e.upper - e.lower < 0.3  # few predicted positives after a shift: wide
    c = res.confusion
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == pytest.approx(5_000)


def test_cbpe_follows_a_shift_that_changes_recall():
    """Moving the inputs down lowers recall a lot; the estimate moves with it."""
    rng = np.random.default_rng(1)
    cbpe = CBPE.fit(*_binary(20_000, rng))
    before = cbpe.estimate(_binary(4_000, rng)[0]).get("recall").value
    live_s, live_y = _binary(4_000, rng, shift=-1.5)
    after = cbpe.estimate(live_s).get("recall")
    true_after = _realized(live_s, live_y)["recall"]
    assert after.value < before - 0.1
    assert abs(after.value - true_after) < 0.05


def test_cbpe_band_narrows_with_the_window_size():
    rng = np.random.default_rng(3)
    cbpe = CBPE.fit(*_binary(10_000, rng))
    small = cbpe.estimate(_binary(200, rng)[0]).get("accuracy")
    large = cbpe.estimate(_binary(20_000, rng)[0]).get("accuracy")
    assert (small.upper - small.lower) > 3 * (large.upper - large.lower)


def test_cbpe_band_covers_the_realized_value_on_most_windows():
    rng = np.random.default_rng(11)
    cbpe = CBPE.fit(*_binary(20_000, rng))
    inside = 0
    for i in range(30):
        s, y = _binary(500, rng, shift=(i % 3 - 1) * 0.7)
        e = cbpe.estimate(s, seed=i).get("f1")
        inside += e.lower <= _realized(s, y)["f1"] <= e.upper
    assert inside >= 27


def test_cbpe_uses_the_served_predictions_and_string_labels():
    rng = np.random.default_rng(5)
    s, y = _binary(5_000, rng)
    labels = np.where(y == 1, "yes", "no")
    cbpe = CBPE.fit(s, labels, positive="yes")
    live_s, live_y = _binary(3_000, rng)
    served = np.where(live_s >= 0.3, "yes", "no")  # a lower threshold than 0.5
    res = cbpe.estimate(live_s, predictions=served)
    true_recall = skm.recall_score(live_y, (live_s >= 0.3).astype(int))
    assert abs(res.get("recall").value - true_recall) < 0.04


def test_cbpe_multiclass_one_vs_rest():
    rng = np.random.default_rng(2)

    def make(n, shift=0.0):
        x = rng.normal(shift, 1.0, (n, 3))
        logits = x * np.array([1.5, 1.0, 0.5])
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = (rng.random((n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
        return P, np.minimum(y, 2)

    cbpe = CBPE.fit(*make(15_000), classes=[0, 1, 2])
    for shift in (0.0, 0.8):
        P, y = make(4_000, shift)
        res = cbpe.estimate(P)
        pred = P.argmax(axis=1)
        truth = {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
            "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
            "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
            "roc_auc": skm.roc_auc_score(y, P, multi_class="ovr", average="macro"),
        }
        for m, v in truth.items():
            e = res.get(m)
            assert abs(e.value - v) < 0.05, (shift, m, e.value, v)
            assert e.lower <= e.value <= e.upper


def test_no_scores_and_degenerate_reference_say_why():
    rng = np.random.default_rng(0)
    s, y = _binary(1_000, rng)
    res = estimate_classification(s, y, [])
    assert res.reason.startswith("no scores were logged")
    assert res.get("recall").value is None and "no scores" in res.get("recall").reason
    res = estimate_classification(s, np.ones(1_000), s[:100])
    assert "single class" in res.reason and res.get("accuracy").value is None
    with pytest.raises(EstimationUnavailable, match="single class"):
        CBPE.fit(s, np.zeros(1_000))
    with pytest.raises(EstimationUnavailable, match="at least"):
        CBPE.fit(s[:5], y[:5])
    # scores missing on some live rows: estimated on the rest, with a note
    live = np.r_[s[:200], [np.nan] * 50]
    res = estimate_classification(s, y, live)
    assert res.n == 200 and "50 of 250" in res.note
    res = estimate_classification(s, y, [np.nan, np.nan])
    assert res.reason.startswith("no scores") and res.get("f1").value is None
    assert res.to_dict()["estimates"]["f1"]["reason"]


def _regression(n, rng, shift=0.0):
    x = rng.normal(shift, 1.0, n)
    group = rng.choice(["a", "b"], n)
    noise_sd = 0.2 + 0.8 * np.abs(x) + np.where(group == "b", 0.5, 0.0)
    y = 2 * x + rng.normal(0, 1, n) * noise_sd
    pred = 2 * x
    return pd.DataFrame({"x": x, "group": group}), pred, y


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_dle_tracks_mae_and_rmse(shift):
    rng = np.random.default_rng(4)
    dle = DLE.fit(*_regression(5_000, rng))
    frame, pred, y = _regression(3_000, rng, shift)
    res = dle.estimate(frame, pred)
    true_mae = float(np.mean(np.abs(y - pred)))
    true_rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    mae, rmse = res.get("mae"), res.get("rmse")
    assert abs(mae.value - true_mae) / true_mae < 0.08
    assert abs(rmse.value - true_rmse) / true_rmse < 0.08
    assert mae.lower < mae.value < mae.upper and rmse.lower < rmse.value < rmse.upper
    if shift:
        baseline = dle.estimate(*_regression(3_000, rng)[:2]).get("mae").value
        assert mae.value > baseline * 1.3  # the shift into noisier inputs raises the estimated error


def test_dle_unavailable_reasons():
    rng = np.random.default_rng(0)
    frame, pred, y = _regression(100, rng)
    res = estimate_regression(frame, None, y, frame, pred)
    assert "no model predictions" in res.reason and res.get("mae").value is None
    res = estimate_regression(frame, pred, [None] * 100, frame, pred)
    assert "numeric target" in res.reason
    assert estimate_regression(frame, pred, y, frame, []).reason.startswith("no predictions")
