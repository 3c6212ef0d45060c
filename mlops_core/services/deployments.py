"""Deployments (stage 4): gated promotion of model versions onto named endpoints, rollback, canary.

Flow (DESIGN.md stage 4, issue 6):
1. A data scientist *requests* a model version on an endpoint (`request_deployment`). The gates are
   evaluated from evidence and stored with the request as a checklist; for production a business
   sign-off is asked for, tied to the evidence hash (model version id + dataset version id + metrics).
2. Ops *deploys* the request (`deploy`): the gates are evaluated again (a sign-off may have arrived
   since, or the data may have changed); a failed gate blocks, unless an admin overrides with a reason.
3. `rollback` returns the endpoint to the version it served before, in one action.

The scoring service (mlops_core/serving) polls `deployments.generation` and hot-reloads.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, func, update
from sqlmodel import Session, col, select

from .. import artifacts
from ..config import get_settings
from ..db import Database, utcnow
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..models.deployments import (
    ENVIRONMENTS,
    ApiKey,
    Deployment,
    DeploymentEvent,
    DeploymentEventPublic,
    DeploymentOverviewPublic,
    DeploymentPublic,
    DeploymentRequest,
    DeploymentRequestPublic,
    GateResult,
    PlacementPublic,
    Prediction,
    SignoffKpiRow,
    SignoffReviewPublic,
)
from ..ml import model_check, persistence
from ..models.datasets import Dataset, DatasetVersion
from ..models.experiments import ModelVersion, RegisteredModel
from ..models.usecases import UseCase
from . import audit, collab, datasets, experiments, registry, usecases
from ._common import deployment_by_name, get_or_404
from . import value as value_service  # issue 20: the "expected value >= champion's" gate
from . import fairness  # issue 17: the fairness gate (KPI gap between groups)
from .auth import Actor, can, require

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
SIGNOFF_ENTITY = "model_version"
GATE_SAMPLE_ROWS = 20


# --- small helpers ------------------------------------------------------------------------------


def _public(d: Deployment) -> DeploymentPublic:
    return DeploymentPublic.model_validate(d, from_attributes=True)


def _request_public(r: DeploymentRequest, name: str = "") -> DeploymentRequestPublic:
    data = r.model_dump()
    data["gates"] = [GateResult(**g) for g in (r.gates or [])]
    data["deployment_name"] = name
    return DeploymentRequestPublic.model_validate(data)


def _event_public(e: DeploymentEvent) -> DeploymentEventPublic:
    return DeploymentEventPublic.model_validate(e, from_attributes=True)


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError(
            f"deployment name {name!r} is not allowed; use 2-63 characters: lower-case letters, digits and "
            "'-', starting with a letter (it becomes the URL /v1/deployments/<name>/predict)"
        )
    return name


def model_version_label(s: Session, model_version_id: int | None) -> str:
    """ "churn-classifier v3" for a model version id (or "—")."""
    if model_version_id is None:
        return "—"
    row = s.exec(
        select(RegisteredModel.name, ModelVersion.version)
        .join(ModelVersion, col(ModelVersion.model_id) == col(RegisteredModel.id))
        .where(ModelVersion.id == model_version_id)
    ).first()
    return f"{row[0]} v{row[1]}" if row else f"model version {model_version_id}"


def _unlabelled(model_version_id: int | None) -> str:
    """What `model_version_label` says for no version, or for an id without a row."""
    return "—" if model_version_id is None else f"model version {model_version_id}"


def version_labels(db: Database, ids: list[int | None]) -> dict[int, str]:
    """Labels of several model versions in one query."""
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    with db.read() as s:
        rows = s.exec(
            select(ModelVersion.id, RegisteredModel.name, ModelVersion.version)
            .join(RegisteredModel, col(ModelVersion.model_id) == col(RegisteredModel.id))
            .where(col(ModelVersion.id).in_(ids))
        ).all()
    return {i: f"{n} v{v}" for i, n, v in rows}


def entity_labels(db: Database, entities: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Readable names of audit/inbox entities of this stage, by (entity_type, entity_id as text):
    a model version is "churn-classifier v3" (not "model version 4"), a deployment its name. Others are
    left out (the caller shows their id)."""
    mv_ids = [int(i) for t, i in entities if t == "model_version" and str(i).isdigit()]
    dep_ids = [int(i) for t, i in entities if t == "deployment" and str(i).isdigit()]
    out = {("model_version", str(i)): label for i, label in version_labels(db, mv_ids).items()}
    if dep_ids:
        with db.read() as s:
            rows = s.exec(
                select(Deployment.id, Deployment.name).where(col(Deployment.id).in_(sorted(set(dep_ids))))
            ).all()
        out.update({("deployment", str(i)): n for i, n in rows})
    return out


def _model_version(db: Database, model_version_id: int) -> dict[str, Any]:
    """The model version as a dict (the registry's public view)."""
    return registry.get_model_version(db, model_version_id).model_dump()


def load_model(db: Database, model_version_id: int):
    """The fitted pipeline of a model version, loaded with skops (trusted types checked by the registry)."""
    return registry.load_model(db, model_version_id)


def _run_test_metrics(db: Database, mv: dict[str, Any]) -> dict[str, float]:
    """The run's test metrics, or the version's snapshot of them (a version registered without a run)."""
    if mv.get("run_id"):
        try:
            run = experiments.get_run(db, mv["run_id"])
            if run.metrics:
                return {k: float(v) for k, v in run.metrics.items()}
        except NotFound:
            pass
    return {k: float(v) for k, v in (mv.get("metrics") or {}).items()}


def signoff_evidence(db: Database, model_version_id: int) -> dict[str, Any]:
    """What a business sign-off approves: if any of it changes, the sign-off no longer counts."""
    mv = _model_version(db, model_version_id)
    return _evidence(mv, _run_test_metrics(db, mv))


def _evidence(mv: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "model_version_id": int(mv["id"]),
        "dataset_version_id": mv.get("dataset_version_id"),
        "metrics": {k: round(float(v), 6) for k, v in sorted(metrics.items())},
    }


def evidence_hash(evidence: dict[str, Any]) -> str:
    return collab.evidence_hash(evidence)


