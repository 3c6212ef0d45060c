"""ML canvas and value model services (issue 20) on SQLite and Postgres: canvas history and field
comments, run values, the value-maximising threshold, the "expected value >= champion's" gate and the
portfolio's live value with totals per currency."""

import json

import pytest

from mlops_core import artifacts
from mlops_core.errors import Conflict, PermissionDenied, ValidationError
from mlops_core.models.deployments import Deployment, Prediction
from mlops_core.models.experiments import ModelVersion, RegisteredModel, Run, RunArtifact
from mlops_core.services import audit, canvas, collab, deployments, usecases, value

CHURN_CELLS = {"tp": 100, "fp": -10, "fn": -200, "tn": 0}
# rows = truth, columns = prediction, labels ["0", "1"]
GOOD = [[40, 20], [10, 30]]  # tp 30 fp 20 fn 10 tn 40 -> 800 / 100 records -> 8 x 1000 = 8,000 per month
BAD = [[50, 10], [20, 20]]  # tp 20 fp 10 fn 20 tn 50 -> -2,100 / 100 -> -21,000 per month
HIST = {  # 10 bins: positives at .95 .85 .65 .35, negatives at .75 .45 .25 .15 .05 .05 (see the unit test)
    "pos": [0, 0, 0, 1, 0, 0, 1, 0, 1, 1],
    "neg": [2, 1, 1, 0, 1, 0, 0, 1, 0, 0],
}


def _run(s, uc_id, matrix, name):
    run = Run(name=name, use_case_id=uc_id, status="finished", task="classification", algorithm="logistic_regression")
    s.add(run)
    s.flush()
    plots = {"task": "classification", "confusion_matrix": {"labels": ["0", "1"], "matrix": matrix}}
    plots.update({"positive_class": "1", "score_histogram": HIST})
    key = artifacts.put_bytes(f"runs/{run.id}/plots.json", json.dumps(plots).encode())
    s.add(RunArtifact(run_id=run.id, name="plots.json", kind="plot_data", artifact_key=key))
    return run


