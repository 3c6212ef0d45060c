"""Model registry: versions from runs, aliases, model card, lineage, loading with skops."""

import pytest
from sqlmodel import select

from mlops_core.errors import PermissionDenied, ValidationError
from mlops_core.services import audit, experiments, registry

from .experiments_world import FAST, make_world, run_jobs


@pytest.fixture
def trained(db, people):
    world = make_world(db, people)
    runs = experiments.start_runs(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", **FAST},
        algorithms=["logistic_regression", "random_forest"],
        params_by_algorithm={"random_forest": {"n_estimators": 10}},
    )
    run_jobs(db)
    return world, runs


def test_registering_runs_numbers_versions_and_moves_the_champion_alias(db, people, trained):
    world, runs = trained
    sara = people["data_scientist"]
    v1 = registry.register_model(
        db,
        actor=sara,
        run_id=runs[0].id,
        name="churn-classifier",
        alias="champion",
        intended_use="retention campaign",
        limitations="one region only",
    )
    v2 = registry.register_model(db, actor=sara, run_id=runs[1].id, name="churn-classifier")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.aliases == ["champion"] and v1.input_schema[0]["name"] == "tenure_months"
    registry.set_alias(db, actor=sara, model_name="churn-classifier", alias="champion", version=2)
    assert registry.resolve_version(db, model_name="churn-classifier", alias="champion").version == 2
    with db.read() as s:  # issue 18: watchers hear of registrations and alias moves
        from mlops_core.models.subscriptions import NotificationEvent

        events = s.exec(select(NotificationEvent).order_by(NotificationEvent.id))
        # the fixture's dataset validation and training record their own events first
        kinds = [(e.kind, e.entity_id) for e in events if e.kind.startswith("model_")]
    assert kinds == [
        ("model_registered", str(v1.id)),
        ("model_aliased", str(v1.id)),
        ("model_registered", str(v2.id)),
        ("model_aliased", str(v2.id)),
    ]
    assert registry.get_model_version(db, v1.id).aliases == []
    events = audit.list_events(db, actor=sara, action="model.").events
    assert {"model.register", "model.alias", "model.create"} <= {e.action for e in events}


def test_a_registered_model_loads_and_predicts_raw_records(db, people, trained):
    world, runs = trained
    mv = registry.register_model(db, actor=people["data_scientist"], run_id=runs[1].id, name="churn-rf")
    model = registry.load_model(db, mv.id)
    preds = model.predict(world.frame.drop(columns=["churned"]).head(5))
    assert len(preds) == 5


def test_model_card_and_lineage_trace_back_to_the_use_case_and_data(db, people, trained):
    world, runs = trained
    mv = registry.register_model(
        db, actor=people["data_scientist"], run_id=runs[0].id, name="churn-lr", intended_use="rank customers"
    )
    card = registry.model_card(db, mv.id)
    assert card.use_case_title == "Churn customers" and card.dataset_label == "customers@v1"
    assert card.intended_use == "rank customers"
    assert {c.kpi.metric: c.status for c in card.kpi_checks}["recall"] == "missed"
    kinds = [n.kind for n in registry.lineage(db, mv.id)]
    assert kinds[:4] == ["use_case", "dataset_version", "run", "model_version"]


def test_only_data_scientists_and_admins_register_and_unfinished_runs_are_refused(db, people, trained):
    world, runs = trained
    with pytest.raises(PermissionDenied):
        registry.register_model(db, actor=people["ops"], run_id=runs[0].id, name="x-model")
    queued = experiments.start_run(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", "algorithm": "logistic_regression", **FAST},
    )
    with pytest.raises(ValidationError, match="only a finished run"):
        registry.register_model(db, actor=people["data_scientist"], run_id=queued.id, name="x-model")
    with pytest.raises(ValidationError, match="model name"):
        registry.register_model(db, actor=people["data_scientist"], run_id=runs[0].id, name="Bad Name!")