def signoff_review(db: Database, signoff) -> SignoffReviewPublic:
    """A model-version sign-off's evidence as business reads it (issue 15, problem 4): each KPI of the use
    case the request serves (the deployment's; the model's own when no request names one) with target,
    value and met/missed, the training data with its validation status, and the ids to link to."""
    ev = signoff.evidence or {}
    mv_id = int(ev.get("model_version_id") or signoff.entity_id)
    mv = _model_version(db, mv_id)
    with db.read() as s:
        rows = s.exec(
            select(Deployment.name, Deployment.use_case_id, DeploymentRequest.status)
            .join(DeploymentRequest, col(DeploymentRequest.deployment_id) == col(Deployment.id))
            .where(DeploymentRequest.signoff_id == signoff.id)
        ).all()
        dv_id = ev.get("dataset_version_id", mv.get("dataset_version_id"))
        dv_row = (
            s.exec(
                select(DatasetVersion.version, DatasetVersion.status, DatasetVersion.dataset_id, Dataset.name)
                .join(Dataset, col(DatasetVersion.dataset_id) == col(Dataset.id))
                .where(DatasetVersion.id == dv_id)
            ).first()
            if dv_id is not None
            else None
        )
    uc = next((u for _, u, _ in rows if u is not None), None)
    uc = uc if uc is not None else mv.get("use_case_id")
    metrics = {k: float(v) for k, v in (ev.get("metrics") or {}).items() if v is not None}
    checks = usecases.evaluate_metrics(db, uc, metrics) if uc is not None else []
    kpis = [
        SignoffKpiRow(
            kpi=f"{c.kpi.metric} {c.kpi.direction} {c.kpi.target:g}",
            metric=c.kpi.metric or "",
            direction=c.kpi.direction,
            target=c.kpi.target,
            value=c.value,
            status=c.status,
        )
        for c in checks
    ]
    shortfalls = [
        f"{k.metric} is {'missing' if k.value is None else format(k.value, '.3g')}, target {k.direction} {k.target:g}"
        for k in kpis
        if k.status in ("missed", "warning", "unknown")
    ]
    dataset, dstatus, dataset_id = "", "", None
    if dv_row is not None:
        number, dstatus, dataset_id, dname = dv_row
        dataset = f"{dname}@v{number}"
        if dstatus == "failed":
            shortfalls.append(f"the training data {dataset} failed validation")
    return SignoffReviewPublic(
        signoff_id=signoff.id,
        model_version_id=mv_id,
        model_version=f"{mv.get('model_name')} v{mv.get('version')}",
        model_name=mv.get("model_name") or "",
        use_case_id=uc,
        use_case=_use_case_titles(db, [uc]).get(uc, "") if uc is not None else "",
        deployments=sorted({n for n, _, _ in rows}),
        kpis=kpis,
        dataset_id=dataset_id,
        dataset_version_id=dv_id,
        dataset=dataset,
        dataset_status=dstatus,
        run_id=mv.get("run_id"),
        shortfalls=shortfalls,
    )


def _approval_shortfalls(db: Database, signoff) -> list[str]:
    try:
        return signoff_review(db, signoff).shortfalls
    except NotFound:
        return []


collab.APPROVAL_CHECKS[SIGNOFF_ENTITY] = _approval_shortfalls


# --- gates -------------------------------------------------------------------------------------


def _gate(gate: str, title: str, status: str, detail: str, **evidence: Any) -> GateResult:
    return GateResult(gate=gate, title=title, status=status, detail=detail, evidence=evidence)


def _gate_data(db: Database, mv: dict[str, Any]) -> GateResult:
    title = "Training data validated"
    dv_id = mv.get("dataset_version_id")
    if dv_id is None:
        return _gate(
            "data_validated",
            title,
            "failed",
            "the model version has no training dataset version (no lineage); register it from a run "
            "trained on a registered dataset version",
        )
    with db.read() as s:
        row = s.exec(
            select(DatasetVersion, Dataset.name)
            .join(Dataset, col(DatasetVersion.dataset_id) == col(Dataset.id))
            .where(DatasetVersion.id == dv_id)
        ).first()
        if row is None:
            return _gate(
                "data_validated", title, "failed", f"dataset version {dv_id} no longer exists", dataset_version_id=dv_id
            )
        dv, dname = row
        ref, status = f"{dname}@v{dv.version}", dv.status
        dataset_id = dv.dataset_id
    link = {"dataset_id": dataset_id, "dataset_version_id": dv_id, "dataset": ref, "dataset_status": status}
    if status == "validated":
        return _gate("data_validated", title, "passed", f"{ref} passed validation", **link)
    if status == "waived":
        return _gate(
            "data_validated", title, "waived", f"{ref} failed validation but was waived by a data engineer", **link
        )
    return _gate(
        "data_validated",
        title,
        "failed",
        f"{ref} has status {status!r}; a data engineer must fix or waive it (Data page)",
        **link,
    )


def _gate_kpis(db: Database, mv: dict[str, Any], metrics: dict[str, float], uc: int | None = None) -> GateResult:
    """The model KPIs of `uc`: the deployment's use case (issue 15: a wine model requested on the churn
    endpoint is held to churn's KPIs, not wine's); the model version's own use case for a new endpoint."""
    title = "Model KPIs met on the test metrics"
    uc = uc if uc is not None else mv.get("use_case_id")
    if uc is None:
        return _gate(
            "kpis_met",
            title,
            "failed",
            "the model version belongs to no use case, so there are no model KPIs to check it against",
        )
    checks = usecases.evaluate_metrics(db, uc, metrics)
    if not checks:
        return _gate(
            "kpis_met",
            title,
            "failed",
            "the use case has no model KPIs; business must define at least one (Use cases page)",
            use_case_id=uc,
        )
    uc_title = _use_case_titles(db, [uc]).get(uc, f"use case {uc}")
    lines = [
        f"{c.kpi.metric} {c.kpi.direction} {c.kpi.target:g}: "
        f"{'missing' if c.value is None else format(c.value, '.4g')} ({c.status})"
        for c in checks
    ]
    bad = [c for c in checks if c.status != "met"]
    ev = {
        "use_case_id": uc,
        "run_id": mv.get("run_id"),
        "checks": [
            {
                "metric": c.kpi.metric,
                "direction": c.kpi.direction,
                "target": c.kpi.target,
                "value": c.value,
                "status": c.status,
            }
            for c in checks
        ],
    }
    if bad:
        return _gate(
            "kpis_met",
            title,
            "failed",
            f"KPIs of “{uc_title}” not met: " + "; ".join(line for line, c in zip(lines, checks) if c.status != "met"),
            **ev,
        )
    return _gate("kpis_met", title, "passed", f"KPIs of “{uc_title}”: " + "; ".join(lines), **ev)


def _use_case_titles(db: Database, ids: list[int | None]) -> dict[int, str]:
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    with db.read() as s:
        return dict(s.exec(select(UseCase.id, UseCase.title).where(col(UseCase.id).in_(ids))).all())


