"""A deployment running a canary, with a logged prediction per arm (shared by the canary service, page and
API tests): the champion of tests/services/monitoring_world, a challenger version 2, a canary_start event
and rows the scoring service would have written (challenger rows carry the champion's shadow answer)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np

from mlops_core.db import Database, utcnow
from mlops_core.models.deployments import Deployment, DeploymentEvent, Prediction
from mlops_core.models.experiments import ModelVersion
from tests.services.monitoring_world import World


def add_challenger(db: Database, world: World, *, share: float = 0.2, minutes_ago: int = 60) -> int:
    """Version 2 of the world's model as the canary since `minutes_ago`; returns its id."""
    with db.unit_of_work() as s:
        v1 = s.get(ModelVersion, world.model_version_id)
        v2 = ModelVersion(**{**v1.model_dump(exclude={"id", "created_at"}), "version": 2})
        s.add(v2)
        s.flush()
        dep = s.get(Deployment, world.deployment_id)
        dep.canary_model_version_id, dep.canary_share = v2.id, share
        s.add(dep)
        s.add(
            DeploymentEvent(
                deployment_id=dep.id,
                kind="canary_start",
                from_model_version_id=v1.id,
                to_model_version_id=v2.id,
                actor_username="omar",
                at=utcnow() - timedelta(minutes=minutes_ago),
            )
        )
        return v2.id


def log_arm(
    db: Database,
    world: World,
    *,
    challenger_id: int | None,
    n: int,
    latency: float,
    accuracy: float,
    errors: int = 0,
    client_errors: int = 0,
    score: float = 0.5,
    agree: float = 1.0,
    seed: int = 0,
) -> None:
    """n ok rows of one arm (challenger when `challenger_id`), each labelled, right with chance `accuracy`,
    plus `errors` 5xx and `client_errors` 4xx rows; rows are spread over the last 50 minutes."""
    rng = np.random.default_rng(seed)
    now = utcnow()
    mv = challenger_id or world.model_version_id
    rows = []
    for i in range(n):
        y = int(rng.random() < 0.4)
        pred = y if rng.random() < accuracy else 1 - y
        rows.append(
            Prediction(
                request_id=uuid.uuid4().hex,
                deployment_id=world.deployment_id,
                model_version_id=mv,
                created_at=now - timedelta(minutes=50) + timedelta(seconds=i),
                inputs={"age": 30},
                prediction=pred,
                score=float(np.clip(rng.normal(score, 0.05), 0, 1)),
                shadow_model_version_id=world.model_version_id if challenger_id else None,
                shadow_prediction=(pred if rng.random() < agree else 1 - pred) if challenger_id else None,
                latency_ms=float(rng.normal(latency, 1.0)),
                label=y,
                labelled_at=now,
            )
        )
    for i in range(errors + client_errors):
        rows.append(
            Prediction(
                request_id=uuid.uuid4().hex,
                deployment_id=world.deployment_id,
                model_version_id=mv,
                created_at=now - timedelta(minutes=40),
                shadow_model_version_id=world.model_version_id if challenger_id else None,
                latency_ms=latency,
                status="error",
                error="500: the model failed" if i < errors else "401: no valid API key",
            )
        )
    with db.unit_of_work() as s:
        s.add_all(rows)
