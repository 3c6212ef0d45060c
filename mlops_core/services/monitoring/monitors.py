"""Monitor configuration: what to watch on one deployment, and its schedule.

A *monitor* holds the window (the last N predictions or hours), the schedule (a "monitor" job fired
by the worker's scheduler), the settings of each check kind (see `kinds.py`) and the retraining
policy. A deployment without a monitor gets the default one the first time it is checked.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from ... import jobs
from ...db import Database, utcnow
from ...errors import Conflict, ValidationError
from ...models.monitoring import RETRAINING_POLICIES, WINDOW_KINDS, Monitor, MonitorPublic
from .. import audit, usecases
from .._common import deployment_by_name
from ..auth import Actor, require
from .kinds import CHECKS


def _schedule_name(monitor: Monitor) -> str:
    return f"monitor:{monitor.deployment_name}:{monitor.name}"


def _sync_schedule(s: Session, monitor: Monitor) -> None:
    name = _schedule_name(monitor)
    if monitor.enabled and monitor.schedule_seconds:
        jobs.upsert_schedule(
            s,
            name=name,
            kind="monitor",
            interval_seconds=int(monitor.schedule_seconds),
            payload={"deployment": monitor.deployment_name, "monitor_id": monitor.id},
        )
    else:
        jobs.delete_schedule(s, name)


def _check_monitor_fields(values: dict[str, Any]) -> None:
    """Refuse bad settings: the window, schedule and policy here, each check kind's own in `kinds.py`."""
    if values["window_kind"] not in WINDOW_KINDS:
        raise ValidationError(f"window kind must be one of {', '.join(WINDOW_KINDS)} (got {values['window_kind']!r})")
    if int(values["window_size"]) < 1:
        raise ValidationError("the window must hold at least 1 prediction or 1 hour")
    if values["schedule_seconds"] is not None and int(values["schedule_seconds"]) < 60:
        raise ValidationError("schedule monitors at most once a minute (schedule_seconds >= 60), or leave it empty")
    if values["retraining_policy"] not in RETRAINING_POLICIES:
        raise ValidationError(
            f"retraining policy must be one of {', '.join(RETRAINING_POLICIES)} (got {values['retraining_policy']!r})"
        )
    for kind in CHECKS:
        kind.validate(values)


MONITOR_FIELDS = (
    "window_kind",
    "window_size",
    "schedule_seconds",
    "columns",
    "method_overrides",
    "threshold_overrides",
    "drift_share",
    "watch_kpis",
    "max_error_rate",
    "max_latency_p95_ms",
    "min_label_coverage",
    "retraining_policy",
    "enabled",
    "alert_on_estimated",
    "segments",
    "drift_min_importance",
    "important_columns",
)


