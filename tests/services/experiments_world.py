"""Test helpers for stage 3: a use case with model KPIs, a small validated customers dataset, and a way to
run queued jobs in-process (the same `runner.execute` the worker's job processes call)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_core.db import Database
from mlops_core.demo.customers import make_customers
from mlops_core.services import datasets, usecases
from mlops_core.services.auth import Actor

FAST = {"params": {}, "split": "holdout", "test_size": 0.25, "seed": 7}


@dataclass
class World:
    use_case_id: int
    version_id: int
    frame: pd.DataFrame
    kpi_ids: dict[str, int]


def small_customers(n: int = 240, seed: int = 3) -> pd.DataFrame:
    return make_customers(n, seed=seed)


def make_world(db: Database, people: dict[str, Actor], *, n: int = 240, name: str = "customers") -> World:
    alice, dan = people["business"], people["data_engineer"]
    uc = usecases.create_use_case(db, actor=alice, title=f"Churn {name}", problem_statement="Customers leave.")
    k1 = usecases.add_kpi(
        db, actor=alice, use_case_id=uc.id, kind="model", metric="roc_auc", direction=">=", target=0.7, warning=0.05
    )
    k2 = usecases.add_kpi(
        db, actor=alice, use_case_id=uc.id, kind="model", metric="recall", direction=">=", target=0.99, warning=0.01
    )
    frame = small_customers(n)
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name=name, frame=frame, use_case_id=uc.id)
    assert datasets.is_trainable(v), v.status
    return World(use_case_id=uc.id, version_id=v.id, frame=frame, kpi_ids={"roc_auc": k1.id, "recall": k2.id})


def run_jobs(db: Database, *, worker: str = "test-worker", limit: int = 20) -> list[str]:
    """Claim and execute queued jobs in this process until the queue is empty; the statuses written."""
    from mlops_core.jobs import queue, runner

    out = []
    for _ in range(limit):
        job = queue.claim_next(db, worker=worker)
        if job is None:
            break
        out.append(
            runner.execute(db, job_id=job.id, kind=job.kind, payload=job.payload, worker=worker, attempt=job.attempts)
        )
    return out
