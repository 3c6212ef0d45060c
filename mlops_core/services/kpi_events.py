""" "KPI met / missed" events for watchers (issue 18), recorded where a KPI verdict changes state.

- A run's KPI check: when a run finishes, its verdict on the use case's model KPIs (met when every KPI with
  a value is met, missed when one is missed) is compared with the last verdict emitted for the use case's
  runs; a first verdict or a changed one emits `kpi_met` / `kpi_missed` on the run.
- A monitor check's KPI light: a check whose light is met or missed, unlike the last check of the
  deployment that had one, emits `kpi_met` / `kpi_missed` on the deployment.
A warning (inside the band next to the target) or no value changes no state. Called inside the action's
transaction; subscriptions.emit only records the event and queues its delivery.
"""

from __future__ import annotations

from sqlalchemy import String, cast
from sqlmodel import Session, col, select

from .. import kpi as kpi_math
from ..models.experiments import Run
from ..models.monitoring import MonitorCheck
from ..models.subscriptions import NotificationEvent

VERDICTS = ("met", "missed")


def _verdict(statuses: list[str]) -> str | None:
    if "missed" in statuses:
        return "missed"
    if "warning" in statuses:
        return None
    return "met" if "met" in statuses else None


def run_verdict(s: Session, run_ids: list[int], use_case_id: int) -> dict[int, str | None]:
    """run id -> "met" | "missed" | None, against the use case's model KPIs."""
    from .experiments import _latest_metrics, _model_kpis_in

    kpis = _model_kpis_in(s, {use_case_id})[use_case_id]
    metrics = _latest_metrics(s, run_ids)
    return {
        rid: _verdict(
            [
                kpi_math.evaluate(k.direction, k.target, k.warning, metrics[rid].get(k.metric) if k.metric else None)
                for k in kpis
            ]
        )
        for rid in run_ids
    }


def on_run_finished(s: Session, run: Run) -> str | None:
    """Emit the run's KPI verdict when it differs from the last one emitted for the use case's runs; returns
    the kind emitted."""
    if run.use_case_id is None or run.status != "finished":
        return None
    now = run_verdict(s, [run.id], run.use_case_id)[run.id]
    if now is None:
        return None
    last = s.exec(
        select(NotificationEvent.kind)
        .join(Run, NotificationEvent.entity_id == cast(Run.id, String))
        .where(
            NotificationEvent.entity_type == "run",
            col(NotificationEvent.kind).in_([f"kpi_{v}" for v in VERDICTS]),
            Run.use_case_id == run.use_case_id,
        )
        .order_by(col(NotificationEvent.id).desc())
        .limit(1)
    ).first()
    if last == f"kpi_{now}":
        return None
    from . import subscriptions

    subscriptions.emit(
        s,
        kind=f"kpi_{now}",
        title=f"run {run.id} ({run.name or run.algorithm}): KPIs {now}",
        entity_type="run",
        entity_id=run.id,
        actor_username=run.created_by or "",
    )
    return f"kpi_{now}"


def on_check(s: Session, check: MonitorCheck, deployment_name: str) -> str | None:
    """Emit the check's KPI light when it differs from the deployment's last met/missed light."""
    if check.kpi_status not in VERDICTS:
        return None
    prev = s.exec(
        select(MonitorCheck.kpi_status)
        .where(
            MonitorCheck.deployment_id == check.deployment_id,
            MonitorCheck.id != check.id,
            col(MonitorCheck.kpi_status).in_(VERDICTS),
        )
        .order_by(col(MonitorCheck.id).desc())
        .limit(1)
    ).first()
    if prev == check.kpi_status:
        return None
    from . import subscriptions

    subscriptions.emit(
        s,
        kind=f"kpi_{check.kpi_status}",
        title=f"{deployment_name}: live KPIs {check.kpi_status}" + (f" (were {prev})" if prev else ""),
        entity_type="deployment",
        entity_id=check.deployment_id,
    )
    return f"kpi_{check.kpi_status}"
