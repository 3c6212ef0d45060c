"""The fairness gate of a deployment (issue 17): the largest gap of a KPI metric between the groups of a
named column, on the model's test split, stays within a tolerance.

The figure is fairlearn's `MetricFrame(...).difference(method="between_groups")`. Groups with fewer rows
than `Settings.segment_min_rows` are left out (and named): a handful of rows would decide the gate by noise.
Ops set the gate per deployment (`set_fairness_gate`); `deployments.gate_checks` adds `fairness_gates`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlmodel import select

from . import audit
from ..config import get_settings
from ..db import Database, utcnow
from ..errors import ValidationError
from ..models.deployments import Deployment, GateResult
from ..models.estimates import DeploymentFairness, FairnessGatePublic
from ..models.experiments import ModelVersion
from ._common import deployment_by_name
from .auth import Actor, require

GATE = ("fairness", "Fairness: KPI gap between groups within tolerance")
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "selection_rate")
REGRESSION = ("mae", "rmse")
METRICS = CLASSIFICATION + REGRESSION


def _public(row: DeploymentFairness) -> FairnessGatePublic:
    return FairnessGatePublic.model_validate(row, from_attributes=True)


def set_fairness_gate(
    db: Database,
    *,
    actor: Actor,
    deployment_name: str,
    column: str,
    metric: str = "recall",
    tolerance: float = 0.1,
    enabled: bool = True,
) -> FairnessGatePublic:
    """Create or change the fairness gate of a deployment (ops and admins, like the regression tolerance)."""
    require(actor, "deployment.deploy")
    column = (column or "").strip()
    if not column:
        raise ValidationError("name the column whose groups are compared (e.g. region)")
    if metric not in METRICS:
        raise ValidationError(f"the fairness metric must be one of {', '.join(METRICS)} (got {metric!r})")
    try:
        tolerance = float(tolerance)
    except (TypeError, ValueError):
        raise ValidationError("the tolerance is a number: the largest gap allowed between two groups") from None
    if not 0 <= tolerance <= 1e6 or tolerance != tolerance:
        raise ValidationError("the tolerance must be zero or a positive number")
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        row = s.exec(select(DeploymentFairness).where(DeploymentFairness.deployment_id == d.id)).first()
        before = None if row is None else {"column": row.column, "metric": row.metric, "tolerance": row.tolerance}
        if row is None:
            row = DeploymentFairness(deployment_id=d.id, column=column, metric=metric, tolerance=tolerance)
        row.column, row.metric, row.tolerance, row.enabled = column, metric, tolerance, bool(enabled)
        row.updated_by, row.updated_at = actor.username, utcnow()
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor=actor,
            action="deployment.fairness",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"fairness gate of {d.name}: {metric} gap between {column} groups <= {tolerance:g}"
            + ("" if enabled else " (off)"),
            before=before,
            after={"column": column, "metric": metric, "tolerance": tolerance, "enabled": bool(enabled)},
        )
        return _public(row)


def get_fairness_gate(db: Database, *, deployment_name: str) -> FairnessGatePublic | None:
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        row = s.exec(select(DeploymentFairness).where(DeploymentFairness.deployment_id == d.id)).first()
        return None if row is None else _public(row)


def group_gap(y_true, y_pred, groups, metric: str, min_rows: int) -> dict[str, Any]:
    """{"gap", "by_group": {group: value}, "left_out": {group: rows}} with fairlearn's MetricFrame."""
    import pandas as pd
    from fairlearn.metrics import MetricFrame, selection_rate
    from sklearn import metrics as skm

    from ..ml.scoring import label_key, positive_label

    g = pd.Series(groups).astype(object).where(pd.Series(groups).notna(), "(missing)").astype(str).to_numpy()
    counts = pd.Series(g).value_counts()
    small = {str(k): int(v) for k, v in counts.items() if v < min_rows}
    keep = ~np.isin(g, list(small))
    if metric in REGRESSION:
        yt = np.asarray(y_true, dtype=float)[keep]
        yp = np.asarray(y_pred, dtype=float)[keep]
        fn = skm.mean_absolute_error if metric == "mae" else (lambda a, b: float(np.sqrt(skm.mean_squared_error(a, b))))
    else:
        yt_k = np.array([label_key(v) for v in y_true], dtype=object)
        yp_k = np.array([label_key(v) for v in y_pred], dtype=object)
        pos = positive_label(set(yt_k.tolist()) | set(yp_k.tolist()))
        yt = (yt_k == pos).astype(int)[keep]
        yp = (yp_k == pos).astype(int)[keep]
        fn = {
            "accuracy": skm.accuracy_score,
            "precision": lambda a, b: skm.precision_score(a, b, zero_division=0),
            "recall": lambda a, b: skm.recall_score(a, b, zero_division=0),
            "f1": lambda a, b: skm.f1_score(a, b, zero_division=0),
            "selection_rate": selection_rate,
        }[metric]
    if keep.sum() == 0 or len(set(g[keep].tolist())) < 2:
        return {"gap": None, "by_group": {}, "left_out": small}
    mf = MetricFrame(metrics=fn, y_true=yt, y_pred=yp, sensitive_features=g[keep])
    by_group = {str(k): float(v) for k, v in mf.by_group.items()}
    return {"gap": float(mf.difference(method="between_groups")), "by_group": by_group, "left_out": small}


