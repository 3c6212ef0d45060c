"""Issue 15 (every role's screens), deployment side: a model of another use case or with other inputs is
stopped by gates that say why in words; a decided request closes its sign-off and notifications; the
sign-off evidence reads as a KPI table; production rollbacks need a reason; retraining on the champion's
own data warns before anyone approves, and a failed retraining says why and what to do next."""

from __future__ import annotations

import pytest
from sqlmodel import select

from mlops_core.demo.customers import make_customers
from mlops_core.errors import ValidationError
from mlops_core.models.collab import InboxItem
from mlops_core.services import collab, datasets, deployments, retraining, usecases
from tests.conftest import make_people
from tests.services.deployments_world import CONFIG, make_world, train_version


@pytest.fixture
def quick_loads(monkeypatch):
    """The model-load gate (a separate process per check, tested in test_deployments.py) passes at once:
    these tests are about the other gates."""
    monkeypatch.setattr(
        deployments, "_gate_loads", lambda db, mv: deployments._gate("model_loads", "Model loads", "passed", "stubbed")
    )


@pytest.fixture
def lite(sqlite_db):
    """SQLite only for the training-heavy tests (the CI time budget): their logic is not SQL-dialect specific."""
    return sqlite_db, make_people(sqlite_db)


def _unread(db, username: str, kind: str) -> int:
    from mlops_core.models.users import User

    with db.read() as s:
        uid = s.exec(select(User.id).where(User.username == username)).one()
        return len(
            s.exec(
                select(InboxItem).where(InboxItem.user_id == uid, InboxItem.kind == kind, InboxItem.read_at.is_(None))
            ).all()
        )


def _deploy(db, people, mv_id: int, name: str, environment: str = "production") -> None:
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=mv_id, deployment_name=name, environment=environment
    )
    for so in collab.signoffs_for(db, "model_version", mv_id):
        if so.status == "pending":
            collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True, confirm_shortfalls=True)
    deployments.deploy(db, actor=people["ops"], request_id=req.id, reason="first release")


def test_another_use_cases_model_fails_its_gates_in_words_and_a_schema_change_must_be_acknowledged(lite, quick_loads):
    db, people = lite
    w = make_world(db, people, versions=2)  # "Customer churn": customers@v1, churn-model v1, roc_auc >= 0.6
    _deploy(db, people, w.versions[0], "churn")
    wine = usecases.create_use_case(
        db, actor=people["business"], title="Wine quality grading", problem_statement="Grade wines."
    )
    usecases.add_kpi(
        db, actor=people["business"], use_case_id=wine.id, kind="model", metric="roc_auc", direction=">=", target=0.5
    )
    # A second dataset whose first version is v1 too (wine_lab@v1 next to customers@v1), without "region".
    lab = datasets.register_version_from_frame(
        db,
        actor=people["data_engineer"],
        dataset_name="wine_lab",
        frame=make_customers(200, seed=5).drop(columns=["region"]),
        use_case_id=wine.id,
    )
    wine_mv = train_version(
        db, people, use_case_id=wine.id, dataset_version_id=lab.id, config=dict(CONFIG), model_name="wine-model"
    )

    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=wine_mv, deployment_name="churn"
    )
    gates = {g.gate: g for g in req.gates}
    assert gates["use_case_match"].status == "failed"
    assert "wine-model v1 belongs to “Wine quality grading”, but churn serves “Customer churn”" in (
        gates["use_case_match"].detail
    )
    assert gates["schema_match"].status == "failed" and "no longer used: region" in gates["schema_match"].detail
    # the KPI gate holds the model to the endpoint's use case, not to its own
    assert gates["kpis_met"].evidence["use_case_id"] == w.use_case_id and "“Customer churn”" in gates["kpis_met"].detail
    # the evidence carries the dataset's identity, not only its version number
    data = gates["data_validated"].evidence
    assert data["dataset"] == "wine_lab@v1" and data["dataset_id"] == lab.dataset_id
    assert data["dataset_id"] != datasets.get_version(db, w.dataset_version_id).dataset_id
    assert collab.signoffs_for(db, "model_version", wine_mv) == []  # business is not asked about a wrong model
    with pytest.raises(ValidationError, match="Model belongs to the endpoint's use case"):
        deployments.deploy(db, actor=people["ops"], request_id=req.id)

    # An endpoint tied to no use case: only the changed inputs stop the wine model, until acknowledged.
    deployments.create_deployment(db, actor=people["ops"], name="lab", environment="staging")
    _deploy(db, people, w.versions[0], "lab", environment="staging")
    plain = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=wine_mv, deployment_name="lab", environment="staging"
    )
    assert {g.gate: g.status for g in plain.gates}["schema_match"] == "failed"
    acked = deployments.request_deployment(
        db,
        actor=people["data_scientist"],
        model_version_id=wine_mv,
        deployment_name="lab",
        environment="staging",
        acknowledge_schema_change=True,
    )
    schema = next(g for g in acked.gates if g.gate == "schema_match")
    assert schema.status == "waived" and "sara acknowledged the change" in schema.detail
    assert deployments.get_request(db, acked.id).schema_change_ack == "sara"
    deployments.deploy(db, actor=people["ops"], request_id=acked.id, reason="new inputs agreed with the callers")
    assert deployments.get_by_name(db, "lab").model_version_id == wine_mv
    deployments.rollback(db, actor=people["ops"], deployment_name="lab")  # staging: no reason needed

    # production: a rollback without a reason is refused
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    _deploy(db, people, w.versions[1], "churn")
    with pytest.raises(ValidationError, match="needs a reason"):
        deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="  ")
    assert (
        deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="complaints").model_version_id
        == (w.versions[0])
    )