def _gate_use_case(db: Database, mv: dict[str, Any], deployment: DeploymentPublic | None) -> GateResult:
    """The model version belongs to the use case the endpoint serves (issue 15, problem 1)."""
    title = "Model belongs to the endpoint's use case"
    label = f"{mv.get('model_name', 'the model')} v{mv.get('version', '?')}"
    mv_uc = mv.get("use_case_id")
    titles = _use_case_titles(db, [mv_uc, deployment.use_case_id if deployment else None])
    ev = {"use_case_id": mv_uc, "deployment_use_case_id": deployment.use_case_id if deployment else None}
    if deployment is None:
        where = f"“{titles[mv_uc]}”" if mv_uc in titles else "no use case"
        return _gate("use_case_match", title, "passed", f"a new endpoint: it will serve {where}", **ev)
    if deployment.use_case_id is None:
        return _gate(
            "use_case_match",
            title,
            "passed",
            f"{deployment.name} is not tied to a use case; any model may serve it",
            **ev,
        )
    if mv_uc == deployment.use_case_id:
        return _gate(
            "use_case_match",
            title,
            "passed",
            f"{label} and {deployment.name} both belong to “{titles.get(mv_uc, mv_uc)}”",
            **ev,
        )
    theirs = f"“{titles[mv_uc]}”" if mv_uc in titles else "no use case"
    return _gate(
        "use_case_match",
        title,
        "failed",
        f"{label} belongs to {theirs}, but {deployment.name} serves “{titles.get(deployment.use_case_id)}”. "
        f"Choose a model version of “{titles.get(deployment.use_case_id)}” for {deployment.name}, or request "
        "a new endpoint for this model",
        **ev,
    )


