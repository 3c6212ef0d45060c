"""Stage 4 services on SQLite and Postgres: gates, sign-off staleness, promotion, rollback, canary,
API keys, the prediction log and labels."""

from __future__ import annotations

import pytest
from sqlmodel import select

from mlops_core.errors import Conflict, PermissionDenied, ValidationError
from mlops_core.models.deployments import ApiKey
from mlops_core.services import apikeys, audit, collab, datasets, deployments, predictions
from mlops_core.demo.customers import make_customers
from tests.services.deployments_world import CONFIG, make_world, train_version


def _approve_signoff(db, people, mv_id, *, confirm=False):
    so = next(s for s in collab.signoffs_for(db, "model_version", mv_id) if s.status == "pending")
    return collab.decide_signoff(
        db, actor=people["business"], signoff_id=so.id, approve=True, confirm_shortfalls=confirm
    )


def _deployed(db, people, mv_id, name="churn"):
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=mv_id, deployment_name=name, environment="production"
    )
    _approve_signoff(db, people, mv_id)
    return deployments.deploy(db, actor=people["ops"], request_id=req.id)


def test_a_production_request_checks_every_gate_and_asks_business_for_a_signoff(db, people):
    w = make_world(db, people)
    req = deployments.request_deployment(
        db,
        actor=people["data_scientist"],
        model_version_id=w.versions[0],
        deployment_name="churn",
        environment="production",
    )
    gates = {g.gate: g for g in req.gates}
    assert [g.gate for g in req.gates] == [
        "use_case_match",
        "schema_match",
        "data_validated",
        "kpis_met",
        "no_regression",
        "business_signoff",
        "model_loads",
    ]
    assert gates["data_validated"].status == "passed" and gates["data_validated"].evidence["dataset_version_id"]
    assert gates["kpis_met"].status == "passed" and "roc_auc" in gates["kpis_met"].detail
    assert gates["model_loads"].status == "passed" and gates["model_loads"].evidence["rows"] > 0
    assert gates["business_signoff"].status == "failed" and "waiting" in gates["business_signoff"].detail
    signoffs = collab.signoffs_for(db, "model_version", w.versions[0])
    assert len(signoffs) == 1 and signoffs[0].assignee_role == "business"
    assert signoffs[0].evidence_hash == req.evidence_hash
    assert set(signoffs[0].evidence) == {"model_version_id", "dataset_version_id", "metrics"}
    # Deploying now is blocked by the missing sign-off, and the message names the gate.
    with pytest.raises(ValidationError, match="Business sign-off"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id)


def test_current_gates_show_a_signoff_at_once_without_loading_the_model_or_storing_anything(db, people, monkeypatch):
    w = make_world(db, people)
    req = deployments.request_deployment(
        db,
        actor=people["data_scientist"],
        model_version_id=w.versions[0],
        deployment_name="churn",
        environment="production",
    )
    _approve_signoff(db, people, w.versions[0])
    monkeypatch.setattr(deployments, "load_model", lambda *a, **k: pytest.fail("render must not load the model"))
    stored = deployments.get_request(db, req.id)
    now = {g.gate: g for g in deployments.current_gates(db, stored)}
    assert list(now) == [
        "use_case_match",
        "schema_match",
        "data_validated",
        "kpis_met",
        "no_regression",
        "business_signoff",
        "model_loads",
    ]
    assert now["business_signoff"].status == "passed" and "approved by alice" in now["business_signoff"].detail
    assert now["model_loads"] == next(g for g in stored.gates if g.gate == "model_loads")  # the stored check
    after = deployments.get_request(db, req.id)  # nothing written: the request keeps its stored checklist
    assert after.gates_evaluated_at == stored.gates_evaluated_at
    assert next(g for g in after.gates if g.gate == "business_signoff").status == "failed"
    monkeypatch.undo()
    deployments.deploy(db, actor=people["ops"], request_id=req.id)
    decided = deployments.get_request(db, req.id)
    assert deployments.current_gates(db, decided) == decided.gates  # a decided request shows what it was decided on


def test_ops_deploys_after_business_signs_off_and_history_shows_who_served_when(db, people):
    w = make_world(db, people)
    dep = _deployed(db, people, w.versions[0])
    assert dep.model_version_id == w.versions[0] and dep.deployed_at is not None
    events = deployments.history(db, deployment_name="churn")
    assert [(e.kind, e.from_model_version_id, e.to_model_version_id, e.actor_username) for e in events] == [
        ("deploy", None, w.versions[0], "omar")
    ]
    req = deployments.list_requests(db, deployment_name="churn")[0]
    assert req.status == "deployed" and not req.failed_gates
    assert deployments.where_deployed(db, w.versions[0])[0].deployment == "churn"
    acts = [e.action for e in audit.list_events(db, actor=people["ops"], entity_type="deployment").events]
    assert "deployment.deploy" in acts and "deployment.request" in acts