def _world(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Churn value")
    with db.unit_of_work() as s:
        good, bad = _run(s, uc.id, GOOD, "good"), _run(s, uc.id, BAD, "bad")
        rm = RegisteredModel(name="churn-value", use_case_id=uc.id)
        s.add(rm)
        s.flush()
        mv1 = ModelVersion(model_id=rm.id, version=1, run_id=good.id, use_case_id=uc.id, artifact_key="x")
        mv2 = ModelVersion(model_id=rm.id, version=2, run_id=bad.id, use_case_id=uc.id, artifact_key="y")
        s.add_all([mv1, mv2])
        s.flush()
        d = Deployment(name="churn-value", use_case_id=uc.id, environment="production", model_version_id=mv1.id)
        s.add(d)
        s.flush()
        rows = [("1", 1, None), ("1", 0, None), ("0", 1, None), ("1", None, 0.9), ("0", None, 0.2)]
        for i, (pred, label, score) in enumerate(rows):
            s.add(
                Prediction(
                    request_id=f"v{i}",
                    deployment_id=d.id,
                    model_version_id=mv1.id,
                    prediction=pred,
                    label=label,
                    labelled_at=None if label is None else d.deployed_at,
                    score=score,
                )
            )
        ids = {"uc": uc.id, "good": good.id, "bad": bad.id, "mv1": mv1.id, "mv2": mv2.id}
    return ids


def test_canvas_is_saved_with_history_conflicts_and_field_comments(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Canvas case")
    assert canvas.get_canvas(db, use_case_id=uc.id).version == 0
    c1 = canvas.save_canvas(
        db,
        actor=people["business"],
        use_case_id=uc.id,
        fields={"decision": "who gets an offer", "horizon": "30 days", "latency": ""},
        problem_type="binary",
        positive_class="1",
        expected_version=0,
    )
    assert (c1.version, c1.fields) == (1, {"decision": "who gets an offer", "horizon": "30 days"})
    same = canvas.save_canvas(
        db,
        actor=people["data_scientist"],
        use_case_id=uc.id,
        fields=c1.fields,
        problem_type="binary",
        positive_class="1",
    )
    assert same.version == 1  # nothing changed: no new version
    c2 = canvas.save_canvas(
        db,
        actor=people["data_scientist"],
        use_case_id=uc.id,
        fields={**c1.fields, "data_sources": "CRM"},
        problem_type="binary",
        positive_class="1",
        expected_version=1,
    )
    assert c2.version == 2 and [c.version for c in canvas.canvas_history(db, use_case_id=uc.id)] == [2, 1]
    assert canvas.problem_settings(db, uc.id) == ("binary", "1")
    with pytest.raises(Conflict, match="sara"):
        canvas.save_canvas(db, actor=people["business"], use_case_id=uc.id, fields={}, expected_version=1)
    with pytest.raises(PermissionDenied):
        canvas.save_canvas(db, actor=people["ops"], use_case_id=uc.id, fields={"decision": "x"})
    with pytest.raises(ValidationError, match="no positive class"):
        canvas.save_canvas(
            db, actor=people["business"], use_case_id=uc.id, problem_type="regression", positive_class="1"
        )
    eid = canvas.comment_entity_id(uc.id, "horizon")
    collab.add_comment(
        db,
        actor=people["data_scientist"],
        entity_type=canvas.COMMENT_ENTITY,
        entity_id=eid,
        body="@alice 30 or 60 days?",
    )
    got = collab.list_comments(db, entity_type=canvas.COMMENT_ENTITY, entity_id=eid)
    assert [c.mentions for c in got] == [["alice"]]
    actions = [
        e.action
        for e in audit.list_events(db, actor=people["admin"], entity_type="use_case", entity_id=str(uc.id)).events
    ]
    assert actions.count("canvas.save") == 2


def test_value_model_incomplete_run_values_threshold_and_gate(db, people):
    ids = _world(db, people)
    vm = value.set_value_model(
        db,
        actor=people["business"],
        use_case_id=ids["uc"],
        problem_type="binary",
        currency="eur",
        volume_per_period=1000,
        outcome_values={"tp": 100, "fp": -10},
    )
    assert vm.missing == ["FN", "TN"]
    rv = value.run_values(db, use_case_id=ids["uc"])
    assert {r.value.status for r in rv} == {"incomplete"} and rv[0].value.text == "incomplete: missing FN, TN"
    with pytest.raises(PermissionDenied):
        value.set_value_model(
            db, actor=people["data_scientist"], use_case_id=ids["uc"], problem_type="binary", currency="EUR"
        )
    with pytest.raises(ValidationError, match="cost per unit of error instead"):
        value.set_value_model(
            db,
            actor=people["business"],
            use_case_id=ids["uc"],
            problem_type="regression",
            currency="EUR",
            outcome_values={"tp": 1},
        )
    value.set_value_model(
        db,
        actor=people["business"],
        use_case_id=ids["uc"],
        problem_type="binary",
        currency="EUR",
        volume_per_period=1000,
        outcome_values=CHURN_CELLS,
    )
    assert [len(value.value_history(db, use_case_id=ids["uc"]))] == [2]

    rv = value.run_values(db, use_case_id=ids["uc"])
    assert [(r.run_name, r.value.value_per_period) for r in rv] == [
        ("good", pytest.approx(8000.0)),
        ("bad", pytest.approx(-21000.0)),
    ]
    assert rv[0].best_threshold == pytest.approx(0.3) and rv[0].best_value_per_period == pytest.approx(38000.0)

    # the gate applies only with a value KPI
    assert value.value_gates(db, model_version_id=ids["mv2"], champion_model_version_id=ids["mv1"]) == []
    usecases.add_kpi(db, actor=people["business"], use_case_id=ids["uc"], kind="value", target=0)
    [gate] = value.value_gates(db, model_version_id=ids["mv2"], champion_model_version_id=ids["mv1"])
    assert gate.status == "failed" and "-21,000 EUR per month < the champion's 8,000 EUR per month" in gate.detail
    gates = deployments.gate_checks(db, ids["mv1"], "churn-value", load_model=False)
    assert [g.status for g in gates if g.gate == "value_vs_champion"] == ["passed"]

    with pytest.raises(PermissionDenied):
        value.choose_threshold(db, actor=people["business"], model_version_id=ids["mv1"])
    with pytest.raises(ValidationError, match="never predict the positive class"):
        value.choose_threshold(db, actor=people["data_scientist"], model_version_id=ids["mv1"], threshold=0.99)
    t = value.choose_threshold(db, actor=people["data_scientist"], model_version_id=ids["mv1"])
    assert (t.threshold, t.value_per_period, t.default_value_per_period) == (
        pytest.approx(0.3),
        pytest.approx(38000.0),
        pytest.approx(9000.0),
    )
    assert value.threshold_for(db, ids["mv1"]) == pytest.approx(0.3)
    [gate] = value.value_gates(db, model_version_id=ids["mv2"], champion_model_version_id=ids["mv1"])
    assert gate.evidence["champion_value"] == pytest.approx(38000.0)


def test_portfolio_live_value_realised_estimated_and_totals_per_currency(db, people):
    ids = _world(db, people)
    value.set_value_model(
        db,
        actor=people["business"],
        use_case_id=ids["uc"],
        problem_type="binary",
        currency="EUR",
        volume_per_period=1000,
        outcome_values=CHURN_CELLS,
    )
    fraud = usecases.create_use_case(db, actor=people["business"], title="Fraud value")
    value.set_value_model(
        db,
        actor=people["business"],
        use_case_id=fraud.id,
        problem_type="binary",
        currency="USD",
        volume_per_period=100,
        outcome_values={"tp": 10, "fp": -2, "fn": 0, "tn": 0},
    )
    with db.unit_of_work() as s:
        d = Deployment(name="fraud-value", use_case_id=fraud.id, environment="production")
        s.add(d)
        s.flush()
        s.add(Prediction(request_id="f0", deployment_id=d.id, prediction="1", score=0.5))
    idle = usecases.create_use_case(db, actor=people["business"], title="No value yet")

    live = value.live_value(db, use_case_id=ids["uc"])
    # realised: tp, fp, fn -> (100 - 10 - 200) / 3 x 1000
    assert live["realised"].value_per_period == pytest.approx(-110000 / 3)
    # estimated from scores .9 (yes) and .2 (no): (90 - 1 - 40) / 2 x 1000 = 24,500, with a band
    est = live["estimated"]
    assert est.value_per_period == pytest.approx(24500.0) and est.low < 24500 < est.high
    assert live["headline"].value_per_period == pytest.approx(24500.0)  # 3 labels are too few to headline

    items, totals = value.portfolio_values(db)
    assert [i.title for i in items] == ["Churn value", "Fraud value", "No value yet"]
    assert items[1].value.value_per_period == pytest.approx(400.0)  # (.5 x 10 - .5 x 2) x 100
    assert items[2].value.value_per_period is None and items[2].use_case_id == idle.id
    assert totals == {"EUR per month": pytest.approx(24500.0), "USD per month": pytest.approx(400.0)}


@pytest.mark.slow
def test_the_chosen_threshold_travels_with_the_model_version_into_serving_and_batch_scoring(sqlite_db):
    """SQLite only: the storage is covered on both legs above; this is about the scoring paths."""
    from fastapi.testclient import TestClient

    from tests.conftest import make_people

    from mlops_core.serving.app import create_app
    from mlops_core.services import apikeys, predictions
    from tests.services.deployments_world import make_world
    from tests.services.test_prediction_scores import _deploy, _records

    db = sqlite_db
    people = make_people(db)
    w = make_world(db, people)
    mv_id = w.versions[0]
    uc_id = deployments._model_version(db, mv_id)["use_case_id"]
    # a miss is far dearer than a false alarm: the value-maximising threshold is low
    value.set_value_model(
        db,
        actor=people["business"],
        use_case_id=uc_id,
        problem_type="binary",
        currency="EUR",
        volume_per_period=1000,
        outcome_values={"tp": 100, "fp": -5, "fn": -300, "tn": 0},
    )
    t = value.choose_threshold(db, actor=people["data_scientist"], model_version_id=mv_id)
    assert 0 < t.threshold < 0.5 and t.value_per_period >= t.default_value_per_period
    _deploy(db, people, mv_id, "churn")
    v, records, frame = _records(mv_id, db, 40, seed=11)
    scored = predictions.score_frame(db, deployment_name="churn", frame=frame.drop(columns=["churned"]))
    assert [int(p) for p in scored["prediction"]] == [int(s >= t.threshold) for s in scored["score"]]
    _, key = apikeys.create_key(db, actor=people["ops"], deployment_name="churn")
    app = create_app(db.url, poll_seconds=60)
    with TestClient(app) as client:
        many = client.post(
            "/v1/deployments/churn/predict", json={"records": records}, headers={"Authorization": f"Bearer {key}"}
        ).json()
        one = client.post(
            "/v1/deployments/churn/predict", json={"records": records[:1]}, headers={"Authorization": f"Bearer {key}"}
        ).json()
    assert many["predictions"] == [int(s >= t.threshold) for s in many["scores"]]
    assert sum(many["predictions"]) > sum(int(s > 0.5) for s in many["scores"])  # the threshold changed answers
    assert one["predictions"] == [int(one["scores"][0] >= t.threshold)]  # the one-record fast path too
