"""Where each use case stands, stage by stage, from the evidence the stages stored (issue 15, problems 6 and 8).

`status_many` answers for a page of use cases in a handful of queries (the portfolio board); `use_case_status`
is one of them (the use case page's strip). Lights follow the KPI contract: a model KPI missed is red, inside
its warning band amber, met green; nothing yet is grey. Read-only: every logged-in role may read it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, select

from .. import kpi as kpi_math
from ..db import Database
from ..models.collab import Signoff
from ..models.experiments import ModelVersion, RegisteredModel
from ..models.stage_status import DeploymentBriefPublic, StageTilePublic, UseCaseStatusPublic
from ..models.usecases import UseCasePublic
from . import datasets, deployments, monitoring, usecases
from .auth import Actor

OPEN_ALERT_STATES = ("open", "acknowledged")
KPI_STATE = {"met": "good", "warning": "warn", "missed": "bad"}
_RANK = {"bad": 3, "warn": 2, "good": 1, "none": 0}
_ENV_RANK = {"production": 0, "staging": 1}


def _worst(states: Iterable[str]) -> str:
    states = list(states)
    return max(states, key=lambda s: _RANK.get(s, 0)) if states else "none"


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.3g}"


def _model_checks(uc: UseCasePublic, metrics: dict[str, float]) -> list[tuple[str, float | None, str]]:
    """(label, value, status) of every model KPI against one model version's test metrics."""
    out = []
    for k in uc.kpis:
        if k.kind != "model" or not k.metric:
            continue
        value = metrics.get(k.metric, metrics.get(f"test_{k.metric}"))
        out.append((k, value, kpi_math.evaluate(k.direction, k.target, k.warning, value)))
    return out


def _best_version(uc: UseCasePublic, versions: list[dict]) -> tuple[dict | None, list]:
    """The version that meets most model KPIs, then the best on the first KPI's metric, then the newest."""
    if not versions:
        return None, []
    scored = []
    for v in versions:
        checks = _model_checks(uc, v["metrics"])
        met = sum(1 for _, _, s in checks if s == "met")
        first = checks[0] if checks else None
        primary = 0.0
        if first and first[1] is not None:
            primary = float(first[1]) if first[0].direction != "<=" else -float(first[1])
        scored.append(((met, primary, v["id"]), v, checks))
    scored.sort(key=lambda t: t[0], reverse=True)
    return scored[0][1], scored[0][2]


def status_many(db: Database, *, actor: Actor, use_cases: Iterable[UseCasePublic]) -> dict[int, UseCaseStatusPublic]:
    """use case id -> its status; a fixed number of queries whatever the number of use cases."""
    cases = list(use_cases)
    ids = [uc.id for uc in cases]
    if not ids:
        return {}
    data = {}
    for d in datasets.list_datasets(db):
        if d.use_case_id in ids and d.latest_version is not None:
            prev = data.get(d.use_case_id)
            if prev is None or d.created_at > prev.created_at:
                data[d.use_case_id] = d
    with db.read() as s:
        rows = s.exec(
            select(ModelVersion, RegisteredModel.name)
            .join(RegisteredModel, col(RegisteredModel.id) == ModelVersion.model_id)
            .where(col(ModelVersion.use_case_id).in_(ids))
            .order_by(col(ModelVersion.id).desc())
        ).all()
        versions: dict[int, list[dict]] = {}
        labels: dict[int, str] = {}
        for mv, model_name in rows:
            labels[mv.id] = f"{model_name} v{mv.version}"
            versions.setdefault(mv.use_case_id, []).append(
                {"id": mv.id, "label": labels[mv.id], "metrics": dict(mv.metrics or {})}
            )
        pending = s.exec(select(Signoff).where(Signoff.status == "pending")).all()
        pending = [(p.entity_type, p.entity_id) for p in pending]
    deps: dict[int, list] = {}
    for d in deployments.list_deployments(db):
        if d.use_case_id in ids:
            deps.setdefault(d.use_case_id, []).append(d)
    missing = {d.model_version_id for ds in deps.values() for d in ds if d.model_version_id not in labels}
    missing.discard(None)
    if missing:
        with db.read() as s:
            for mv, model_name in s.exec(
                select(ModelVersion, RegisteredModel.name)
                .join(RegisteredModel, col(RegisteredModel.id) == ModelVersion.model_id)
                .where(col(ModelVersion.id).in_(list(missing)))
            ).all():
                labels[mv.id] = f"{model_name} v{mv.version}"
    lights = {o.deployment: o for o in monitoring.overview(db)}
    alerts: dict[int, list] = {}
    for a in monitoring.list_alerts(db, states=OPEN_ALERT_STATES, limit=2000):
        if a.use_case_id in ids:
            alerts.setdefault(a.use_case_id, []).append(a)
    business = usecases.latest_readings(db, [k.id for uc in cases for k in uc.kpis if k.kind == "business"])
    out = {}
    for uc in cases:
        out[uc.id] = _one(
            uc,
            dataset=data.get(uc.id),
            versions=versions.get(uc.id, []),
            labels=labels,
            deps=sorted(deps.get(uc.id, []), key=lambda d: (_ENV_RANK.get(d.environment, 2), d.name)),
            lights=lights,
            alerts=alerts.get(uc.id, []),
            business=business,
            pending=pending,
        )
    return out


