"""/api/v1/monitoring: per-deployment summaries (latest check, drift, KPIs), alerts (list, acknowledge,
resolve) and "check now" (a queued job; follow it at /api/v1/jobs/{id}). Same services as the Monitoring
and Alerts pages."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ...services import deployments, monitoring
from .deps import DB, CurrentActor, Pagination, dump, page_of, paginate

router = APIRouter(prefix="/monitoring", tags=["monitoring"])


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)


@router.get("/deployments", summary="Every deployment's monitoring status (drift, KPIs, health, open alerts)")
def overview(actor: CurrentActor, db: DB, page: Pagination) -> dict:
    return paginate(monitoring.overview(db), page)


@router.get("/deployments/{name}", summary="One deployment: status, latest check, its drift by column and KPIs")
def summary(name: str, actor: CurrentActor, db: DB) -> dict:
    dep = deployments.get_by_name(db, name)  # 404 with the known names
    status = next((row for row in monitoring.overview(db) if row.deployment == dep.name), None)
    checks = monitoring.list_checks(db, deployment_name=dep.name, limit=1)
    latest = checks[-1] if checks else None
    drift = [p for p in monitoring.drift_history(db, deployment_name=dep.name) if latest and p.check_id == latest.id]
    return {
        "deployment": dep.name,
        "status": dump(status),
        "latest_check": dump(latest),
        "drift": dump(drift),
        "kpis": [k.model_dump(mode="json", exclude_unset=True) for k in latest.kpis] if latest else [],  # as stored
        "open_alerts": dump(
            monitoring.list_alerts(db, states=("open", "acknowledged"), deployment_name=dep.name, limit=50)
        ),
    }


@router.get("/deployments/{name}/checks", summary="Checks of a deployment, newest first")
def checks(name: str, actor: CurrentActor, db: DB, page: Pagination) -> dict:
    rows = monitoring.list_checks(db, deployment_name=name, limit=page.offset + page.limit + 1)
    return paginate(list(reversed(rows)), page)


@router.post(
    "/deployments/{name}/checks",
    status_code=202,
    summary="Run a check now (ops): queued as a job; follow it at /api/v1/jobs/{job_id}",
)
def run_check(name: str, actor: CurrentActor, db: DB) -> dict:
    job_id = monitoring.enqueue_monitor_run(db, actor=actor, deployment_name=name)
    return {"job_id": job_id, "job_url": f"/api/v1/jobs/{job_id}"}


@router.get("/checks/{check_id}", summary="One check")
def get_check(check_id: int, actor: CurrentActor, db: DB):
    return dump(monitoring.get_check(db, check_id))


@router.get("/alerts", summary="Alerts, newest first, filtered")
def list_alerts(
    actor: CurrentActor,
    db: DB,
    page: Pagination,
    state: str | None = None,
    deployment: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    use_case_id: int | None = None,
) -> dict:
    rows = monitoring.list_alerts(
        db,
        state=state,
        deployment_name=deployment,
        severity=severity,
        kind=kind,
        use_case_id=use_case_id,
        limit=page.limit + 1,
        offset=page.offset,
    )
    return page_of(rows, page)


@router.get("/alerts/{alert_id}", summary="One alert")
def get_alert(alert_id: int, actor: CurrentActor, db: DB):
    return dump(monitoring.get_alert(db, alert_id))


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an open alert (ops)")
def acknowledge(alert_id: int, actor: CurrentActor, db: DB, body: Note | None = None):
    return dump(monitoring.acknowledge_alert(db, actor=actor, alert_id=alert_id, note=body.note if body else ""))


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert with a note saying what was done (ops)")
def resolve(alert_id: int, body: Note, actor: CurrentActor, db: DB):
    return dump(monitoring.resolve_alert(db, actor=actor, alert_id=alert_id, note=body.note))
