"""Issue 15, problem 13: the live health chart tells the client's mistakes (4xx) from the service's failures."""

from datetime import timedelta

from mlops_core.db import utcnow
from mlops_core.models.deployments import Deployment, Prediction
from mlops_core.services import monitoring


def test_live_health_splits_client_errors_from_server_errors(db):
    now = utcnow() - timedelta(minutes=20)
    outcomes = [("ok", "")] * 6 + [("error", "401: missing API key"), ("error", "400: bad record")]
    outcomes += [("error", "500: the model failed"), ("error", "model raised ValueError")]
    with db.unit_of_work() as s:
        dep = Deployment(name="split", environment="production")
        s.add(dep)
        s.flush()
        for i, (status, error) in enumerate(outcomes):
            s.add(
                Prediction(
                    request_id=f"e{i}", deployment_id=dep.id, created_at=now, latency_ms=5.0, status=status, error=error
                )
            )
    last = monitoring.live_health(db, deployment_name="split", hours=24, buckets=24)[-1]
    assert (last.volume, last.errors, last.client_errors, last.server_errors) == (10, 4, 2, 2)
    assert (last.client_error_rate, last.server_error_rate, last.error_rate) == (0.2, 0.2, 0.4)