def use_case_status(db: Database, *, actor: Actor, use_case_id: int) -> UseCaseStatusPublic:
    uc = usecases.get_use_case(db, actor=actor, use_case_id=use_case_id)
    return status_many(db, actor=actor, use_cases=[uc])[uc.id]


def _one(uc, *, dataset, versions, labels, deps, lights, alerts, business, pending) -> UseCaseStatusPublic:
    tiles: list[StageTilePublic] = []
    model_kpis = [k for k in uc.kpis if k.kind == "model" and k.metric]

    # 1. data
    if dataset is None:
        tiles.append(
            StageTilePublic(
                stage="data", title="Data", value="no dataset yet", page="pages/datasets.py", detail="register one"
            )
        )
    else:
        status = dataset.latest_status or "unknown"
        state = {"validated": "good", "passed": "good", "waived": "good", "failed": "bad"}.get(status, "warn")
        tiles.append(
            StageTilePublic(
                stage="data",
                title="Data",
                value=f"{dataset.name} v{dataset.latest_version}",
                detail=f"validation {status}",
                state=state,
                page="pages/dataset.py",
                params={"id": str(dataset.id)},
            )
        )

    # 2. best model, against the model KPIs
    best, checks = _best_version(uc, versions)
    if best is None:
        tiles.append(
            StageTilePublic(
                stage="model", title="Best model", value="no registered model yet", page="pages/experiments.py"
            )
        )
    else:
        missed = [f"{k.metric} {_fmt(v)} (target {k.direction} {k.target:g})" for k, v, s in checks if s != "met"]
        met = [f"{k.metric} {_fmt(v)}" for k, v, s in checks if s == "met"]
        tiles.append(
            StageTilePublic(
                stage="model",
                title="Best model",
                value=best["label"],
                detail=(
                    "no model KPI to check against"
                    if not checks
                    else ("misses " + "; ".join(missed) if missed else "meets " + ", ".join(met))
                ),
                state=_worst(KPI_STATE.get(s, "none") for _, _, s in checks) if checks else "none",
                page="pages/models.py",
                params={"id": str(best["id"])},
            )
        )

    # 3. deployed version
    serving = [d for d in deps if d.model_version_id is not None]
    briefs = [
        DeploymentBriefPublic(
            name=d.name,
            environment=d.environment,
            model=labels.get(d.model_version_id) if d.model_version_id else None,
            open_alerts=lights[d.name].open_alerts if d.name in lights else 0,
        )
        for d in deps
    ]
    if not serving:
        tiles.append(
            StageTilePublic(
                stage="deployed",
                title="Deployed",
                value="not deployed" if not deps else f"{deps[0].name}: nothing served yet",
                page="pages/deployments.py",
            )
        )
    else:
        d = serving[0]
        tiles.append(
            StageTilePublic(
                stage="deployed",
                title="Deployed",
                value=f"{labels.get(d.model_version_id, 'a model')} on {d.name}",
                detail=d.environment + (f" · +{len(serving) - 1} more" if len(serving) > 1 else ""),
                state="good",
                page="pages/deployment.py",
                params={"deployment": d.name},
            )
        )

    # 4. live KPIs: the latest monitoring check of the deployments, and business KPI readings
    live_states, live_bits, monitored = [], [], None
    for d in serving:
        light = lights.get(d.name)
        if light is not None and light.last_check_at is not None:
            monitored = monitored or d.name
            if light.kpi_status in KPI_STATE:
                live_states.append(KPI_STATE[light.kpi_status])
                live_bits.append(f"{d.name}: KPIs {light.kpi_status}")
    for k in uc.kpis:
        if k.kind == "business" and k.id in business:
            st = kpi_math.evaluate(k.direction, k.target, k.warning, business[k.id])
            live_states.append(KPI_STATE.get(st, "none"))
            live_bits.append(f"{k.name} {_fmt(business[k.id])}{(' ' + k.unit) if k.unit else ''} ({st})")
    tiles.append(
        StageTilePublic(
            stage="live",
            title="Live KPIs",
            value=(
                "; ".join(live_bits[:2])
                if live_bits
                else ("checked, no KPI result" if monitored else ("not checked yet" if serving else "nothing live"))
            ),
            state=_worst(live_states) if live_states else "none",
            page="pages/deployment_monitoring.py" if (monitored or serving) else "pages/monitoring.py",
            params={"deployment": monitored or serving[0].name} if (monitored or serving) else {},
        )
    )

    # 5. open alerts
    critical = sum(1 for a in alerts if a.severity == "critical")
    tiles.append(
        StageTilePublic(
            stage="alerts",
            title="Open alerts",
            value=f"{len(alerts)} open" if alerts else "none open",
            detail=f"{critical} critical" if critical else "",
            state="bad" if critical else ("warn" if alerts else "good"),
            page="pages/alerts.py",
        )
    )

    # 6. pending sign-offs (on the use case, its model versions)
    mv_ids = {str(v["id"]) for v in versions}
    waiting = [
        p
        for p in pending
        if (p[0] == "use_case" and p[1] == str(uc.id)) or (p[0] == "model_version" and p[1] in mv_ids)
    ]
    tiles.append(
        StageTilePublic(
            stage="signoffs",
            title="Pending sign-offs",
            value=f"{len(waiting)} waiting" if waiting else "none waiting",
            state="warn" if waiting else "good",
            page="pages/inbox.py",
        )
    )

    step, page, params, suggested = _next_step(
        uc, model_kpis, dataset, best, checks, serving, monitored, alerts, waiting
    )
    return UseCaseStatusPublic(
        use_case_id=uc.id,
        tiles=tiles,
        deployments=briefs,
        open_alerts=len(alerts),
        critical_alerts=critical,
        pending_signoffs=len(waiting),
        next_step=step,
        next_page=page,
        next_params=params,
        suggested_status=(
            suggested
            if suggested in usecases.STATUSES
            and uc.status in usecases.STATUSES
            and usecases.STATUSES.index(suggested) > usecases.STATUSES.index(uc.status)
            else None
        ),
    )


