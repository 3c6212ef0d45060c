"""Canary results (issue 15, ops): the champion and the challenger of a deployment's canary, side by side.

The scoring service sends `canary_share` of the requests to the challenger and scores those with the
champion too (its answer is logged as the row's `shadow_prediction`). Here the prediction log of the
canary period (from its `canary_start` event to the next stop, deploy or rollback, or now) is read per
arm: requests, server errors (5xx), latency, scores and, where labels have arrived, the realized model
metrics. The statistics are pure code in `mlops_core/monitoring/significance.py`.

Attribution: a request refused before scoring (4xx) or failing before the split is logged under the
champion, so the champion arm counts every such error; the error-rate comparison counts 5xx only.
Reading is open to everyone in the workspace (transparency), like the Deployment page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, select

from ..db import Database
from ..models.deployments import DeploymentEvent, Prediction
from ..models.experiments import ModelVersion
from ..monitoring import significance as sig
from ..monitoring.figures import performance_metrics, prediction_value
from . import canvas, usecases
from ._common import aware, deployment_by_name
from .deployments import version_labels

MAX_ROWS = 50_000  # per arm: the newest rows of a long canary are enough to tell
PROPORTION_METRICS = ("accuracy", "precision", "recall")
# A client's mistake (4xx) is logged with its status first; it is not the service's failure.
CLIENT_ERROR = "4__:%"
ENDS = ("canary_stop", "deploy", "rollback", "override")


class CanaryArmPublic(BaseModel):
    role: str  # champion | challenger
    model_version_id: int | None
    label: str
    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    score_mean: float | None = None
    labelled: int = 0
    metrics: dict[str, float] = {}


class CanaryComparisonPublic(BaseModel):
    deployment: str
    active: bool  # the canary is running now
    since: datetime | None = None
    until: datetime | None = None  # None while it runs
    share: float = 0.0
    min_n: int = sig.MIN_N
    champion: CanaryArmPublic | None = None
    challenger: CanaryArmPublic | None = None
    comparisons: list[dict[str, Any]] = []  # significance.Comparison.as_dict(), one per figure
    score_histogram: dict[str, list[float]] = {}
    # On the challenger's own requests both versions answered: how often they agree.
    agreement: float | None = None
    n_agreement: int = 0
    message: str = ""


def _period(s: Session, deployment_id: int) -> tuple[DeploymentEvent | None, DeploymentEvent | None]:
    """The last canary_start of the deployment and the event that ended it (None while it runs)."""
    start = s.exec(
        select(DeploymentEvent)
        .where(DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.kind == "canary_start")
        .order_by(col(DeploymentEvent.at).desc(), col(DeploymentEvent.id).desc())
        .limit(1)
    ).first()
    if start is None:
        return None, None
    end = s.exec(
        select(DeploymentEvent)
        .where(
            DeploymentEvent.deployment_id == deployment_id,
            col(DeploymentEvent.kind).in_(ENDS),
            DeploymentEvent.id > start.id,
        )
        .order_by(col(DeploymentEvent.id))
        .limit(1)
    ).first()
    return start, end


def _arm_conds(deployment_id: int, mv_id: int | None, challenger: bool, since, until) -> list:
    conds = [Prediction.deployment_id == deployment_id, Prediction.model_version_id == mv_id]
    conds.append(
        col(Prediction.shadow_model_version_id).is_not(None)
        if challenger
        else col(Prediction.shadow_model_version_id).is_(None)
    )
    if since is not None:
        conds.append(Prediction.created_at >= since)
    if until is not None:
        conds.append(Prediction.created_at < until)
    return conds


def _read_arm(s: Session, conds: list) -> dict[str, Any]:
    conn = s.connection()
    is_client = sa.and_(Prediction.status != "ok", Prediction.error.like(CLIENT_ERROR))
    n, server, client = conn.execute(
        select(
            sa.func.count(),
            sa.func.sum(sa.case((sa.and_(Prediction.status != "ok", sa.not_(is_client)), 1), else_=0)),
            sa.func.sum(sa.case((is_client, 1), else_=0)),
        ).where(*conds)
    ).one()
    newest = select(Prediction.latency_ms, Prediction.score).where(*conds, Prediction.status == "ok")
    rows = conn.execute(newest.order_by(col(Prediction.created_at).desc()).limit(MAX_ROWS)).all()
    lat = np.array([r[0] for r in rows], dtype=float)
    scores = np.array([r[1] for r in rows if r[1] is not None], dtype=float)
    labelled = s.exec(
        select(Prediction.prediction, Prediction.label, Prediction.shadow_prediction)
        .where(*conds, Prediction.status == "ok", col(Prediction.labelled_at).is_not(None))
        .order_by(col(Prediction.created_at).desc())
        .limit(MAX_ROWS)
    ).all()
    return {
        "n": int(n or 0),
        "server": int(server or 0),
        "client": int(client or 0),
        "latency": lat,
        "scores": scores,
        "labelled": [(p, y, sh) for p, y, sh in labelled if y is not None],
    }


def _agreement(s: Session, conds: list) -> tuple[float | None, int]:
    rows = s.exec(
        select(Prediction.prediction, Prediction.shadow_prediction)
        .where(*conds, Prediction.status == "ok")
        .order_by(col(Prediction.created_at).desc())
        .limit(MAX_ROWS)
    ).all()
    pairs = [(prediction_value(p), prediction_value(sh)) for p, sh in rows if sh is not None]
    if not pairs:
        return None, 0
    from ..ml.scoring import label_key

    same = sum(label_key(a) == label_key(b) for a, b in pairs)
    return same / len(pairs), len(pairs)


def _arm(role: str, mv_id: int | None, label: str, raw: dict[str, Any], task: str, positive: str) -> CanaryArmPublic:
    lat, scores = raw["latency"], raw["scores"]
    metrics = (
        performance_metrics(task, [(p, y, 0.0) for p, y, _ in raw["labelled"]], positive or None)
        if raw["labelled"] and task
        else {}
    )
    return CanaryArmPublic(
        role=role,
        model_version_id=mv_id,
        label=label,
        requests=raw["n"],
        server_errors=raw["server"],
        client_errors=raw["client"],
        latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
        latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else None,
        score_mean=float(scores.mean()) if scores.size else None,
        labelled=len(raw["labelled"]),
        metrics=metrics,
    )


def canary_comparison(db: Database, *, deployment_name: str, min_n: int = sig.MIN_N) -> CanaryComparisonPublic:
    """Champion vs challenger of the deployment's current (or last) canary, with the difference of each
    figure and whether it is significant (two-proportion z-test for rates and accuracy-like metrics,
    Mann-Whitney U with a bootstrap interval for latency and scores)."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        start, end = _period(s, dep.id)
        if start is None:
            return CanaryComparisonPublic(
                deployment=dep.name,
                active=False,
                message=f"No canary has run on {dep.name} yet: start one on the Deployment page (Operate).",
            )
        champ_id, chall_id = start.from_model_version_id, start.to_model_version_id
        active = end is None and dep.canary_model_version_id == chall_id
        since, until = start.at, (end.at if end is not None else None)
        champ = _read_arm(s, _arm_conds(dep.id, champ_id, False, since, until))
        chall_conds = _arm_conds(dep.id, chall_id, True, since, until)
        chall = _read_arm(s, chall_conds)
        agreement, n_agree = _agreement(s, chall_conds)
        mv = s.get(ModelVersion, chall_id) if chall_id is not None else None
        task = mv.task if mv is not None else ""
        use_case_id = dep.use_case_id
        share = dep.canary_share if active else 0.0
    positive = canvas.problem_settings(db, use_case_id)[1] if use_case_id else ""
    labels = version_labels(db, [champ_id, chall_id])
    a = _arm("champion", champ_id, labels.get(champ_id, "the champion"), champ, task, positive)
    b = _arm("challenger", chall_id, labels.get(chall_id, "the challenger"), chall, task, positive)

    comps: list[sig.Comparison] = [
        sig.two_proportions(
            champ["server"], champ["n"], chall["server"], chall["n"], metric="error rate (5xx)", min_n=min_n
        ),
        sig.mann_whitney(champ["latency"], chall["latency"], metric="latency p50 (ms)", min_n=min_n),
        sig.bootstrap(champ["latency"], chall["latency"], metric="latency p95 (ms)", summary=sig.p95, min_n=min_n),
    ]
    if champ["scores"].size or chall["scores"].size:
        comps.append(
            sig.mann_whitney(champ["scores"], chall["scores"], metric="score (mean)", summary=np.mean, min_n=min_n)
        )
    if task and task != "regression":
        kpi_metrics = [k.metric for k in usecases.model_kpis(db, use_case_id)] if use_case_id else []
        wanted = [m for m in PROPORTION_METRICS if m in kpi_metrics] or ["accuracy"]
        ca = sig.classification_counts(
            [prediction_value(p) for p, _, _ in champ["labelled"]],
            [y for _, y, _ in champ["labelled"]],
            positive or None,
        )
        cb = sig.classification_counts(
            [prediction_value(p) for p, _, _ in chall["labelled"]],
            [y for _, y, _ in chall["labelled"]],
            positive or None,
        )
        for m in wanted:
            if m in ca and m in cb:
                comps.append(sig.two_proportions(*ca[m], *cb[m], metric=f"{m} (labelled)", min_n=min_n, unit="labels"))
        for m in kpi_metrics:  # other KPI metrics (roc_auc, f1, ...): shown side by side, not tested
            if m and m not in PROPORTION_METRICS and (m in a.metrics or m in b.metrics):
                va, vb = a.metrics.get(m), b.metrics.get(m)
                comps.append(
                    sig.Comparison(
                        metric=f"{m} (labelled)",
                        method="",
                        champion=va,
                        challenger=vb,
                        n_champion=a.labelled,
                        n_challenger=b.labelled,
                        difference=(vb - va) if va is not None and vb is not None else None,
                        verdict="shown side by side, not tested",
                    )
                )
    return CanaryComparisonPublic(
        deployment=deployment_name,
        active=active,
        since=aware(since),
        until=aware(until),
        share=share,
        min_n=min_n,
        champion=a,
        challenger=b,
        comparisons=[c.as_dict() for c in comps],
        score_histogram=sig.histogram(champ["scores"], chall["scores"])
        if (champ["scores"].size and chall["scores"].size)
        else {},
        agreement=agreement,
        n_agreement=n_agree,
    )
