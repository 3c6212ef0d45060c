"""A small served model with logged traffic, shared by the monitoring tests (service, pages)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mlops_core.db import Database, utcnow
from mlops_core.services import datasets, usecases
from mlops_core.services.auth import Actor

FEATURES = ["age", "monthly_spend", "plan", "support_calls"]
SCHEMA = [
    {"name": "age", "type": "number"},
    {"name": "monthly_spend", "type": "number"},
    {"name": "plan", "type": "category", "categories": ["basic", "plus", "premium"]},
    {"name": "support_calls", "type": "integer"},
]
CONFIG = {"algorithm": "logistic_regression", "target": "churned", "task": "classification", "params": {"C": 1.0}}


def customers(n: int, *, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """Customers with a churn label; `drift` > 0 shifts ages and spend and changes the plan mix."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + 15 * drift, 10, n).round(1)
    spend = rng.gamma(2.0, 30 * (1 + drift), n).round(2)
    p = np.array([0.5, 0.3, 0.2]) if drift == 0 else np.array([0.2, 0.3, 0.5])
    plan = rng.choice(["basic", "plus", "premium"], n, p=p)
    calls = rng.poisson(2 + 3 * drift, n).astype("int64")
    churned = (rng.random(n) < 0.3).astype("int64")
    return pd.DataFrame({"age": age, "monthly_spend": spend, "plan": plan, "support_calls": calls, "churned": churned})


@dataclass
class World:
    use_case_id: int
    deployment_id: int
    deployment_name: str
    model_version_id: int
    run_id: int
    dataset_version_id: int
    dataset_id: int


def make_world(
    db: Database, people: dict[str, Actor], *, n_ref: int = 400, name: str = "churn", accuracy_target: float = 0.8
) -> World:
    from mlops_core.models.deployments import Deployment
    from mlops_core.models.experiments import ModelVersion, RegisteredModel, Run

    alice, dan = people["business"], people["data_engineer"]
    uc = usecases.create_use_case(
        db, actor=alice, title=f"Customer churn {name}", members={"ops": ["omar"], "data_scientist": ["sara"]}
    )
    usecases.add_kpi(
        db,
        actor=alice,
        use_case_id=uc.id,
        kind="model",
        metric="accuracy",
        direction=">=",
        target=accuracy_target,
        name="accuracy",
    )
    dv = datasets.register_version_from_frame(
        db, actor=dan, dataset_name=f"customers_{name}", frame=customers(n_ref, seed=1), use_case_id=uc.id
    )
    with db.unit_of_work() as s:
        run = Run(
            name="baseline",
            use_case_id=uc.id,
            dataset_version_id=dv.id,
            status="finished",
            source="ui",
            task="classification",
            target="churned",
            algorithm="logistic_regression",
            config=dict(CONFIG),
            created_by="sara",
        )
        s.add(run)
        s.flush()
        rm = RegisteredModel(name=f"{name}-model", use_case_id=uc.id, created_by="sara")
        s.add(rm)
        s.flush()
        mv = ModelVersion(
            model_id=rm.id,
            version=1,
            run_id=run.id,
            use_case_id=uc.id,
            dataset_version_id=dv.id,
            artifact_key="models/none.skops",
            task="classification",
            target="churned",
            input_schema=SCHEMA,
            metrics={"accuracy": 0.6},
            created_by="sara",
        )
        s.add(mv)
        s.flush()
        dep = Deployment(
            name=name,
            use_case_id=uc.id,
            environment="production",
            model_version_id=mv.id,
            deployed_at=utcnow(),
            created_by="omar",
        )
        s.add(dep)
        s.flush()
        return World(
            use_case_id=uc.id,
            deployment_id=dep.id,
            deployment_name=name,
            model_version_id=mv.id,
            run_id=run.id,
            dataset_version_id=dv.id,
            dataset_id=dv.dataset_id,
        )


def log_traffic(
    db: Database,
    world: World,
    frame: pd.DataFrame,
    *,
    start: datetime | None = None,
    every: timedelta = timedelta(seconds=10),
    latency_ms: float = 20.0,
    error_every: int = 0,
    label_share: float = 0.0,
    label_delay: timedelta = timedelta(seconds=1),
    correct_share: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Insert one prediction per row (predicting the true label for `correct_share` of the labelled
    ones); label `label_share` of them `label_delay` after they were served. Returns request ids."""
    from mlops_core.models.deployments import Prediction

    rng = np.random.default_rng(seed)
    start = start or (utcnow() - every * len(frame))
    ids = []
    records = frame[FEATURES].to_dict("records")
    truth = frame["churned"].tolist()
    rows = []
    for i, rec in enumerate(records):
        at = start + every * i
        rid = uuid.uuid4().hex
        ids.append(rid)
        err = bool(error_every) and i % error_every == 0
        labelled = not err and rng.random() < label_share
        correct = rng.random() < correct_share
        pred = truth[i] if correct else 1 - truth[i]
        rows.append(
            Prediction(
                request_id=rid,
                deployment_id=world.deployment_id,
                model_version_id=world.model_version_id,
                created_at=at,
                inputs=None if err else {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()},
                prediction=None if err else {"prediction": int(pred), "probability": 0.9 if pred else 0.1},
                latency_ms=latency_ms + (i % 7),
                status="error" if err else "ok",
                error="bad input" if err else "",
                label=int(truth[i]) if labelled else None,
                labelled_at=at + label_delay if labelled else None,
            )
        )
    with db.unit_of_work() as s:
        s.add_all(rows)
    return ids
