"""Monitoring at scale (issue 16, point 4), on both databases: a monitor check computed from stored reference
sketches and the window read in batches gives the same verdict for every column (and the predictions) as
today's in-memory path, on the demo's churn traffic (a week of the demo's customers, drifting from day 5)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest

from mlops_core import artifacts
from mlops_core.config import reload_settings
from mlops_core.db import utcnow
from mlops_core.demo.customers import FEATURES, TARGET, make_customers
from mlops_core.demo.monitoring import DRIFT_BY_DAY
from mlops_core.ml import persistence, training
from mlops_core.services import datasets, monitoring, usecases
from mlops_core.services.monitoring import checks, windows
from mlops_core.services.predictions import log_predictions, prediction_row

PER_DAY = 240  # as the demo


def _churn_world(db, people):
    """The demo's churn deployment in small: reference customers, a fitted model, a week of its traffic."""
    from mlops_core.models.deployments import Deployment
    from mlops_core.models.experiments import ModelVersion, RegisteredModel, Run

    alice, dan = people["business"], people["data_engineer"]
    uc = usecases.create_use_case(db, actor=alice, title="Churn at scale", members={"ops": ["omar"]})
    train = make_customers(3000, seed=7, drift=0.25)
    dv = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=train, use_case_id=uc.id)
    x = train[FEATURES]
    model = training.build_pipeline(
        x, "logistic_regression", "classification", training.normalise_params("logistic_regression", {}), 0
    ).fit(x, train[TARGET])
    key = artifacts.put_bytes(f"models/{uuid.uuid4().hex}.skops", persistence.dump_model(model))
    with db.unit_of_work() as s:
        run = Run(name="champion", use_case_id=uc.id, dataset_version_id=dv.id, status="finished", source="ui")
        s.add(run)
        s.flush()
        rm = RegisteredModel(name="churn-model", use_case_id=uc.id, created_by="sara")
        s.add(rm)
        s.flush()
        mv = ModelVersion(
            model_id=rm.id,
            version=1,
            run_id=run.id,
            use_case_id=uc.id,
            dataset_version_id=dv.id,
            artifact_key=key,
            task="classification",
            target=TARGET,
            input_schema=training.infer_input_schema(x),
            created_by="sara",
        )
        s.add(mv)
        s.flush()
        dep = Deployment(name="churn", use_case_id=uc.id, environment="production", model_version_id=mv.id)
        s.add(dep)
        s.flush()
        dep_id, mv_id = dep.id, mv.id
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=len(DRIFT_BY_DAY))
    rng = np.random.default_rng(2026)
    rows = []
    for day, drift in enumerate(DRIFT_BY_DAY):
        frame = make_customers(PER_DAY, seed=500 + day, drift=drift)[FEATURES]
        preds = model.predict(frame)
        for i, rec in enumerate(frame.to_dict("records")):
            rows.append(
                prediction_row(
                    request_id=uuid.uuid4().hex,
                    deployment_id=dep_id,
                    model_version_id=mv_id,
                    inputs={k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()},
                    prediction=int(preds[i]),
                    latency_ms=float(rng.gamma(3.0, 6.0)),
                    created_at=start + timedelta(days=day, seconds=float(rng.uniform(0, 86399))),
                )
            )
    for row in rows[PER_DAY * 5 : PER_DAY * 5 + 3]:  # values of another type than the reference's: a batch
        row["inputs"] = {**row["inputs"], "age": "unknown", "tenure_months": 3.5, "senior": "yes"}  # decoded row by row
    log_predictions(db, rows)
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name="churn",
        window_kind="last_hours",
        window_size=72,
        schedule_seconds=None,
        retraining_policy="off",
    )
    return dep_id, mv_id, start


def _drift(db, monitor, dep, as_of, *, sketches: bool, monkeypatch):
    monkeypatch.setattr(checks, "use_sketches", lambda volume: sketches)
    return checks._compute_check(db, monitor, dep, as_of)["drift"]


