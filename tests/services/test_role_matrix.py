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
    "run.cancel": {"data_scientist", "admin"},
    "prediction.label": {"ops", "data_scientist", "admin"},
    "batch.score": {"ops", "data_scientist", "admin"},
}
ROLES = ["business", "data_engineer", "data_scientist", "ops", "admin"]


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_permission_table_matches_design(action):
    from mlops_core.services.auth import Actor

    allowed = {r for r in ROLES if can(Actor(1, "x", r), action)}
    assert allowed == EXPECTED[action]


def test_every_permission_has_an_expectation_or_is_everyone():
    for action, roles in PERMISSIONS.items():
        assert action in EXPECTED or set(roles) == set(ROLES), action


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
    v = datasets.register_version_from_frame(db, actor=Actor.system(), dataset_name="matrix-train",
                                             frame=_dataset_frame(), use_case_id=uc.id)
    return uc.id, v.id


def _start_run(db, actor):
    from mlops_core.services import experiments

    uc_id, v_id = _trainable_version(db)
    experiments.start_run(db, actor=actor, use_case_id=uc_id, dataset_version_id=v_id,
                          config={"target": "churned", "algorithm": "logistic_regression"})


def _cancel_run(db, actor):
    from mlops_core.services import experiments
    from mlops_core.services.auth import Actor

    uc_id, v_id = _trainable_version(db)
    run = experiments.start_run(db, actor=Actor.system(), use_case_id=uc_id, dataset_version_id=v_id,
                                config={"target": "churned", "algorithm": "logistic_regression"})
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