def schema_difference(new: list[dict[str, Any]], served: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What changes for the callers of an endpoint when a model with the input schema `new` replaces
    one with `served`: columns they must now send, columns no longer used, columns whose type changed."""
    a = {c["name"]: c.get("type") for c in new or []}
    b = {c["name"]: c.get("type") for c in served or []}
    return {
        "added": sorted(set(a) - set(b)),
        "removed": sorted(set(b) - set(a)),
        "changed": sorted(f"{n} ({b[n]} → {a[n]})" for n in set(a) & set(b) if a[n] != b[n]),
    }


def _gate_schema(
    db: Database, mv: dict[str, Any], deployment: DeploymentPublic | None, acknowledged_by: str = ""
) -> GateResult:
    """The model takes the inputs the endpoint's callers send now, or the change was acknowledged."""
    title = "Input schema matches what the endpoint serves"
    if deployment is None or deployment.model_version_id is None:
        return _gate("schema_match", title, "passed", "nothing is served on this endpoint yet: no callers to break")
    if deployment.model_version_id == mv["id"]:
        return _gate("schema_match", title, "passed", "this version is the one served now")
    served = _model_version(db, deployment.model_version_id)
    served_label = f"{served.get('model_name')} v{served.get('version')}"
    diff = schema_difference(mv.get("input_schema") or [], served.get("input_schema") or [])
    ev = {"served_model_version_id": deployment.model_version_id, "served": served_label, **diff}
    if not any(diff.values()):
        return _gate("schema_match", title, "passed", f"same input columns and types as {served_label}", **ev)
    parts = []
    if diff["added"]:
        parts.append("callers must now send " + ", ".join(diff["added"]))
    if diff["removed"]:
        parts.append("no longer used: " + ", ".join(diff["removed"]))
    if diff["changed"]:
        parts.append("type changed: " + ", ".join(diff["changed"]))
    what = f"the inputs differ from {served_label}, served on {deployment.name} now ({'; '.join(parts)})"
    if acknowledged_by:
        return _gate(
            "schema_match",
            title,
            "waived",
            f"{what}; {acknowledged_by} acknowledged the change when requesting",
            acknowledged_by=acknowledged_by,
            **ev,
        )
    return _gate(
        "schema_match",
        title,
        "failed",
        f"{what}. Callers of the endpoint would break: request again and acknowledge the schema change, "
        "or choose a model with the same inputs",
        **ev,
    )


def _gate_regression(
    db: Database,
    mv: dict[str, Any],
    metrics: dict[str, float],
    deployment: DeploymentPublic | None,
    tolerance: float,
    uc: int | None = None,
) -> GateResult:
    title = "No regression against production"
    uc = uc if uc is not None else mv.get("use_case_id")
    with db.read() as s:
        q = select(Deployment).where(
            Deployment.environment == "production", col(Deployment.model_version_id).is_not(None)
        )
        if deployment is not None and deployment.environment == "production":
            q = q.where(Deployment.id == deployment.id)
        elif uc is not None:
            q = q.where(Deployment.use_case_id == uc)
        else:
            q = q.where(Deployment.id == -1)
        current = s.exec(q.order_by(col(Deployment.deployed_at).desc())).first()
        current = _public(current) if current is not None else None
        current_label = model_version_label(s, current.model_version_id) if current else ""
    if current is None:
        return _gate(
            "no_regression",
            title,
            "passed",
            "nothing is in production yet: no champion to compare with",
            tolerance=tolerance,
        )
    if current.model_version_id == mv["id"]:
        return _gate(
            "no_regression",
            title,
            "passed",
            "this version is the one in production",
            champion_model_version_id=current.model_version_id,
            tolerance=tolerance,
        )
    champ = _run_test_metrics(db, _model_version(db, current.model_version_id))
    directions: dict[str, str] = {}
    if uc is not None:
        directions = {k.metric: k.direction for k in usecases.model_kpis(db, uc)}
    compared, worse = [], []
    for metric, direction in directions.items():
        a = metrics.get(metric, metrics.get(f"test_{metric}"))
        b = champ.get(metric, champ.get(f"test_{metric}"))
        if a is None or b is None:
            continue
        delta = (a - b) if direction == ">=" else (b - a)  # positive = better
        compared.append({"metric": metric, "candidate": a, "champion": b, "change": round(delta, 6)})
        if delta < -tolerance:
            worse.append(
                f"{metric} {a:.4g} vs {b:.4g} in production (worse by {abs(delta):.4g} > tolerance {tolerance:g})"
            )
    ev = {
        "champion_model_version_id": current.model_version_id,
        "champion": current_label,
        "deployment": current.name,
        "tolerance": tolerance,
        "compared": compared,
    }
    if not compared:
        return _gate(
            "no_regression",
            title,
            "failed",
            f"no KPI metric in common with {current_label} to compare; log the same test metrics",
            **ev,
        )
    if worse:
        return _gate("no_regression", title, "failed", "; ".join(worse), **ev)
    return _gate(
        "no_regression", title, "passed", f"no KPI metric worse than {current_label} by more than {tolerance:g}", **ev
    )


def _gate_signoff(db: Database, model_version_id: int, environment: str, current_hash: str) -> GateResult:
    title = "Business sign-off"
    if environment != "production":
        return _gate("business_signoff", title, "not_required", "staging needs no business sign-off")
    signoffs = collab.signoffs_for(db, SIGNOFF_ENTITY, model_version_id)
    fresh = [so for so in signoffs if so.status == "approved" and so.evidence_hash == current_hash]
    if fresh:
        so = fresh[0]
        return _gate(
            "business_signoff",
            title,
            "passed",
            f"approved by {so.decided_by} on {so.decided_at:%Y-%m-%d %H:%M} UTC for this evidence",
            signoff_id=so.id,
            evidence_hash=current_hash,
        )
    stale = [so for so in signoffs if so.status == "approved"]
    if stale:
        return _gate(
            "business_signoff",
            title,
            "failed",
            f"the sign-off by {stale[0].decided_by} approved other evidence (the model version, its data "
            "or its metrics changed since); ask business to sign off again",
            signoff_id=stale[0].id,
            evidence_hash=current_hash,
            approved_hash=stale[0].evidence_hash,
        )
    pending = [so for so in signoffs if so.status == "pending" and so.evidence_hash == current_hash]
    if pending:
        return _gate(
            "business_signoff",
            title,
            "failed",
            f"waiting for business to decide sign-off #{pending[0].id}",
            signoff_id=pending[0].id,
            evidence_hash=current_hash,
        )
    rejected = [so for so in signoffs if so.status == "rejected" and so.evidence_hash == current_hash]
    if rejected:
        return _gate(
            "business_signoff",
            title,
            "failed",
            f"rejected by {rejected[0].decided_by}: {rejected[0].reason}",
            signoff_id=rejected[0].id,
            evidence_hash=current_hash,
        )
    return _gate(
        "business_signoff",
        title,
        "failed",
        "no business sign-off yet; request a production deployment to ask business for one",
        evidence_hash=current_hash,
    )


_MODEL_CHECKS: dict[tuple, Any] = {}  # finished model checks of this process (see _gate_loads)
_MODEL_CHECKS_LOCK = threading.Lock()


def _gate_loads(db: Database, mv: dict[str, Any]) -> GateResult:
    """Load the model file and predict a few training rows, in a separate, resource-limited process
    (mlops_core/ml/model_check.py): a candidate model is untrusted data, so this process (the UI, the API,
    the worker) never builds it; a model that is refused, runs out of memory, hangs or crashes fails
    this gate with a sentence saying so."""
    title = "Model loads (skops) and predicts on training data"
    dv_id = mv.get("dataset_version_id")
    key = mv.get("artifact_key")
    if not key or not artifacts.exists(key):
        return _gate(
            "model_loads",
            title,
            "failed",
            f"the model does not load: its file ({key or 'none'}) is missing from the artifact store",
        )
    if key.endswith(".pkl"):  # an MLflow pickle model: stored and registered, never loaded
        return _gate("model_loads", title, "failed", persistence.PICKLE_REFUSED)
    if dv_id is None:
        return _gate("model_loads", title, "failed", "no training data to predict on (no dataset version lineage)")
    try:
        frame = datasets.load_frame(db, dv_id)
        columns = [c["name"] for c in mv.get("input_schema") or []]
        sample = frame[columns].head(GATE_SAMPLE_ROWS) if columns else frame.head(GATE_SAMPLE_ROWS)
    except Exception as exc:  # noqa: BLE001
        return _gate(
            "model_loads",
            title,
            "failed",
            f"the training data to predict on cannot be read: {exc}",
            dataset_version_id=dv_id,
        )
    # Model files and dataset versions are immutable: a finished check (passed, or failed on the model's
    # own account) stands for the same file, data and limits; a check stopped by a limit is run again.
    settings = get_settings()
    cache_key = (
        artifacts.store_id(),
        key,
        dv_id,
        tuple(sample.columns),
        settings.model_check_memory_mb,
        settings.model_check_timeout_seconds,
    )
    with _MODEL_CHECKS_LOCK:
        result = _MODEL_CHECKS.get(cache_key)
    if result is None:
        result = model_check.check_model(artifacts.get_bytes(key), sample)
        if result.stage in ("done", "load", "predict"):
            with _MODEL_CHECKS_LOCK:
                _MODEL_CHECKS[cache_key] = result
                while len(_MODEL_CHECKS) > 64:
                    _MODEL_CHECKS.pop(next(iter(_MODEL_CHECKS)))
    evidence = {"dataset_version_id": dv_id, "check_pid": result.pid, **result.evidence}
    if not result.ok:
        return _gate("model_loads", title, "failed", result.detail, stage=result.stage, **evidence)
    return _gate("model_loads", title, "passed", result.detail, rows=result.rows, **evidence)


def gate_checks(
    db: Database,
    model_version_id: int,
    deployment_name: str | None = None,
    *,
    environment: str | None = None,
    load_model: bool = True,
    schema_acknowledged_by: str = "",
) -> list[GateResult]:
    """Evaluate every gate for putting `model_version_id` on `deployment_name` (or a new endpoint
    in `environment`). Read-only; the result is the checklist shown on the deployment page.
    `load_model=False` leaves out the one gate that is not a database read (loading the artifact and
    predicting on the training data). The KPI and regression gates use the deployment's use case;
    `schema_acknowledged_by` (who acknowledged an input-schema change with the request) waives
    "schema_match"."""
    mv = _model_version(db, model_version_id)
    deployment = None
    tolerance = 0.01
    if deployment_name:
        try:
            deployment = get_by_name(db, deployment_name)
            tolerance = deployment.regression_tolerance
            environment = deployment.environment
        except NotFound:
            deployment = None
    environment = environment or "production"
    metrics = _run_test_metrics(db, mv)
    current_hash = evidence_hash(_evidence(mv, metrics))
    uc = deployment.use_case_id if deployment is not None and deployment.use_case_id is not None else None
    gates = [
        _gate_use_case(db, mv, deployment),
        _gate_schema(db, mv, deployment, schema_acknowledged_by),
        _gate_data(db, mv),
        _gate_kpis(db, mv, metrics, uc),
        _gate_regression(db, mv, metrics, deployment, tolerance, uc),
        _gate_signoff(db, model_version_id, environment, current_hash),
    ]
    gates += value_service.value_gates(
        db,
        model_version_id=model_version_id,
        champion_model_version_id=deployment.model_version_id if deployment else None,
    )
    gates += fairness.fairness_gates(db, model_version_id=model_version_id, deployment_name=deployment_name)
    return gates + ([_gate_loads(db, mv)] if load_model else [])


# Gates that say the request itself is wrong (another use case's model, inputs the callers do not send):
# business is not asked to sign off on such a request.
WRONG_MODEL_GATES = ("use_case_match", "schema_match")


def current_gates(db: Database, request: DeploymentRequestPublic) -> list[GateResult]:
    """The checklist of a request as it stands now, cheap enough to show on every render. A pending
    request's database gates (data validated, KPIs, no regression, business sign-off) are evaluated
    again, so a sign-off or a data fix shows at once; the model-load gate keeps its stored result (a
    model version's artifact and training data do not change). A decided request keeps the gates it
    was decided on. `deploy` evaluates every gate again before it deploys."""
    if request.status != "pending":
        return list(request.gates)
    gates = gate_checks(
        db,
        request.model_version_id,
        request.deployment_name or None,
        environment=request.environment,
        load_model=False,
        schema_acknowledged_by=request.schema_change_ack,
    )
    return gates + [g for g in request.gates if g.gate == "model_loads"]


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedRow:
    """What the scoring service needs of one deployment to decide whether to (re)load it."""

    id: int
    name: str
    generation: int
    model_version_id: int | None
    canary_model_version_id: int | None
    canary_share: float


def serving_snapshot(db: Database) -> tuple[list[ServedRow], dict[str, int]]:
    """Every deployment as the scoring service polls it, and key hash -> deployment id of the unrevoked
    API keys, read in one transaction so a key never points at a deployment the same poll did not see."""
    with db.read() as s:
        rows = [
            ServedRow(*r)
            for r in s.exec(
                select(
                    Deployment.id,
                    Deployment.name,
                    Deployment.generation,
                    Deployment.model_version_id,
                    Deployment.canary_model_version_id,
                    Deployment.canary_share,
                )
            ).all()
        ]
        keys = dict(s.exec(select(ApiKey.key_hash, ApiKey.deployment_id).where(col(ApiKey.revoked_at).is_(None))).all())
    return rows, keys


def get_by_name(db: Database, name: str) -> DeploymentPublic:
    """The deployment called `name` (NotFound lists the existing ones)."""
    with db.read() as s:
        return _public(deployment_by_name(s, name))


def get_deployment(db: Database, deployment_id: int) -> DeploymentPublic:
    with db.read() as s:
        d = get_or_404(s, Deployment, deployment_id, "deployment")
        return _public(d)


def list_deployments(db: Database, *, use_case_id: int | None = None) -> list[DeploymentPublic]:
    with db.read() as s:
        q = select(Deployment)
        if use_case_id is not None:
            q = q.where(Deployment.use_case_id == use_case_id)
        return [_public(d) for d in s.exec(q.order_by(Deployment.name)).all()]


def where_deployed(db: Database, model_version_id: int) -> list[PlacementPublic]:
    """Where a model version serves (as champion or canary), by deployment name. For the model registry page."""
    with db.read() as s:
        rows = s.exec(
            select(Deployment).where(
                (Deployment.model_version_id == model_version_id)
                | (Deployment.canary_model_version_id == model_version_id)
            )
        ).all()
        out = []
        for d in rows:
            role = "champion" if d.model_version_id == model_version_id else "canary"
            out.append(
                PlacementPublic(
                    deployment=d.name,
                    deployment_id=d.id,
                    environment=d.environment,
                    role=role,
                    since=d.deployed_at if role == "champion" else d.updated_at,
                    traffic_share=(1 - d.canary_share)
                    if role == "champion" and d.canary_model_version_id
                    else (d.canary_share if role == "canary" else 1.0),
                )
            )
        return sorted(out, key=lambda r: r.deployment)


def history(db: Database, *, deployment_name: str) -> list[DeploymentEventPublic]:
    """Every move of the endpoint, newest first: which model version served from when."""
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        rows = s.exec(
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment_id == d.id)
            .order_by(col(DeploymentEvent.id).desc())
        ).all()
        return [_event_public(e) for e in rows]