def test_a_rejected_request_closes_its_signoff_and_notifications_and_the_review_shows_the_missed_kpi(
    db, people, quick_loads
):
    w = make_world(db, people, target=0.99)  # roc_auc misses its target
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    so = collab.get_signoff(db, req.signoff_id)
    review = deployments.signoff_review(db, so)
    assert review.model_version == "churn-model v1" and review.deployments == ["churn"]
    assert review.use_case == "Customer churn"
    [kpi] = review.kpis
    assert (kpi.metric, kpi.direction, kpi.target, kpi.status) == ("roc_auc", ">=", 0.99, "missed")
    assert review.dataset == "customers@v1" and review.dataset_status == "validated" and review.dataset_id
    assert review.shortfalls and "target >= 0.99" in review.shortfalls[0]
    assert _unread(db, "alice", "signoff") == 1 and _unread(db, "omar", "deployment_request") == 1

    deployments.reject_request(db, actor=people["ops"], request_id=req.id, reason="recall too low")
    closed = collab.get_signoff(db, so.id)
    assert closed.status == "withdrawn" and "rejected: recall too low" in closed.reason
    assert collab.pending_for(db, actor=people["business"]) == []  # no inbox offers "Approve" any more
    assert _unread(db, "alice", "signoff") == 0 and _unread(db, "omar", "deployment_request") == 0


def test_a_decided_signoff_is_read_for_everyone_it_was_asked_of(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Fraud", problem_statement="Fraud.")
    so = collab.request_signoff(
        db,
        actor=people["data_scientist"],
        entity_type="use_case",
        entity_id=uc.id,
        title="Approve Fraud",
        assignee_role="business",
    )
    assert _unread(db, "alice", "signoff") == 1
    collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True)
    assert _unread(db, "alice", "signoff") == 0


def test_retraining_on_the_champions_own_data_warns_first_and_a_failed_gate_is_explained(lite, quick_loads):
    db, people = lite
    from mlops_core.jobs import queue, runner
    from mlops_core.services import monitoring
    from tests.services.monitoring_world import customers, log_traffic
    from tests.services.monitoring_world import make_world as monitoring_world

    world = monitoring_world(db, people, accuracy_target=0.999)  # no retrained model can meet it
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name=world.deployment_name,
        window_kind="last_n",
        window_size=300,
        schedule_seconds=None,
        retraining_policy="propose",
    )
    log_traffic(db, world, customers(300, seed=5, drift=1.0))
    monitoring.run_monitor(db, deployment_name="churn")
    [p] = retraining.list_proposals(db)
    warning = retraining.same_data_warning(db, p)
    assert warning.startswith("no newer data than the champion:") and "@v1" in warning

    retraining.decide_proposal(db, actor=people["ops"], proposal_id=p.id, approve=True, note="try anyway")
    job = queue.claim_next(db, worker="test", kinds=["train"])
    runner.execute(db, job_id=job.id, kind=job.kind, payload=job.payload, worker="test", attempt=job.attempts)
    retraining.advance_retraining(db)
    p = retraining.get_proposal(db, p.id)
    assert p.state == "finished"
    assert "did not pass the deployment gates: model kpis met on the test metrics" in p.note
    assert "Next step:" in p.note and "kpis_met" not in p.note
    assert p.gate_summary["run_id"] == p.run_id and p.gate_summary["explained"][0]["next_step"]
    # business is not asked to sign off a challenger that fails the other gates
    assert collab.signoffs_for(db, "model_version", p.model_version_id) == []