def test_a_signoff_no_longer_counts_once_the_model_versions_data_changes(db, people):
    w = make_world(db, people)
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    _approve_signoff(db, people, w.versions[0])
    # The lineage now points at other data: the evidence alice approved is not what would be deployed.
    other = datasets.register_version_from_frame(
        db,
        actor=people["data_engineer"],
        dataset_name="customers",
        frame=make_customers(150, seed=11),
        use_case_id=w.use_case_id,
    )
    from mlops_core.models.experiments import ModelVersion

    with db.unit_of_work() as s:
        mv = s.get(ModelVersion, w.versions[0])
        mv.dataset_version_id = other.id
        s.add(mv)
    with pytest.raises(ValidationError, match="approved other evidence"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id)
    gate = next(g for g in deployments.get_request(db, req.id).gates if g.gate == "business_signoff")
    assert gate.status == "failed" and gate.evidence["approved_hash"] != gate.evidence["evidence_hash"]


def test_a_failed_kpi_blocks_and_only_an_admin_may_override_with_a_reason_which_is_audited(db, people):
    w = make_world(db, people, target=0.99)  # roc_auc >= 0.99 cannot be met
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    # Business sees the missed KPI: approving it anyway needs an explicit confirmation.
    with pytest.raises(ValidationError, match=r"roc_auc is 0\.\d+, target >= 0\.99.*[Cc]onfirm"):
        _approve_signoff(db, people, w.versions[0])
    _approve_signoff(db, people, w.versions[0], confirm=True)
    with pytest.raises(ValidationError, match="Model KPIs met"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id)
    with pytest.raises(PermissionDenied, match="only an admin"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id, override_reason="urgent")
    dep = deployments.deploy(db, actor=people["admin"], request_id=req.id, override_reason="pilot for one week")
    assert dep.model_version_id == w.versions[0]
    req = deployments.get_request(db, req.id)
    assert req.overridden_by == "admin" and req.override_reason == "pilot for one week"
    overrides = audit.list_events(db, actor=people["admin"], action="deployment.override").events
    assert len(overrides) == 1 and "pilot for one week" in overrides[0].summary


def test_a_version_worse_than_production_beyond_the_tolerance_is_blocked(db, people):
    w = make_world(db, people, target=0.5)
    _deployed(db, people, w.versions[0])
    weak = train_version(
        db,
        people,
        use_case_id=w.use_case_id,
        dataset_version_id=w.dataset_version_id,
        config=dict(CONFIG, features=["region"]),
    )
    gates = {g.gate: g for g in deployments.gate_checks(db, weak, "churn")}
    assert gates["no_regression"].status == "failed" and "roc_auc" in gates["no_regression"].detail
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    gates = {g.gate: g for g in deployments.gate_checks(db, weak, "churn")}
    assert gates["no_regression"].status == "passed"


def test_rollback_returns_to_the_previous_version_in_one_action_and_history_shows_both_moves(db, people):
    w = make_world(db, people, versions=2)
    v1, v2 = w.versions
    _deployed(db, people, v1)
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    _deployed(db, people, v2)
    gen_before = deployments.get_by_name(db, "churn").generation
    dep = deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="complaints")
    assert dep.model_version_id == v1 and dep.generation == gen_before + 1
    moves = [
        (e.kind, e.from_model_version_id, e.to_model_version_id)
        for e in deployments.history(db, deployment_name="churn")
    ]
    assert moves[:2] == [("rollback", v2, v1), ("deploy", v1, v2)]
    assert deployments.where_deployed(db, v2) == []


def test_rollback_with_nothing_before_is_refused_and_roles_are_enforced(db, people):
    w = make_world(db, people)
    with pytest.raises(PermissionDenied):
        deployments.request_deployment(db, actor=people["ops"], model_version_id=w.versions[0], deployment_name="churn")
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    _approve_signoff(db, people, w.versions[0])
    for role in ("data_scientist", "business"):
        with pytest.raises(PermissionDenied):
            deployments.deploy(db, actor=people[role], request_id=req.id)
    deployments.deploy(db, actor=people["ops"], request_id=req.id)
    with pytest.raises(Conflict, match="no previous version"):
        deployments.rollback(db, actor=people["ops"], deployment_name="churn")
    with pytest.raises(Conflict, match="already deployed"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id)


def test_staging_needs_no_signoff_and_a_bad_name_says_how_to_fix_it(db, people):
    w = make_world(db, people)
    with pytest.raises(ValidationError, match="lower-case"):
        deployments.request_deployment(
            db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="Churn API!"
        )
    req = deployments.request_deployment(
        db,
        actor=people["data_scientist"],
        model_version_id=w.versions[0],
        deployment_name="churn-staging",
        environment="staging",
    )
    assert next(g for g in req.gates if g.gate == "business_signoff").status == "not_required"
    assert collab.signoffs_for(db, "model_version", w.versions[0]) == []
    dep = deployments.deploy(db, actor=people["ops"], request_id=req.id)
    assert dep.environment == "staging"