def list_requests(
    db: Database, *, deployment_name: str | None = None, status: str | None = None, limit: int = 50
) -> list[DeploymentRequestPublic]:
    with db.read() as s:
        q = select(DeploymentRequest, Deployment.name).join(
            Deployment, col(DeploymentRequest.deployment_id) == col(Deployment.id)
        )
        if deployment_name:
            q = q.where(Deployment.name == deployment_name)
        if status:
            q = q.where(DeploymentRequest.status == status)
        rows = s.exec(q.order_by(col(DeploymentRequest.id).desc()).limit(limit)).all()
        return [_request_public(r, n) for r, n in rows]


def get_request(db: Database, request_id: int) -> DeploymentRequestPublic:
    with db.read() as s:
        r = get_or_404(s, DeploymentRequest, request_id, "deployment request")
        d = s.get(Deployment, r.deployment_id)
        return _request_public(r, d.name if d else "")


def overview(db: Database, *, hours: int = 24, name: str | None = None) -> list[DeploymentOverviewPublic]:
    """The deployments overview: endpoint, environment, version, since when, traffic and error rate
    over the last `hours` — aggregated in SQL (one grouped query over the prediction log). `name`
    restricts it to one deployment (its page), which reads only that deployment's predictions."""
    since = utcnow() - timedelta(hours=hours)
    with db.read() as s:
        q = select(Deployment).order_by(Deployment.name)
        deps = [_public(d) for d in s.exec(q.where(Deployment.name == name) if name is not None else q).all()]
        traffic = (
            select(
                Prediction.deployment_id,
                func.count(),
                func.sum(func.cast(Prediction.status != "ok", Integer)),
                func.avg(Prediction.latency_ms),
            )
            .where(Prediction.created_at >= since)
            .group_by(Prediction.deployment_id)
        )
        live_keys = (
            select(ApiKey.deployment_id, func.count())
            .where(col(ApiKey.revoked_at).is_(None))
            .group_by(ApiKey.deployment_id)
        )
        if name is not None:
            ids = [d.id for d in deps]
            traffic = traffic.where(col(Prediction.deployment_id).in_(ids))
            live_keys = live_keys.where(col(ApiKey.deployment_id).in_(ids))
        stats = {
            dep_id: (int(n or 0), int(errors or 0), float(lat) if lat is not None else None)
            for dep_id, n, errors, lat in s.exec(traffic).all()
        }
        keys = dict(s.exec(live_keys).all())
    labels = version_labels(db, [d.model_version_id for d in deps] + [d.canary_model_version_id for d in deps])
    out = []
    for d in deps:
        n, errors, lat = stats.get(d.id, (0, 0, None))
        out.append(
            DeploymentOverviewPublic(
                name=d.name,
                environment=d.environment,
                model_version_id=d.model_version_id,
                model_version=labels.get(d.model_version_id, _unlabelled(d.model_version_id)),
                since=d.deployed_at,
                canary=f"{labels.get(d.canary_model_version_id, _unlabelled(d.canary_model_version_id))}"
                f" ({d.canary_share:.0%})"
                if d.canary_model_version_id
                else "",
                requests=n,
                errors=errors,
                error_rate=(errors / n) if n else 0.0,
                avg_latency_ms=lat,
                active_keys=int(keys.get(d.id, 0)),
                endpoint=f"/v1/deployments/{d.name}/predict",
            )
        )
    return out


# --- writes ------------------------------------------------------------------------------------


def _snapshot(d: Deployment) -> dict[str, Any]:
    return {
        "model_version_id": d.model_version_id,
        "canary_model_version_id": d.canary_model_version_id,
        "canary_share": d.canary_share,
        "generation": d.generation,
    }