def configure_monitor(
    db: Database,
    *,
    actor: Actor,
    deployment_name: str,
    name: str = "default",
    window_kind: str = "last_n",
    window_size: int = 5000,
    schedule_seconds: int | None = 3600,
    columns: list[str] | None = None,
    method_overrides: dict[str, str] | None = None,
    threshold_overrides: dict[str, float] | None = None,
    drift_share: float = 0.5,
    watch_kpis: list[str] | None = None,
    max_error_rate: float | None = 0.05,
    max_latency_p95_ms: float | None = 500.0,
    min_label_coverage: float | None = None,
    retraining_policy: str = "propose",
    enabled: bool = True,
    alert_on_estimated: bool = False,
    segments: dict[str, Any] | None = None,
    drift_min_importance: float | None = None,
    important_columns: list[str] | None = None,
    expected_version: int | None = None,
) -> MonitorPublic:
    """Create or update the monitor `name` of a deployment (and its schedule)."""
    require(actor, "monitor.configure")
    values = dict(
        window_kind=window_kind,
        window_size=int(window_size),
        schedule_seconds=None if not schedule_seconds else int(schedule_seconds),
        columns=list(columns) if columns else None,
        method_overrides=dict(method_overrides or {}),
        threshold_overrides=dict(threshold_overrides or {}),
        drift_share=float(drift_share),
        watch_kpis=list(watch_kpis) if watch_kpis else None,
        max_error_rate=None if max_error_rate is None else float(max_error_rate),
        max_latency_p95_ms=None if max_latency_p95_ms is None else float(max_latency_p95_ms),
        min_label_coverage=None if min_label_coverage is None else float(min_label_coverage),
        retraining_policy=retraining_policy,
        enabled=bool(enabled),
        alert_on_estimated=bool(alert_on_estimated),
        segments=dict(segments or {}),
        drift_min_importance=None if drift_min_importance is None else float(drift_min_importance),
        important_columns=[c.strip() if isinstance(c, str) else c for c in important_columns] or None
        if important_columns
        else None,
    )
    _check_monitor_fields(values)
    values["threshold_overrides"] = {k: float(v) for k, v in values["threshold_overrides"].items()}
    name = (name or "default").strip()[:100] or "default"
    with db.unit_of_work() as s:
        dep = deployment_by_name(s, deployment_name)
        row = s.exec(select(Monitor).where(Monitor.deployment_id == dep.id, Monitor.name == name)).first()
        before = None
        if row is None:
            row = Monitor(
                deployment_id=dep.id,
                deployment_name=dep.name,
                use_case_id=dep.use_case_id,
                name=name,
                created_by=actor.username,
            )
            action = "monitor.create"
        else:
            if expected_version is not None and row.version != expected_version:
                raise Conflict(
                    f"monitor {name!r} of {dep.name} was changed by someone else meanwhile; "
                    "reload the page and apply your change again"
                )
            before = {f: getattr(row, f) for f in MONITOR_FIELDS}
            row.version += 1
            action = "monitor.update"
        for f, v in values.items():
            setattr(row, f, v)
        row.use_case_id = dep.use_case_id
        row.updated_at = utcnow()
        s.add(row)
        s.flush()
        _sync_schedule(s, row)
        if action == "monitor.create" and dep.use_case_id is not None:
            usecases.note_stage_reached(
                s, actor=actor, use_case_id=dep.use_case_id, status="monitored", note=f"first monitor on {dep.name}"
            )
        audit.record(
            s,
            actor=actor,
            action=action,
            entity_type="monitor",
            entity_id=row.id,
            summary=f"monitor {name!r} of deployment {dep.name}: {window_kind} {window_size}, "
            f"policy {retraining_policy}",
            before=before,
            after=values,
        )
        return MonitorPublic.model_validate(row, from_attributes=True)


def list_monitors(db: Database, *, deployment_name: str | None = None) -> list[MonitorPublic]:
    with db.read() as s:
        q = select(Monitor).order_by(Monitor.deployment_name, Monitor.name)
        if deployment_name:
            q = q.where(Monitor.deployment_name == deployment_name)
        return [MonitorPublic.model_validate(r, from_attributes=True) for r in s.exec(q).all()]


def _ensure_default_monitor(db: Database, deployment_name: str) -> None:
    """A deployment without a monitor gets the default one the first time it is checked."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        if s.exec(select(Monitor.id).where(Monitor.deployment_id == dep.id)).first() is not None:
            return
    try:
        configure_monitor(db, actor=Actor.system(), deployment_name=deployment_name)
    except Conflict:
        pass  # created meanwhile by another process


def enqueue_monitor_run(db: Database, *, actor: Actor, deployment_name: str) -> int:
    """Queue a check of the deployment now (the page never runs it on its request thread)."""
    require(actor, "monitor.run")
    with db.unit_of_work() as s:
        dep = deployment_by_name(s, deployment_name)
        job_id = jobs.enqueue(s, kind="monitor", payload={"deployment": dep.name, "requested_by": actor.username})
        audit.record(
            s,
            actor=actor,
            action="monitor.run",
            entity_type="deployment",
            entity_id=dep.id,
            summary=f"asked for a check of {dep.name} now (job {job_id})",
        )
        return job_id
