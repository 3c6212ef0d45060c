"""DESIGN.md's role table, checked at the service layer: each action, each role, allowed or denied.

Every stage adds its actions to `CASES` (action -> a call that performs it), so the
matrix grows with the product. Allowed roles come from `mlops_core.services.auth.PERMISSIONS`
and the expectations below pin them to the table in DESIGN.md.
"""

import pytest

from mlops_core.errors import PermissionDenied
from mlops_core.services import users
from mlops_core.services.auth import PERMISSIONS, can

# DESIGN.md "Who uses it": the roles that may do each action (admin may do everything).
EXPECTED = {
    "user.manage": {"admin"},
    "usecase.write": {"business", "admin"},
    "kpi.write": {"business", "admin"},
    "kpi.reading": {"business", "admin"},
    "deployment.signoff": {"business", "admin"},
    "dataset.write": {"data_engineer", "admin"},
    "dataset.approve": {"data_engineer", "admin"},
    "ingestion.schedule": {"data_engineer", "admin"},
    "run.start": {"data_scientist", "admin"},
    "model.register": {"data_scientist", "admin"},
    "deployment.request": {"data_scientist", "admin"},
    "deployment.deploy": {"ops", "admin"},
    "apikey.manage": {"ops", "admin"},
    "monitor.configure": {"ops", "admin"},
    "alert.ack": {"ops", "admin"},
    "monitor.run": {"ops", "admin"},
    "retraining.decide": {"ops", "admin"},
    "canvas.write": {"business", "data_scientist", "admin"},
    "value.write": {"business", "admin"},
    "threshold.set": {"data_scientist", "admin"},
    # issue 18: anyone watches; the business owner or ops set a use case's chat webhook; admins read the delivery log
    "notify.watch": {"business", "data_engineer", "data_scientist", "ops", "admin"},
    "notify.usecase_webhook": {"business", "ops", "admin"},
    "notify.delivery_log": {"admin"},
    "run.cancel": {"data_scientist", "admin"},
    "prediction.label": {"ops", "data_scientist", "admin"},
    "batch.score": {"ops", "data_scientist", "admin"},
    "audit.read": {"business", "data_engineer", "data_scientist", "ops", "admin"},
    "comment.write": {"business", "data_engineer", "data_scientist", "ops", "admin"},
    "signoff.request": {"business", "data_engineer", "data_scientist", "ops", "admin"},
    "signoff.decide_any": {"admin"},
    "run.write_any": {"admin"},
    "run.annotate": {"data_scientist", "admin"},  # issue 15: run notes and tags (the owner always may)
    "deployment.create": {"ops", "data_scientist", "admin"},
    "deployment.reevaluate": {"ops", "data_scientist", "admin"},
    "deployment.override_gates": {"admin"},
}
ROLES = ["business", "data_engineer", "data_scientist", "ops", "admin"]


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_permission_table_matches_design(action):
    from mlops_core.services.auth import Actor

    allowed = {r for r in ROLES if can(Actor(1, "x", r), action)}
    assert allowed == EXPECTED[action]


def test_every_action_in_the_permission_table_has_an_expectation_and_none_is_left_over():
    assert set(PERMISSIONS) == set(EXPECTED)


def _create_user(db, actor, n=[0]):
    n[0] += 1
    users.create_user(db, actor=actor, username=f"newbie{n[0]}", password="a-long-enough-pass", role="ops")


def _set_role(db, actor):
    users.set_role(db, actor=actor, username="omar", role="ops")


def _token_for_other(db, actor):
    users.create_token(db, actor=actor, username="dan" if actor.username != "dan" else "alice")


def _use_case(db):
    from mlops_core.services import usecases
    from mlops_core.services.auth import Actor

    return usecases.create_use_case(db, actor=Actor.system(), title="Matrix case", owner_username="alice")


def _create_use_case(db, actor):
    from mlops_core.services import usecases

    usecases.create_use_case(db, actor=actor, title="Another case")


def _add_kpi(db, actor):
    from mlops_core.services import usecases

    usecases.add_kpi(db, actor=actor, use_case_id=_use_case(db).id, kind="model", metric="recall", target=0.7)


def _comment(db, actor):
    from mlops_core.services import collab

    collab.add_comment(db, actor=actor, entity_type="use_case", entity_id=1, body="hello @alice")


def _dataset_frame(seed=0):
    from mlops_core.demo.customers import make_customers

    return make_customers(60, seed=seed)


def _register_dataset(db, actor):
    from mlops_core.services import datasets

    datasets.register_version_from_frame(db, actor=actor, dataset_name="matrix", frame=_dataset_frame())