def create_deployment(
    db: Database,
    *,
    actor: Actor,
    name: str,
    environment: str,
    use_case_id: int | None = None,
    regression_tolerance: float = 0.01,
    description: str = "",
) -> DeploymentPublic:
    """A new (empty) endpoint. Data scientists create them by requesting; ops may create them directly."""
    require(actor, "deployment.create")
    name = check_name(name)
    if environment not in ENVIRONMENTS:
        raise ValidationError(f"unknown environment {environment!r}; choose one of: {', '.join(ENVIRONMENTS)}")
    tolerance = _check_tolerance(regression_tolerance)
    with db.unit_of_work() as s:
        if s.exec(select(Deployment.id).where(Deployment.name == name)).first() is not None:
            raise Conflict(
                f"a deployment named {name!r} already exists; choose another name or request a new version on it"
            )
        d = _add_deployment(
            s,
            actor,
            name,
            environment,
            use_case_id=use_case_id,
            regression_tolerance=tolerance,
            description=description[:2000],
        )
        return _public(d)


def _add_deployment(s: Session, actor: Actor, name: str, environment: str, **fields: Any) -> Deployment:
    """Insert a new endpoint and audit its creation, in the caller's unit of work."""
    d = Deployment(name=name, environment=environment, created_by=actor.username, **fields)
    s.add(d)
    s.flush()
    audit.record(
        s,
        actor=actor,
        action="deployment.create",
        entity_type="deployment",
        entity_id=d.id,
        summary=f"created {environment} endpoint {name}",
        after={"name": name, "environment": environment},
    )
    return d


