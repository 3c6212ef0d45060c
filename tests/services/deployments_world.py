"""Test helpers for stage 4: a use case with a model KPI, a validated dataset, trained and registered
model versions (through the real stage 3 path: start_run -> train job -> register_model)."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_core.db import Database
from mlops_core.demo.customers import make_customers
from mlops_core.services import datasets, experiments, registry, usecases
from mlops_core.services.auth import Actor
from tests.services.experiments_world import run_jobs

CONFIG = {
    "algorithm": "logistic_regression",
    "target": "churned",
    "params": {},
    "split": "holdout",
    "test_size": 0.25,
    "seed": 7,
}


@dataclass
class World:
    use_case_id: int
    dataset_version_id: int
    kpi_id: int
    versions: list[int]  # model version ids, oldest first


def train_version(
    db: Database,
    people: dict[str, Actor],
    *,
    use_case_id: int,
    dataset_version_id: int,
    config: dict | None = None,
    model_name: str = "churn-model",
) -> int:
    sara = people["data_scientist"]
    run = experiments.start_run(
        db, actor=sara, use_case_id=use_case_id, dataset_version_id=dataset_version_id, config=dict(config or CONFIG)
    )
    statuses = run_jobs(db)
    assert experiments.get_run(db, run.id).status == "finished", statuses
    return registry.register_model(db, actor=sara, run_id=run.id, name=model_name).id


def make_world(
    db: Database, people: dict[str, Actor], *, n: int = 200, versions: int = 1, target: float = 0.6
) -> World:
    alice, dan = people["business"], people["data_engineer"]
    uc = usecases.create_use_case(
        db,
        actor=alice,
        title="Customer churn",
        problem_statement="Customers leave.",
        members={"ops": ["omar"], "data_scientist": ["sara"]},
    )
    kpi = usecases.add_kpi(
        db,
        actor=alice,
        use_case_id=uc.id,
        kind="model",
        metric="roc_auc",
        direction=">=",
        target=target,
        name="ranking quality",
    )
    dv = datasets.register_version_from_frame(
        db, actor=dan, dataset_name="customers", frame=make_customers(n, seed=3), use_case_id=uc.id
    )
    assert datasets.is_trainable(dv), dv.status
    ids = [
        train_version(db, people, use_case_id=uc.id, dataset_version_id=dv.id, config=dict(CONFIG, seed=7 + i))
        for i in range(versions)
    ]
    return World(use_case_id=uc.id, dataset_version_id=dv.id, kpi_id=kpi.id, versions=ids)