def _waive_dataset_version(db, actor):
    from mlops_core.services import datasets
    from mlops_core.services.auth import Actor

    datasets.register_version_from_frame(db, actor=Actor.system(), dataset_name="matrix", frame=_dataset_frame())
    bad = _dataset_frame(1).assign(monthly_charges=-1.0)
    v = datasets.register_version_from_frame(db, actor=Actor.system(), dataset_name="matrix", frame=bad)
    datasets.waive_version(db, actor=actor, version_id=v.id, reason="refunds, confirmed with billing")


def _edit_dataset_schema(db, actor):
    from mlops_core.services import datasets
    from mlops_core.services.auth import Actor

    v = datasets.register_version_from_frame(db, actor=Actor.system(), dataset_name="matrix", frame=_dataset_frame())
    cols = [dict(c, nullable=True, max_null_share=0.5) for c in datasets.current_schema(db, v.dataset_id).columns]
    datasets.update_schema(db, actor=actor, dataset_id=v.dataset_id, columns=cols)


def _trainable_version(db):
    from mlops_core.services import datasets
    from mlops_core.services.auth import Actor

    uc = _use_case(db)
    v = datasets.register_version_from_frame(
        db, actor=Actor.system(), dataset_name="matrix-train", frame=_dataset_frame(), use_case_id=uc.id
    )
    return uc.id, v.id


def _start_run(db, actor):
    from mlops_core.services import experiments

    uc_id, v_id = _trainable_version(db)
    experiments.start_run(
        db,
        actor=actor,
        use_case_id=uc_id,
        dataset_version_id=v_id,
        config={"target": "churned", "algorithm": "logistic_regression"},
    )


def _cancel_run(db, actor):
    from mlops_core.services import experiments
    from mlops_core.services.auth import Actor

    uc_id, v_id = _trainable_version(db)
    run = experiments.start_run(
        db,
        actor=Actor.system(),
        use_case_id=uc_id,
        dataset_version_id=v_id,
        config={"target": "churned", "algorithm": "logistic_regression"},
    )
    experiments.cancel_run(db, actor=actor, run_id=run.id)


def _register_model(db, actor):
    from sklearn.dummy import DummyClassifier

    from mlops_core.services import experiments, registry
    from mlops_core.services.auth import Actor

    uc_id, v_id = _trainable_version(db)
    system = Actor.system()
    run = experiments.create_sdk_run(db, actor=system, use_case_id=uc_id, dataset_version_id=v_id)
    experiments.log_model_for_run(db, actor=system, run_id=run.id, estimator=DummyClassifier().fit([[0], [1]], [0, 1]))
    experiments.end_sdk_run(db, actor=system, run_id=run.id)
    registry.register_model(db, actor=actor, run_id=run.id, name="matrix-model")


def _endpoint(db, name="matrix-endpoint"):
    from mlops_core.services import deployments
    from mlops_core.services.auth import Actor

    return deployments.create_deployment(db, actor=Actor.system(), name=name, environment="staging")


def _create_deployment(db, actor):
    from mlops_core.services import deployments

    deployments.create_deployment(db, actor=actor, name=f"ep-{actor.username}", environment="staging")


def _set_tolerance(db, actor):
    from mlops_core.services import deployments

    deployments.set_regression_tolerance(db, actor=actor, deployment_name=_endpoint(db).name, tolerance=0.02)


def _create_key(db, actor):
    from mlops_core.services import apikeys

    apikeys.create_key(db, actor=actor, deployment_name=_endpoint(db).name)


def _signoff_for(db, requester):
    from mlops_core.services import collab

    return collab.request_signoff(
        db,
        actor=requester,
        entity_type="use_case",
        entity_id=1,
        title="Go live?",
        assignee_role="business",
        evidence={"x": 1},
    )


def _decide_someone_elses_signoff(db, actor):
    """A sign-off asked of the business role, requested by someone else: business decides it as the role
    asked; otherwise only signoff.decide_any (admin) may."""
    from mlops_core.services import collab
    from mlops_core.services.auth import Actor

    so = _signoff_for(db, Actor.system())
    collab.decide_signoff(db, actor=actor, signoff_id=so.id, approve=True)