def fairness_gates(db: Database, *, model_version_id: int, deployment_name: str | None) -> list[GateResult]:
    """The gate list item of the deployment's fairness gate ([] when it has none or it is off)."""
    if not deployment_name:
        return []
    with db.read() as s:
        d = s.exec(select(Deployment).where(Deployment.name == deployment_name)).first()
        if d is None:
            return []
        row = s.exec(select(DeploymentFairness).where(DeploymentFairness.deployment_id == d.id)).first()
        if row is None or not row.enabled:
            return []
        task = (s.get(ModelVersion, model_version_id).task or "") if s.get(ModelVersion, model_version_id) else ""
        cfg = {"column": row.column, "metric": row.metric, "tolerance": row.tolerance}
        column, metric, tolerance = row.column, row.metric, row.tolerance
    title = GATE[1]
    if (metric in REGRESSION) != (task == "regression"):
        return [
            GateResult(
                gate=GATE[0],
                title=title,
                status="failed",
                detail=f"{metric} does not fit a {task or 'model of unknown task'}; choose "
                f"{' or '.join(REGRESSION) if task == 'regression' else ', '.join(CLASSIFICATION)}",
                evidence=cfg,
            )
        ]
    from .monitoring.estimates import reference

    ref = reference(db, model_version_id)
    frame = ref.get("frame")
    if frame is None or ref.get("labels") is None or ref.get("predictions") is None:
        detail = f"no labelled test split to compare groups on: {ref.get('reason') or 'the model has no reference'}"
        return [GateResult(gate=GATE[0], title=title, status="failed", detail=detail, evidence=cfg)]
    if column not in frame.columns:
        return [
            GateResult(
                gate=GATE[0],
                title=title,
                status="failed",
                detail=f"the column {column!r} is not one of the model's inputs ({', '.join(frame.columns)})",
                evidence=cfg,
            )
        ]
    out = group_gap(ref["labels"], ref["predictions"], frame[column], metric, get_settings().segment_min_rows)
    ev = {**cfg, **out, "rows": int(len(frame))}
    left = (
        f"; left out (too few rows): {', '.join(f'{k} ({v})' for k, v in out['left_out'].items())}"
        if out["left_out"]
        else ""
    )
    if out["gap"] is None:
        detail = f"fewer than two groups of {column} with enough rows on the test split{left}"
        return [GateResult(gate=GATE[0], title=title, status="failed", detail=detail, evidence=ev)]
    groups = ", ".join(f"{k} {v:.3f}" for k, v in sorted(out["by_group"].items(), key=lambda kv: kv[1]))
    ok = out["gap"] <= tolerance
    detail = (
        f"largest {metric} gap between {column} groups is {out['gap']:.3f} "
        f"({'within' if ok else 'above'} the tolerance {tolerance:g}): {groups}{left}"
    )
    return [GateResult(gate=GATE[0], title=title, status="passed" if ok else "failed", detail=detail, evidence=ev)]