def _check_tolerance(value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValidationError("the regression tolerance must be a number, e.g. 0.01") from None
    if not math.isfinite(value) or value < 0 or value > 1:
        raise ValidationError("the regression tolerance must be between 0 and 1 (e.g. 0.01 for one point of recall)")
    return value


def set_regression_tolerance(db: Database, *, actor: Actor, deployment_name: str, tolerance: float) -> DeploymentPublic:
    require(actor, "deployment.deploy")
    tolerance = _check_tolerance(tolerance)
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        before = d.regression_tolerance
        d.regression_tolerance = tolerance
        d.updated_at = utcnow()
        s.add(d)
        audit.record(
            s,
            actor=actor,
            action="deployment.tolerance",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"regression tolerance of {d.name}: {before:g} -> {tolerance:g}",
            before={"regression_tolerance": before},
            after={"regression_tolerance": tolerance},
        )
        return _public(d)


def request_deployment(
    db: Database,
    *,
    actor: Actor,
    model_version_id: int,
    deployment_name: str,
    environment: str = "production",
    note: str = "",
    acknowledge_schema_change: bool = False,
    signoff_only_when_passing: bool = False,
) -> DeploymentRequestPublic:
    """A data scientist asks for `model_version_id` on `deployment_name` (created if new). The gates are
    evaluated now and stored; for production a business sign-off tied to the evidence is asked for,
    unless the request is for the wrong model (another use case's, or inputs the endpoint's callers do not
    send) or, with `signoff_only_when_passing` (retraining), any other gate fails.
    `acknowledge_schema_change`: the requester accepts that the endpoint's inputs change (recorded with
    the request; the "schema_match" gate shows it as waived)."""
    require(actor, "deployment.request")
    deployment_name = check_name(deployment_name)
    if environment not in ENVIRONMENTS:
        raise ValidationError(f"unknown environment {environment!r}; choose one of: {', '.join(ENVIRONMENTS)}")
    mv = _model_version(db, model_version_id)
    try:
        dep = get_by_name(db, deployment_name)
        if dep.environment != environment:
            raise ValidationError(
                f"{deployment_name!r} is a {dep.environment} endpoint; request {dep.environment}, or use another "
                f"name (e.g. {deployment_name}-{environment}) for {environment}"
            )
    except NotFound:
        dep = None
    ack_by = actor.username if acknowledge_schema_change else ""
    gates = gate_checks(
        db, model_version_id, deployment_name if dep else None, environment=environment, schema_acknowledged_by=ack_by
    )
    evidence = signoff_evidence(db, model_version_id)
    ehash = evidence_hash(evidence)
    signoff_id = None
    signoff_gate = next(g for g in gates if g.gate == "business_signoff")
    blocking = [
        g
        for g in gates
        if g.status == "failed"
        and (g.gate in WRONG_MODEL_GATES or (signoff_only_when_passing and g.gate != "business_signoff"))
    ]
    if (
        environment == "production"
        and signoff_gate.status == "failed"
        and not signoff_gate.detail.startswith("waiting")
        and not blocking
    ):
        label = f"{mv.get('model_name', 'model')} v{mv.get('version', '?')}"
        so = collab.request_signoff(
            db,
            actor=actor,
            entity_type=SIGNOFF_ENTITY,
            entity_id=model_version_id,
            title=f"Put {label} in production on {deployment_name}",
            assignee_role="business",
            evidence=evidence,
        )
        signoff_id = so.id
        gates = [
            g if g.gate != "business_signoff" else _gate_signoff(db, model_version_id, environment, ehash)
            for g in gates
        ]
    elif signoff_gate.evidence.get("signoff_id"):
        signoff_id = signoff_gate.evidence["signoff_id"]
    with db.unit_of_work() as s:
        d = s.exec(select(Deployment).where(Deployment.name == deployment_name)).first()
        if d is None:
            d = _add_deployment(s, actor, deployment_name, environment, use_case_id=mv.get("use_case_id"))
        r = DeploymentRequest(
            deployment_id=d.id,
            model_version_id=model_version_id,
            environment=environment,
            requested_by=actor.username,
            gates=[g.model_dump() for g in gates],
            evidence=evidence,
            evidence_hash=ehash,
            signoff_id=signoff_id,
            note=note[:2000],
            schema_change_ack=ack_by,
        )
        s.add(r)
        s.flush()
        failed = [g.title for g in gates if g.status == "failed"]
        collab.notify(
            s,
            roles=["ops"],
            kind="deployment_request",
            title=f"{actor.username} requests {model_version_label(s, model_version_id)} on "
            f"{deployment_name} ({environment})" + (f"; failing: {', '.join(failed)}" if failed else ""),
            entity_type="deployment",
            entity_id=d.id,
            from_username=actor.username,
            exclude={actor.username},
        )
        audit.record(
            s,
            actor=actor,
            action="deployment.request",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"requested {model_version_label(s, model_version_id)} on {deployment_name} ({environment}); "
            f"gates failing: {', '.join(failed) or 'none'}" + ("; input schema change acknowledged" if ack_by else ""),
            after={
                "request_id": r.id,
                "model_version_id": model_version_id,
                "evidence_hash": ehash,
                "gates": {g.gate: g.status for g in gates},
            },
        )
        return _request_public(r, d.name)


def reevaluate_request(db: Database, *, actor: Actor, request_id: int) -> DeploymentRequestPublic:
    """Evaluate the gates of a pending request again (after a sign-off or a data fix) and store them."""
    require(actor, "deployment.reevaluate")
    req = get_request(db, request_id)
    gates = gate_checks(
        db,
        req.model_version_id,
        req.deployment_name,
        environment=req.environment,
        schema_acknowledged_by=req.schema_change_ack,
    )
    return _store_gates(db, actor=actor, request_id=request_id, gates=gates)


def _store_gates(db: Database, *, actor: Actor, request_id: int, gates: list[GateResult]) -> DeploymentRequestPublic:
    evidence = signoff_evidence(db, get_request(db, request_id).model_version_id)
    with db.unit_of_work() as s:
        r = s.get(DeploymentRequest, request_id)
        r.gates = [g.model_dump() for g in gates]
        r.gates_evaluated_at = utcnow()
        r.evidence = evidence
        r.evidence_hash = evidence_hash(evidence)
        s.add(r)
        audit.record(
            s,
            actor=actor,
            action="deployment.gates",
            entity_type="deployment",
            entity_id=r.deployment_id,
            summary=f"gates of request {r.id} evaluated: "
            + ", ".join(f"{g.title}: {g.status.replace('_', ' ')}" for g in gates),
            after={g.gate: g.status for g in gates},
        )
        d = s.get(Deployment, r.deployment_id)
        return _request_public(r, d.name)


def _move(
    s: Session,
    d: Deployment,
    *,
    actor: Actor,
    kind: str,
    to_version: int | None,
    request_id: int | None = None,
    reason: str = "",
) -> DeploymentEvent:
    before = _snapshot(d)
    e = DeploymentEvent(
        deployment_id=d.id,
        kind=kind,
        from_model_version_id=d.model_version_id,
        to_model_version_id=to_version,
        request_id=request_id,
        actor_username=actor.username,
        reason=reason[:2000],
    )
    now = utcnow()
    d.model_version_id = to_version
    d.deployed_at = now
    if d.canary_model_version_id == to_version:
        d.canary_model_version_id, d.canary_share = None, 0.0
    _record_change(
        s,
        d,
        e,
        actor=actor,
        kind=kind,
        before=before,
        summary=f"{kind} {d.name}: {model_version_label(s, before['model_version_id'])} -> "
        f"{model_version_label(s, to_version)}" + (f" ({reason})" if reason else ""),
        now=now,
    )
    from . import targets  # issue 19: a bundle target's owner is told which version to run now

    targets.notify_version_to_run(s, d, actor=actor, kind=kind)
    return e


def _record_change(
    s: Session, d: Deployment, e, *, actor: Actor, kind: str, before: dict[str, Any], summary: str, now
) -> None:
    """A change of what the endpoint serves: its generation goes up (serving processes reload it), the
    event is stored and the change audited with the endpoint before and after."""
    d.updated_at = now
    d.generation += 1
    s.add(d)
    s.add(e)
    s.flush()
    audit.record(
        s,
        actor=actor,
        action=f"deployment.{kind}",
        entity_type="deployment",
        entity_id=d.id,
        summary=summary,
        before=before,
        after=_snapshot(d),
    )


def _close_request_followups(s: Session, r: DeploymentRequest, *, actor: Actor, outcome: str) -> None:
    """A decided request closes what it left open, inside the caller's transaction: its business sign-off,
    if still pending and no other pending request waits on it, is withdrawn (so no inbox offers to approve
    it any more), and the inbox items about it are marked read for everyone (issue 15, problem 5)."""

    def others_pending(*where: Any) -> int:
        return s.exec(
            select(func.count())
            .select_from(DeploymentRequest)
            .where(*where, DeploymentRequest.status == "pending", DeploymentRequest.id != r.id)
        ).one()

    if not others_pending(DeploymentRequest.deployment_id == r.deployment_id):
        collab.close_inbox_items(s, kinds=("deployment_request",), entity_type="deployment", entity_id=r.deployment_id)
    if r.signoff_id is None:
        return
    if not others_pending(DeploymentRequest.signoff_id == r.signoff_id):
        collab.withdraw_signoff(
            s, signoff_id=r.signoff_id, actor=actor, reason=f"deployment request #{r.id} was {outcome}"
        )


def deploy(
    db: Database, *, actor: Actor, request_id: int, override_reason: str | None = None, reason: str = ""
) -> DeploymentPublic:
    """Ops deploys a requested version. Gates are evaluated again; a failed gate blocks unless an
    admin overrides it with a reason (audited). `reason` (why now; the page asks for it in its
    confirmation step) is kept in the history."""
    require(actor, "deployment.deploy")
    req = get_request(db, request_id)
    if req.status != "pending":
        raise Conflict(f"request {request_id} is already {req.status}; request the version again to redeploy it")
    reason = (reason or "").strip()
    gates = gate_checks(
        db,
        req.model_version_id,
        req.deployment_name,
        environment=req.environment,
        schema_acknowledged_by=req.schema_change_ack,
    )
    req = _store_gates(db, actor=actor, request_id=request_id, gates=gates)
    failed = req.failed_gates
    override_reason = (override_reason or "").strip()
    if failed and not override_reason:
        raise ValidationError(
            "deployment blocked by failed gates: "
            + "; ".join(f"{g.title}: {g.detail}" for g in failed)
            + ". Fix them and deploy again, or ask an admin to override with a reason"
        )
    if failed and not can(actor, "deployment.override_gates"):
        raise PermissionDenied(
            f"{actor.username} ({actor.role}) may not override failed gates; only an admin may, with a reason"
        )
    with db.unit_of_work() as s:
        r = s.get(DeploymentRequest, request_id)
        # Conditional update: two ops deploying the same request at once cannot both win.
        res = s.execute(
            update(DeploymentRequest)
            .where(col(DeploymentRequest.id) == request_id, DeploymentRequest.status == "pending")
            .values(
                status="deployed",
                decided_by=actor.username,
                decided_at=utcnow(),
                override_reason=override_reason if failed else "",
                overridden_by=actor.username if failed else None,
            )
        )
        if res.rowcount == 0:
            raise Conflict(f"request {request_id} was just decided by someone else; reload the page")
        d = s.get(Deployment, r.deployment_id)
        if failed:
            audit.record(
                s,
                actor=actor,
                action="deployment.override",
                entity_type="deployment",
                entity_id=d.id,
                summary=f"overrode failed gates ({', '.join(g.gate for g in failed)}) of request "
                f"{request_id}: {override_reason}",
                after={"request_id": request_id, "failed_gates": [g.gate for g in failed], "reason": override_reason},
            )
        _move(
            s,
            d,
            actor=actor,
            kind="deploy",
            to_version=r.model_version_id,
            request_id=request_id,
            reason="; ".join(x for x in (f"override: {override_reason}" if failed else "", reason) if x),
        )
        # Other pending requests for the version now served on this endpoint are moot: superseded, so that
        # no sign-off they share stays pending (and no inbox keeps asking to approve it).
        dupes = s.exec(
            select(DeploymentRequest).where(
                DeploymentRequest.deployment_id == r.deployment_id,
                DeploymentRequest.model_version_id == r.model_version_id,
                DeploymentRequest.status == "pending",
                DeploymentRequest.id != request_id,
            )
        ).all()
        for o in dupes:
            o.status, o.decided_by, o.decided_at = "superseded", actor.username, utcnow()
            s.add(o)
            audit.record(
                s,
                actor=actor,
                action="deployment.request_superseded",
                entity_type="deployment",
                entity_id=d.id,
                summary=f"request {o.id} superseded: request {request_id} deployed the same version",
                before={"status": "pending"},
                after={"status": "superseded", "request_id": o.id, "by_request_id": request_id},
            )
        s.flush()
        _close_request_followups(s, r, actor=actor, outcome="deployed")
        for o in dupes:
            _close_request_followups(s, o, actor=actor, outcome=f"superseded by request #{request_id}")
        collab.notify(
            s,
            usernames=[r.requested_by],
            kind="deployment_done",
            title=f"{actor.username} deployed {model_version_label(s, r.model_version_id)} on {d.name}",
            entity_type="deployment",
            entity_id=d.id,
            from_username=actor.username,
            exclude={actor.username},
        )
        if d.use_case_id is not None and d.environment == "production":
            usecases.note_stage_reached(
                s,
                actor=actor,
                use_case_id=d.use_case_id,
                status="deployed",
                note=f"{d.name} serves {model_version_label(s, r.model_version_id)}",
            )
        return _public(d)


def reject_request(db: Database, *, actor: Actor, request_id: int, reason: str) -> DeploymentRequestPublic:
    require(actor, "deployment.deploy")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why you reject the request: the reason is required")
    with db.unit_of_work() as s:
        r = get_or_404(s, DeploymentRequest, request_id, "deployment request")
        if r.status != "pending":
            raise Conflict(f"request {request_id} is already {r.status}")
        r.status, r.decided_by, r.decided_at, r.note = "rejected", actor.username, utcnow(), reason[:2000]
        s.add(r)
        audit.record(
            s,
            actor=actor,
            action="deployment.reject",
            entity_type="deployment",
            entity_id=r.deployment_id,
            summary=f"rejected request {request_id} ({model_version_label(s, r.model_version_id)}): {reason}",
            after={"status": "rejected"},
        )
        _close_request_followups(s, r, actor=actor, outcome=f"rejected: {reason}")
        d = s.get(Deployment, r.deployment_id)
        return _request_public(r, d.name)


def previous_version(db: Database, deployment_name: str) -> int | None:
    """The version the endpoint served before its current one (what rollback returns to)."""
    with db.read() as s:
        d = deployment_by_name(s, deployment_name)
        e = s.exec(
            select(DeploymentEvent)
            .where(
                DeploymentEvent.deployment_id == d.id,
                col(DeploymentEvent.kind).in_(("deploy", "rollback")),
                DeploymentEvent.to_model_version_id == d.model_version_id,
            )
            .order_by(col(DeploymentEvent.id).desc())
        ).first()
        return e.from_model_version_id if e is not None else None


def rollback(db: Database, *, actor: Actor, deployment_name: str, reason: str = "") -> DeploymentPublic:
    """One action: the endpoint serves the version it served before. History shows both moves.
    On production the reason is required: the history says why."""
    require(actor, "deployment.deploy")
    prev = previous_version(db, deployment_name)
    reason = (reason or "").strip()
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        if prev is None:
            raise Conflict(
                f"{deployment_name} has no previous version to roll back to; it has only ever served "
                f"{model_version_label(s, d.model_version_id)}"
            )
        if d.environment == "production" and not reason:
            raise ValidationError(
                f"say why you roll back {deployment_name}: a production rollback needs a reason, kept in its history"
            )
        _move(s, d, actor=actor, kind="rollback", to_version=prev, reason=reason)
        from . import subscriptions

        subscriptions.emit(  # watchers of the deployment and its use case hear of it (issue 18)
            s,
            kind="deployment_rolled_back",
            title=f"{actor.username} rolled {d.name} back to {model_version_label(s, prev)}"
            + (f": {reason}" if reason else ""),
            entity_type="deployment",
            entity_id=d.id,
            actor_username=actor.username,
        )
        return _public(d)


def set_canary(
    db: Database, *, actor: Actor, deployment_name: str, model_version_id: int | None, share: float = 0.1
) -> DeploymentPublic:
    """Send `share` of the traffic to a challenger (both versions' predictions are logged side by side);
    `model_version_id=None` stops the canary. The challenger must load and meet the data and KPI gates."""
    require(actor, "deployment.deploy")
    dep = get_by_name(db, deployment_name)
    if model_version_id is not None:
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise ValidationError("the canary share must be a number between 0 and 1, e.g. 0.1") from None
        if not (0 < share < 1):
            raise ValidationError("the canary share must be between 0 and 1 (exclusive), e.g. 0.1 for 10%")
        if dep.model_version_id is None:
            raise Conflict(f"{deployment_name} serves nothing yet; deploy a champion before adding a canary")
        if model_version_id == dep.model_version_id:
            raise ValidationError("the challenger is the version already served; choose another version")
        failed = [
            g
            for g in gate_checks(db, model_version_id, deployment_name)
            if g.status == "failed" and g.gate in ("data_validated", "kpis_met", "model_loads")
        ]
        if failed:
            raise ValidationError("the challenger fails gates: " + "; ".join(f"{g.title}: {g.detail}" for g in failed))
    with db.unit_of_work() as s:
        d = deployment_by_name(s, deployment_name)
        before = _snapshot(d)
        kind = "canary_start" if model_version_id is not None else "canary_stop"
        if kind == "canary_stop" and d.canary_model_version_id is None:
            raise Conflict(f"{deployment_name} has no canary to stop")
        e = DeploymentEvent(
            deployment_id=d.id,
            kind=kind,
            from_model_version_id=d.model_version_id,
            to_model_version_id=model_version_id or d.canary_model_version_id,
            actor_username=actor.username,
            reason=f"{share:.0%} of traffic" if model_version_id is not None else "",
        )
        d.canary_model_version_id = model_version_id
        d.canary_share = share if model_version_id is not None else 0.0
        _record_change(
            s,
            d,
            e,
            actor=actor,
            kind=kind,
            before=before,
            summary=f"{kind.replace('_', ' ')} on {d.name}: "
            f"{model_version_label(s, model_version_id or before['canary_model_version_id'])}",
            now=utcnow(),
        )
        return _public(d)