def test_verdicts_from_sketches_equal_the_in_memory_path_on_the_demo_traffic(db, people, monkeypatch):
    from mlops_core.models.deployments import Deployment
    from mlops_core.models.monitoring import Monitor

    dep_id, mv_id, start = _churn_world(db, people)
    with db.read() as s:
        dep = s.get(Deployment, dep_id)
        monitor = s.query(Monitor).filter(Monitor.deployment_id == dep_id).one()
        s.expunge_all()
    row_by_row = []  # batches pyarrow refused (the mixed-type rows of day 6) and decoded one row at a time
    real_batch_texts = windows._batch_texts
    monkeypatch.setattr(windows, "_batch_texts", lambda *a: row_by_row.append(a) or real_batch_texts(*a))
    drifted_days = 0
    for day in range(1, len(DRIFT_BY_DAY) + 1):
        as_of = start + timedelta(days=day)
        exact = _drift(db, monitor, dep, as_of, sketches=False, monkeypatch=monkeypatch)
        sketched = _drift(db, monitor, dep, as_of, sketches=True, monkeypatch=monkeypatch)
        assert "computed_from" in sketched.model_extra and "computed_from" not in exact.model_extra
        assert sketched.dataset_drifted == exact.dataset_drifted, day
        assert set(sketched.columns) == set(exact.columns) == set(FEATURES)
        for col in FEATURES:
            e, s = exact.columns[col], sketched.columns[col]
            assert (s.method, s.column_type, s.drifted) == (e.method, e.column_type, e.drifted), (day, col)
            tolerance = 1e-3 if s.method == "wasserstein" else 1e-9 * max(1.0, abs(e.score))
            assert abs(s.score - e.score) <= tolerance, (day, col, s.score, e.score)
        assert exact.prediction is not None and sketched.prediction is not None
        assert (sketched.prediction.method, sketched.prediction.drifted) == (
            exact.prediction.method,
            exact.prediction.drifted,
        )
        assert sketched.prediction.score == pytest.approx(exact.prediction.score, rel=1e-9)
        drifted_days += bool(exact.dataset_drifted)
    assert 0 < drifted_days < len(DRIFT_BY_DAY)  # both verdicts were exercised
    assert len(row_by_row) == 2  # the windows ending on days 6 and 7 hold them; the others were parsed at once

    # The reference sketches were computed once and stored: a new process reads the file, not the dataset.
    key = windows._sketch_key(
        mv_id, sketched_dv := windows.reference_sketches(db, model_version_id=mv_id).dataset_version_id
    )
    assert artifacts.exists(key) and sketched_dv
    windows._SKETCH_CACHE.clear()

    def no_dataset(*a, **k):
        raise AssertionError("the reference dataset was read again")

    monkeypatch.setattr(windows, "reference_frame", no_dataset)
    again = _drift(db, monitor, dep, start + timedelta(days=len(DRIFT_BY_DAY)), sketches=True, monkeypatch=monkeypatch)
    assert again.dataset_drifted == exact.dataset_drifted


def test_the_row_threshold_setting_picks_the_path_of_a_stored_check(db, people, monkeypatch):
    _, _, start = _churn_world(db, people)
    as_of = start + timedelta(days=len(DRIFT_BY_DAY))
    monkeypatch.setenv("MLOPS_DRIFT_SKETCH_ROWS", "100")  # the 72 h window holds 720 predictions
    reload_settings()
    big = monitoring.run_monitor(db, deployment_name="churn", as_of=as_of)["checks"][0]
    stored = monitoring.get_check(db, big["check_id"]).drift
    assert stored.model_extra["computed_from"].startswith("sketches (720 rows")
    monkeypatch.setenv("MLOPS_DRIFT_SKETCH_ROWS", "100000")
    reload_settings()
    small = monitoring.run_monitor(db, deployment_name="churn", as_of=as_of)["checks"][0]
    assert "computed_from" not in monitoring.get_check(db, small["check_id"]).drift.model_extra
    assert big["dataset_drifted"] is small["dataset_drifted"] is True
    assert big["drifted_columns"] == small["drifted_columns"]