CASES = {
    "usecase.create": (_create_use_case, {"business", "admin"}),
    "kpi.create": (_add_kpi, {"business", "admin"}),
    "comment.add": (_comment, {"business", "data_engineer", "data_scientist", "ops", "admin"}),
    "dataset.register": (_register_dataset, {"data_engineer", "admin"}),
    "dataset.waive": (_waive_dataset_version, {"data_engineer", "admin"}),
    "dataset.schema.update": (_edit_dataset_schema, {"data_engineer", "admin"}),
    "user.create": (_create_user, {"admin"}),
    "user.set_role": (_set_role, {"admin"}),
    "user.token_for_someone_else": (_token_for_other, {"admin"}),
    "run.start": (_start_run, {"data_scientist", "admin"}),
    "run.cancel": (_cancel_run, {"data_scientist", "admin"}),
    "model.register": (_register_model, {"data_scientist", "admin"}),
    "deployment.create": (_create_deployment, {"ops", "data_scientist", "admin"}),
    "deployment.deploy": (_set_tolerance, {"ops", "admin"}),
    "apikey.manage": (_create_key, {"ops", "admin"}),
    "signoff.decide": (_decide_someone_elses_signoff, {"business", "admin"}),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_service_calls_allow_and_deny_each_role_as_designed(db, people, case, role):
    call, allowed = CASES[case]
    actor = people[role]
    if role in allowed:
        call(db, actor)
    else:
        with pytest.raises(PermissionDenied, match=actor.username):
            call(db, actor)


# Actions whose service checks the role before it reads anything: with an id or name that does not exist,
# an allowed role gets past the check to NotFound (or a validation error); a refused role gets PermissionDenied.
def _guarded_calls():
    from mlops_core.services import deployments, monitoring, predictions, retraining

    return {
        "deployment.request": lambda db, a: deployments.request_deployment(
            db, actor=a, model_version_id=999_999, deployment_name="nowhere"
        ),
        "deployment.reevaluate": lambda db, a: deployments.reevaluate_request(db, actor=a, request_id=999_999),
        "deployment.deploy": lambda db, a: deployments.deploy(db, actor=a, request_id=999_999),
        "prediction.label": lambda db, a: predictions.label_predictions(
            db, actor=a, deployment_name="nowhere", labels=[]
        ),
        "batch.score": lambda db, a: predictions.score_records(db, actor=a, deployment_name="nowhere", records=[]),
        "monitor.configure": lambda db, a: monitoring.configure_monitor(db, actor=a, deployment_name="nowhere"),
        "monitor.run": lambda db, a: monitoring.enqueue_monitor_run(db, actor=a, deployment_name="nowhere"),
        "alert.ack": lambda db, a: monitoring.acknowledge_alert(db, actor=a, alert_id=999_999),
        "retraining.decide": lambda db, a: retraining.decide_proposal(db, actor=a, proposal_id=999_999, approve=False),
    }


@pytest.mark.parametrize(
    "action",
    [
        "deployment.request",
        "deployment.reevaluate",
        "deployment.deploy",
        "prediction.label",
        "batch.score",
        "monitor.configure",
        "monitor.run",
        "alert.ack",
        "retraining.decide",
    ],
)
def test_deployment_and_monitoring_services_refuse_exactly_the_roles_the_table_refuses(db, people, action):
    from mlops_core.errors import DomainError

    call = _guarded_calls()[action]
    for role in ROLES:
        actor = people[role]
        if role in EXPECTED[action]:
            with pytest.raises(DomainError) as err:
                call(db, actor)
            assert not isinstance(err.value, PermissionDenied), (role, str(err.value))
        else:
            with pytest.raises(PermissionDenied, match=actor.username):
                call(db, actor)


def test_only_an_admin_may_log_to_or_end_someone_elses_sdk_run(db, people):
    from mlops_core.errors import ValidationError
    from mlops_core.services import experiments

    uc_id, v_id = _trainable_version(db)
    run = experiments.create_sdk_run(db, actor=people["data_scientist"], use_case_id=uc_id, dataset_version_id=v_id)
    other = users.create_user(
        db, actor=people["admin"], username="dora", password="a-long-enough-pass", role="data_scientist"
    )
    from mlops_core.services.auth import Actor

    dora = Actor(other.id, other.username, other.role)
    with pytest.raises(ValidationError, match="belongs to"):
        experiments.end_sdk_run(db, actor=dora, run_id=run.id)
    assert experiments.get_run(db, run.id).status == "running"
    assert experiments.end_sdk_run(db, actor=people["admin"], run_id=run.id).status == "finished"


def test_only_an_admin_sees_and_decides_a_signoff_they_requested_themselves(db, people):
    from mlops_core.services import collab

    mine = _signoff_for(db, people["business"])
    assert mine.id not in [s.id for s in collab.pending_for(db, actor=people["business"])]
    with pytest.raises(PermissionDenied, match="cannot decide it"):
        collab.decide_signoff(db, actor=people["business"], signoff_id=mine.id, approve=True)
    assert mine.id in [s.id for s in collab.pending_for(db, actor=people["admin"])]
    assert collab.decide_signoff(db, actor=people["admin"], signoff_id=mine.id, approve=True).status == "approved"
