"""The positive-class score of a binary classifier: computed by the scoring service (pipeline and numpy
fast path), logged in `predictions.score` (NULL for a regressor), logged by batch scoring, and turned
into a live roc_auc by monitoring, so a roc_auc KPI gets a met/warning/missed status on live traffic."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from mlops_core.demo.customers import make_customers
from mlops_core.serving.app import create_app
from mlops_core.ml.fastpath import compile_fast_path, verify_fast_path
from mlops_core.ml.scoring import positive_index
from mlops_core.monitoring.figures import performance_metrics
from mlops_core.serving.schema import RecordValidator, frame_to_records, probe_records
from mlops_core.services import apikeys, collab, deployments, monitoring, predictions
from tests.services.deployments_world import CONFIG, make_world, train_version


def _deploy(db, people, mv_id, name, environment="production", override=""):
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=mv_id, deployment_name=name, environment=environment
    )
    for so in collab.signoffs_for(db, "model_version", mv_id):
        if so.status == "pending":
            collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True)
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name=name, tolerance=1.0)
    if override:  # the regressor cannot meet the use case's roc_auc KPI
        return deployments.deploy(db, actor=people["admin"], request_id=req.id, override_reason=override)
    return deployments.deploy(db, actor=people["ops"], request_id=req.id)


def _records(mv_id, db, n, seed, drift=0.0):
    mv = deployments._model_version(db, mv_id)
    v = RecordValidator(mv["input_schema"])
    frame = make_customers(n, seed=seed, drift=drift)
    return v, frame_to_records(frame, v.names, limit=n), frame


def test_the_positive_class_follows_the_monitoring_rule():
    class M:
        def __init__(self, classes):
            self.classes_ = np.array(classes)

        def predict_proba(self, X):  # noqa: D401 - only its presence matters here
            raise NotImplementedError

    assert positive_index(M([0, 1])) == 1
    assert positive_index(M([False, True])) == 1
    assert positive_index(M(["churn", "stay"])) == 0  # a known positive name wins over the order
    assert positive_index(M(["No", "Yes"])) == 1  # no known name: the last in order
    assert positive_index(M([0, 1, 2])) is None  # multiclass: no score
    assert positive_index(object()) is None  # regressor
    # monitoring counts the same class as positive
    rows = [("churn", "churn", 0.0), ("stay", "churn", 0.0), ("stay", "stay", 0.0)]
    assert performance_metrics("classification", rows)["recall"] == pytest.approx(0.5)


@pytest.mark.parametrize("algorithm", ["logistic_regression", "random_forest"])
def test_fast_path_score_equals_the_pipeline_predict_proba(db, people, algorithm):
    w = make_world(db, people)
    mv_id = (
        w.versions[0]
        if algorithm == "logistic_regression"
        else train_version(
            db,
            people,
            use_case_id=w.use_case_id,
            dataset_version_id=w.dataset_version_id,
            config=dict(CONFIG, algorithm=algorithm),
        )
    )
    model = deployments.load_model(db, mv_id)
    positive = positive_index(model)
    assert positive == 1 and list(model.classes_) == [0, 1]
    v, records, _ = _records(mv_id, db, 60, seed=11, drift=1.5)
    records += probe_records(records, v.types)
    fast = compile_fast_path(model, v.names, positive)
    assert fast is not None and verify_fast_path(fast, model, v, records, positive)
    want = model.predict_proba(v.to_frame(records))[:, positive]
    got = np.array([fast.scored(r)[1] for r in records])
    assert np.max(np.abs(got - want)) <= 1e-9
    assert [fast.scored(r)[0] for r in records] == list(model.predict(v.to_frame(records)))
    # the check can fail: the other class's probability is not accepted
    assert not verify_fast_path(fast, model, v, records, 1 - positive)


def test_serving_logs_a_score_for_a_binary_classifier_and_null_for_a_regressor(db, people):
    w = make_world(db, people)
    _deploy(db, people, w.versions[0], "churn")
    reg_id = train_version(
        db,
        people,
        use_case_id=w.use_case_id,
        dataset_version_id=w.dataset_version_id,
        config=dict(CONFIG, algorithm="linear_regression", target="monthly_charges"),
        model_name="charges-model",
    )
    _deploy(db, people, reg_id, "charges", environment="staging", override="a regressor for the score test")
    _, churn_key = apikeys.create_key(db, actor=people["ops"], deployment_name="churn")
    _, charges_key = apikeys.create_key(db, actor=people["ops"], deployment_name="charges")
    v, records, _ = _records(w.versions[0], db, 5, seed=5)
    model = deployments.load_model(db, w.versions[0])
    want = model.predict_proba(v.to_frame(records))[:, 1]
    rv = RecordValidator(deployments._model_version(db, reg_id)["input_schema"])
    reg_record = frame_to_records(make_customers(3, seed=5), rv.names, limit=1)[0]

    app = create_app(db.url, poll_seconds=60)
    with TestClient(app) as client:
        state = app.state.serving
        assert state._load(w.versions[0]).fast is not None  # the one-record answer comes from the fast path
        one = client.post(
            "/v1/deployments/churn/predict",
            json={"records": records[:1]},
            headers={"Authorization": f"Bearer {churn_key}"},
        ).json()
        many = client.post(
            "/v1/deployments/churn/predict", json={"records": records}, headers={"Authorization": f"Bearer {churn_key}"}
        ).json()
        reg = client.post(
            "/v1/deployments/charges/predict",
            json={"records": [reg_record]},
            headers={"Authorization": f"Bearer {charges_key}"},
        ).json()
    assert set(one) == {"predictions", "model_version", "request_id", "scores"}
    assert one["scores"][0] == pytest.approx(want[0], abs=1e-9)
    assert many["scores"] == pytest.approx(list(want), abs=1e-12)  # the pipeline path
    assert [int(s > 0.5) for s in many["scores"]] == many["predictions"]
    assert set(reg) == {"predictions", "model_version", "request_id"} and isinstance(reg["predictions"][0], float)

    logged = {
        p.request_id: p
        for name in ("churn", "charges")
        for p in predictions.recent_predictions(db, deployment_name=name)
    }
    assert logged[one["request_id"]].score == pytest.approx(one["scores"][0], abs=1e-12)
    assert [logged[r].score for r in many["record_ids"]] == pytest.approx(many["scores"], abs=1e-12)
    assert all(0.0 <= logged[r].score <= 1.0 for r in many["record_ids"])
    assert logged[reg["request_id"]].score is None


def test_batch_and_ui_scoring_log_the_score(db, people):
    w = make_world(db, people)
    _deploy(db, people, w.versions[0], "churn")
    v, records, frame = _records(w.versions[0], db, 8, seed=8)
    model = deployments.load_model(db, w.versions[0])
    want = model.predict_proba(v.to_frame(records))[:, 1]
    out = predictions.score_records(db, actor=people["data_scientist"], deployment_name="churn", records=records[:1])
    assert out.scores[0] == pytest.approx(want[0], abs=1e-12)
    scored = predictions.score_frame(db, deployment_name="churn", frame=frame.drop(columns=["churned"]))
    assert list(scored["score"]) == pytest.approx(list(want), abs=1e-12)
    assert list(scored["prediction"]) == list(model.predict(v.to_frame(records)))
    logged = {p.request_id: p.score for p in predictions.recent_predictions(db, deployment_name="churn")}
    assert logged[out.request_id] == pytest.approx(want[0], abs=1e-12)
    assert [logged[r] for r in scored["request_id"]] == pytest.approx(list(want), abs=1e-12)


def test_monitoring_computes_live_roc_auc_from_logged_scores_and_the_roc_auc_kpi_gets_a_status(db, people):
    w = make_world(db, people, target=0.6)
    dep = _deploy(db, people, w.versions[0], "churn")
    frame = make_customers(120, seed=31)
    scored = predictions.score_frame(db, deployment_name="churn", frame=frame.drop(columns=["churned"]))
    truth = [int(y) for y in frame["churned"]]
    assert len(set(truth)) == 2
    predictions.apply_labels(
        db, deployment_id=dep.id, labels=[{"request_id": r, "label": y} for r, y in zip(scored["request_id"], truth)]
    )
    monitoring.configure_monitor(
        db, actor=people["ops"], deployment_name="churn", schedule_seconds=None, max_latency_p95_ms=None
    )
    monitoring.run_monitor(db, deployment_name="churn")
    check = monitoring.list_checks(db, deployment_name="churn")[-1]
    live = check.performance.metrics
    assert live["roc_auc"] == pytest.approx(roc_auc_score(truth, scored["score"]), abs=1e-12)
    kpi = next(k for k in check.kpis if k.metric == "roc_auc")
    assert kpi.value == pytest.approx(live["roc_auc"])
    assert kpi.status in ("met", "warning", "missed")
    assert kpi.status == ("met" if live["roc_auc"] >= 0.6 else "missed")


def test_without_a_score_on_every_labelled_prediction_roc_auc_stays_unknown(db, people):
    w = make_world(db, people)
    dep = _deploy(db, people, w.versions[0], "churn")
    rows = [
        predictions.prediction_row(
            request_id=f"r{i}",
            deployment_id=dep.id,
            model_version_id=dep.model_version_id,
            inputs={"age": i},
            prediction=i % 2,
            latency_ms=1.0,
            score=None if i == 0 else (0.8 if i % 2 else 0.2),
        )
        for i in range(40)
    ]
    predictions.log_predictions(db, rows)
    predictions.apply_labels(
        db, deployment_id=dep.id, labels=[{"request_id": f"r{i}", "label": i % 2} for i in range(40)]
    )
    monitoring.configure_monitor(
        db, actor=people["ops"], deployment_name="churn", schedule_seconds=None, max_latency_p95_ms=None
    )
    monitoring.run_monitor(db, deployment_name="churn")
    check = monitoring.list_checks(db, deployment_name="churn")[-1]
    assert "roc_auc" not in check.performance.metrics and check.performance.metrics["accuracy"] == 1.0
    assert next(k for k in check.kpis if k.metric == "roc_auc").status == "unknown"