def test_a_canary_sends_a_share_to_a_challenger_and_can_be_stopped(db, people):
    w = make_world(db, people, versions=2)
    _deployed(db, people, w.versions[0])
    dep = deployments.set_canary(
        db, actor=people["ops"], deployment_name="churn", model_version_id=w.versions[1], share=0.2
    )
    assert dep.canary_model_version_id == w.versions[1] and dep.canary_share == 0.2
    assert deployments.where_deployed(db, w.versions[1])[0].role == "canary"
    dep = deployments.set_canary(db, actor=people["ops"], deployment_name="churn", model_version_id=None)
    assert dep.canary_model_version_id is None
    kinds = [e.kind for e in deployments.history(db, deployment_name="churn")]
    assert kinds[:2] == ["canary_stop", "canary_start"]


def test_api_keys_are_stored_hashed_work_until_revoked_and_only_ops_manage_them(db, people):
    w = make_world(db, people)
    dep = _deployed(db, people, w.versions[0])
    with pytest.raises(PermissionDenied):
        apikeys.create_key(db, actor=people["data_scientist"], deployment_name="churn")
    k, key = apikeys.create_key(db, actor=people["ops"], deployment_name="churn", name="crm")
    assert key.startswith("mlk_") and k.prefix == key[:10]
    with db.read() as s:
        stored = s.exec(select(ApiKey.key_hash)).all()
    assert key not in stored and apikeys.hash_key(key) in stored
    assert apikeys.deployment_for_key(db, key) == dep.id
    apikeys.revoke_key(db, actor=people["ops"], key_id=k.id)
    assert apikeys.deployment_for_key(db, key) is None
    with pytest.raises(Conflict, match="already revoked"):
        apikeys.revoke_key(db, actor=people["ops"], key_id=k.id)
    assert apikeys.list_keys(db, deployment_name="churn")[0].revoked_by == "omar"


def test_batched_writer_loses_nothing_on_close_and_labels_join_by_request_id(db, people):
    w = make_world(db, people)
    dep = _deployed(db, people, w.versions[0])
    writer = predictions.PredictionWriter(db, flush_seconds=10, max_batch=50)
    rows = [
        predictions.prediction_row(
            request_id=f"r{i}",
            deployment_id=dep.id,
            model_version_id=dep.model_version_id,
            inputs={"age": i},
            prediction=i % 2,
            latency_ms=1.0,
        )
        for i in range(120)
    ]
    rows.append(
        predictions.prediction_row(
            request_id="bad",
            deployment_id=dep.id,
            model_version_id=None,
            inputs=None,
            prediction=None,
            latency_ms=1.0,
            status="error",
            error="400: bad",
        )
    )
    writer.put(rows)
    writer.close()
    assert predictions.count_predictions(db, deployment_id=dep.id) == 121
    result = predictions.apply_labels(
        db,
        deployment_id=dep.id,
        labels=[{"request_id": "r1", "label": 1}, {"request_id": "nope", "label": 0}, {"label": 1}],
    )
    assert result.accepted == ["r1"] and result.unknown == ["nope"] and len(result.invalid) == 1
    csv_result = predictions.upload_labels_csv(
        db, actor=people["ops"], deployment_name="churn", data=b"request_id,label\nr2,0\nr3,1\nghost,1\n"
    )
    assert csv_result.accepted == ["r2", "r3"] and csv_result.unknown == ["ghost"]
    labelled = {
        p.request_id: p.label
        for p in predictions.recent_predictions(db, deployment_name="churn", limit=200)
        if p.label is not None
    }
    assert labelled == {"r1": 1, "r2": 0, "r3": 1}
    row = next(r for r in deployments.overview(db) if r.name == "churn")
    assert row.requests == 121 and row.errors == 1 and abs(row.error_rate - 1 / 121) < 1e-9


def test_a_label_file_without_the_right_columns_says_which_are_needed(db, people):
    with pytest.raises(ValidationError, match="request_id and label"):
        predictions.parse_labels_csv(b"id,y\n1,2\n")


def test_batch_scoring_runs_as_a_job_logs_every_row_and_stores_a_downloadable_file(db, people):
    from mlops_core import artifacts, jobs
    from tests.services.experiments_world import run_jobs

    w = make_world(db, people)
    dep = _deployed(db, people, w.versions[0])
    frame = make_customers(25, seed=21).drop(columns=["churned"])
    job_id = predictions.submit_batch_scoring(
        db,
        actor=people["data_scientist"],
        deployment_name="churn",
        filename="march.csv",
        data=frame.to_csv(index=False).encode(),
    )
    assert run_jobs(db) == ["finished"]
    job = jobs.get_job(db, job_id)
    scored = artifacts.get_bytes(job.result["output_key"]).decode().splitlines()
    assert scored[0].endswith("request_id,prediction,score") and len(scored) == 26
    batch = [p for p in predictions.recent_predictions(db, deployment_name="churn", limit=100) if p.source == "batch"]
    assert len(batch) == 25 and all(p.model_version_id == dep.model_version_id for p in batch)
    with pytest.raises(PermissionDenied):
        predictions.submit_batch_scoring(
            db, actor=people["business"], deployment_name="churn", filename="x.csv", data=b"a\n1\n"
        )
