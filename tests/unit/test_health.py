"""Pure figures of a monitor check: performance on labelled predictions, label coverage/delay, webhook body."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_core.models.monitoring import AlertPublic
from mlops_core.monitoring.figures import label_figures, performance_metrics
from mlops_core.services.monitoring import webhook_body


def _labelled(preds, labels, delays=None):
    delays = delays or [60.0] * len(preds)
    return list(zip(preds, labels, delays))


def test_binary_metrics_equal_scikit_learn_including_roc_auc_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    proba = np.round(rng.random(500), 1)  # many ties
    pred = (proba > 0.5).astype(int)
    rows = _labelled([{"prediction": int(p), "probability": float(s)} for p, s in zip(pred, proba)], y.tolist())

    m = performance_metrics("classification", rows)

    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))


def test_string_and_boolean_labels_line_up_with_the_served_predictions():
    rows = _labelled(["yes", "no", "yes", "no"], ["yes", "yes", "yes", "no"])
    m = performance_metrics("classification", rows)
    assert m["recall"] == pytest.approx(2 / 3) and m["precision"] == pytest.approx(1.0)
    rows = _labelled([True, False, 1, 0], [1, 0, True, True])
    assert performance_metrics("classification", rows)["accuracy"] == pytest.approx(0.75)


def test_multiclass_metrics_are_macro_averages():
    y = ["a", "b", "c", "a", "b", "c"]
    p = ["a", "b", "b", "a", "c", "c"]
    m = performance_metrics("classification", _labelled(p, y))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert "roc_auc" not in m


def test_regression_metrics_equal_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 200)
    p = y + rng.normal(0, 1, 200)
    m = performance_metrics("regression", _labelled(p.tolist(), y.tolist()))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["r2"] == pytest.approx(skm.r2_score(y, p))


def test_no_labels_means_no_metrics_and_unknown_coverage_figures():
    assert performance_metrics("classification", []) == {}
    figs = label_figures(0, [])
    assert figs["coverage"] is None and figs["delay_p50_s"] is None and figs["n_unlabelled"] == 0


def test_label_coverage_counts_the_predictions_still_waiting_and_how_late_labels_come():
    rows = _labelled([1] * 4, [1] * 4, delays=[3600.0, 7200.0, 7200.0, 86400.0])
    figs = label_figures(10, rows)
    assert figs["n_labelled"] == 4 and figs["n_unlabelled"] == 6 and figs["coverage"] == pytest.approx(0.4)
    assert figs["delay_p50_s"] == pytest.approx(7200.0) and figs["delay_max_s"] == pytest.approx(86400.0)


def test_the_webhook_message_is_slack_compatible_and_links_the_evidence():
    now = datetime.now(UTC)
    alert = AlertPublic(
        id=3,
        kind="drift",
        severity="warning",
        state="open",
        title="Data drift on churn",
        detail="5 of 10",
        deployment_id=1,
        deployment_name="churn",
        use_case_id=1,
        monitor_id=1,
        check_id=9,
        dedupe_key="drift:1:1",
        evidence={},
        evidence_link="/deployment-monitoring?deployment=churn&check=9",
        occurrences=1,
        created_at=now,
        last_seen_at=now,
        acknowledged_by=None,
        acknowledged_at=None,
        ack_note="",
        resolved_by=None,
        resolved_at=None,
        resolve_note="",
        webhook_status="pending",
        webhook_attempts=0,
        webhook_error="",
    )
    body = webhook_body(alert, base_url="http://hub.example")
    assert body["text"] == "[WARNING] Data drift on churn on `churn`"
    assert body["blocks"][0]["type"] == "section"
    assert (
        "<http://hub.example/deployment-monitoring?deployment=churn&check=9|Evidence>"
        in body["blocks"][0]["text"]["text"]
    )