def _next_step(uc, model_kpis, dataset, best, checks, serving, monitored, alerts, waiting):
    """(what to do next, the page, its query, the lifecycle stage the evidence shows)."""
    uc_q = {"id": str(uc.id)}
    if uc.status == "retired":
        return "Retired: nothing to do unless it is proposed again.", "pages/use_case.py", uc_q, None
    if serving:
        stage = "monitored" if monitored else "deployed"
        if alerts:
            return f"Handle the {len(alerts)} open alert(s).", "pages/alerts.py", {}, stage
        if waiting:
            return "Decide the pending sign-off.", "pages/inbox.py", {}, stage
        if not monitored:
            return (
                f"Run a first monitoring check on {serving[0].name}.",
                "pages/deployment_monitoring.py",
                {"deployment": serving[0].name},
                stage,
            )
        return (
            "In production and watched: review the live KPIs.",
            "pages/deployment_monitoring.py",
            {"deployment": monitored},
            stage,
        )
    if not model_kpis and uc.status in ("proposed", "approved"):
        return "Add a model KPI: the target a model must reach.", "pages/use_case.py", uc_q, None
    if dataset is None:
        return (
            "Register a dataset for this use case.",
            "pages/datasets.py",
            {},
            ("approved" if uc.status == "proposed" else None),
        )
    if dataset.latest_status == "failed":
        return (
            f"Fix or waive the failed validation of {dataset.name} v{dataset.latest_version}.",
            "pages/dataset.py",
            {"id": str(dataset.id)},
            "data",
        )
    if best is None:
        return "Train a model on the data and register the best run.", "pages/experiments.py", {}, "data"
    if any(s != "met" for _, _, s in checks):
        return (
            f"Improve the model: {best['label']} does not meet every KPI yet.",
            "pages/experiments.py",
            {},
            "experimentation",
        )
    if waiting:
        return "Decide the pending sign-off.", "pages/inbox.py", {}, "experimentation"
    return f"Request a deployment of {best['label']}.", "pages/models.py", {"id": str(best["id"])}, "experimentation"
