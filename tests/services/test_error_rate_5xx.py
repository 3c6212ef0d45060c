"""The per-check error rate and its alert count only the service's failures (5xx), not the client's 4xx
(issue 15, problem 13), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from mlops_core.db import utcnow
from mlops_core.models.deployments import Prediction
from mlops_core.services import monitoring
from tests.services.monitoring_world import customers, log_traffic, make_world


def test_client_errors_are_counted_apart_and_do_not_breach_the_error_rate(db, people):
    world = make_world(db, people)
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name="churn",
        window_kind="last_n",
        window_size=300,
        schedule_seconds=None,
        retraining_policy="off",
        max_error_rate=0.05,
    )
    earlier = utcnow() - timedelta(hours=2)  # before the second batch below, which covers the last 50 minutes
    ids = log_traffic(db, world, customers(300, seed=9), error_every=10, start=earlier)  # 30 failed requests
    failed = ids[::10]
    with db.unit_of_work() as s:
        for i, p in enumerate(s.exec(select(Prediction).where(Prediction.request_id.in_(failed))).all()):
            p.error = "401: missing or invalid API key" if i % 3 else "500: the model raised ValueError"
            s.add(p)

    check = monitoring.run_monitor(db, deployment_name="churn")["checks"][0]

    h = check["health"]
    assert h["volume"] == 300 and h["errors"] == 10 and h["client_errors"] == 20
    assert h["error_rate"] == pytest.approx(10 / 300) and h["client_error_rate"] == pytest.approx(20 / 300)
    assert monitoring.list_alerts(db, kind="error_rate") == []  # 3.3 % of 5xx is under the 5 % limit

    # 5xx above the limit still alerts, and the alert says the 4xx were left out
    log_traffic(db, world, customers(300, seed=9), error_every=5)
    check = monitoring.run_monitor(db, deployment_name="churn")["checks"][0]
    assert check["health"]["errors"] == 60 and check["health"]["client_errors"] == 0
    (alert,) = monitoring.list_alerts(db, kind="error_rate")
    assert "(5xx)" in alert.detail
