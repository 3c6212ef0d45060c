"""Deployment targets and hybrid monitoring uploads (issue 19) on an empty deployment: target and owner
(audited), upload keys (401 without/unknown/revoked, 403 for another deployment), idempotent prediction
batches (a resent batch and re-sent rows are not stored twice), backlog/dropped reported, labels joined."""

from __future__ import annotations

import pytest

from mlops_core.errors import AuthenticationFailed, PermissionDenied, ValidationError
from mlops_core.services import audit, deployments, predictions, targets


def _rows(prefix: str, n: int) -> list[dict]:
    return [
        {
            "request_id": f"{prefix}{i}",
            "created_at": "2026-11-29T10:00:00+00:00",
            "inputs": {"x": i},
            "prediction": i % 2,
            "score": 0.25,
            "latency_ms": 1.5,
        }
        for i in range(n)
    ]


def test_targets_upload_keys_and_idempotent_batches(db, people):
    ops = people["ops"]
    deployments.create_deployment(db, actor=ops, name="edge", environment="production")
    deployments.create_deployment(db, actor=ops, name="other", environment="production")
    assert targets.get_target(db, "edge").target == "hub"
    with pytest.raises(PermissionDenied):
        targets.set_target(db, actor=people["business"], deployment_name="edge", target="bundle")
    with pytest.raises(ValidationError):
        targets.set_target(db, actor=ops, deployment_name="edge", target="lambda")
    t = targets.set_target(db, actor=ops, deployment_name="edge", target="bundle", owner="sara")
    assert (t.target, t.owner) == ("bundle", "sara")
    assert any(e.action == "deployment.target" for e in audit.list_events(db, actor=people["admin"], limit=20).events)

    pub, key = targets.create_upload_key(db, actor=ops, deployment_name="edge")
    _, other_key = targets.create_upload_key(db, actor=ops, deployment_name="other")
    assert key.startswith("mlu_") and pub.prefix == key[:10]
    send = dict(deployment_name="edge", batch_id="batch-0001", rows=_rows("r", 3), backlog=5, dropped=2)
    with pytest.raises(AuthenticationFailed):
        targets.receive_predictions(db, key="", **send)
    with pytest.raises(AuthenticationFailed):
        targets.receive_predictions(db, key="mlu_wrong", **send)
    with pytest.raises(PermissionDenied):
        targets.receive_predictions(db, key=other_key, **send)
    with pytest.raises(ValidationError):
        targets.receive_predictions(db, key=key, **dict(send, batch_id="x"))

    first = targets.receive_predictions(db, key=key, **send)
    assert first == {"batch_id": "batch-0001", "duplicate": False, "stored": 3, "skipped": 0}
    again = targets.receive_predictions(db, key=key, **send)  # the answer was lost: the bundle resends
    assert again["duplicate"] is True and again["stored"] == 0
    # A retry that re-batched rows: the already stored request ids are skipped, never doubled.
    mixed = targets.receive_predictions(db, key=key, **dict(send, batch_id="batch-0002", rows=_rows("r", 5), backlog=0))
    assert (mixed["stored"], mixed["skipped"]) == (2, 3)
    dep_id = deployments.get_by_name(db, "edge").id
    assert predictions.count_predictions(db, deployment_id=dep_id) == 5
    logged = predictions.recent_predictions(db, deployment_name="edge")
    assert {p.source for p in logged} == {"bundle"} and logged[0].score == 0.25
    t = targets.get_target(db, "edge")
    assert (t.rows_received, t.backlog, t.dropped) == (5, 0, 2) and t.last_upload_at is not None

    labels = targets.receive_labels(
        db, deployment_name="edge", key=key, batch_id="labels-001", labels=[{"request_id": "r1", "label": 1}]
    )
    assert labels["accepted"] == 1 and labels["unknown_request_ids"] == []
    assert targets.receive_labels(db, deployment_name="edge", key=key, batch_id="labels-001", labels=[])["duplicate"]

    targets.revoke_upload_key(db, actor=ops, key_id=pub.id)
    with pytest.raises(AuthenticationFailed):
        targets.receive_predictions(db, key=key, **dict(send, batch_id="batch-0003"))
    assert [k.revoked_by for k in targets.list_upload_keys(db, deployment_name="edge")] == ["omar"]
