"""Running a check: one monitor over one window of logged predictions, and what it raises.

`run_monitor` (from the scheduler's "monitor" job, the CLI or "Run a check now" on the page) runs a
deployment's monitors: each produces one stored check with the window's figures (see `windows.py`
and the check kinds in `kinds.py`), raises the alerts its breaches call for (`alerts.py`) and, for
drift or a missed KPI, starts the retraining loop per the monitor's policy (services/retraining.py).
A run that fails raises a "monitoring_down" alert; the next run that succeeds resolves it. The same
pass checks the system: workers, the scheduler and ingestion jobs.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from ...db import Database, utcnow
from ...errors import NotFound, ValidationError
from ...models.experiments import ModelVersion
from ...models.jobs import Job, Lease, Worker
from ...models.monitoring import (
    Alert,
    CheckDriftPublic,
    CheckHealthPublic,
    CheckKpiPublic,
    CheckPerformancePublic,
    Monitor,
    MonitorCheck,
    MonitorCheckColumn,
    MonitorCheckPublic,
)
from ...monitoring.figures import label_figures, performance_metrics
from .. import audit, canvas, kpi_events, retraining, usecases
from .._common import aware, deployment_by_name, get_or_404
from ..auth import Actor, require
from .alerts import Breach, _open_alert
from .kinds import CHECKS, RETRAINING_KINDS
from .monitors import _ensure_default_monitor
from . import windows
from .windows import Window, _labelled_rows, health_figures, window_bounds

log = logging.getLogger(__name__)

# A worker whose heartbeat is older than this is considered down.
WORKER_DOWN_AFTER_S = 120
INGEST_FAILURE_LOOKBACK = timedelta(hours=24)
KPI_RANK = {"unknown": 0, "met": 1, "warning": 2, "missed": 3}
PAGE_DEPLOYMENT = "/deployment-monitoring"


def _system_breaches(s: Session, now: datetime) -> list[Breach]:
    """Workers without a heartbeat, an expired scheduler lease, ingestion jobs failed in the last day."""
    out: list[Breach] = []
    for w in s.exec(select(Worker).where(Worker.status == "running")).all():
        age = (now - aware(w.heartbeat_at)).total_seconds()
        if age > WORKER_DOWN_AFTER_S:
            out.append(
                Breach(
                    kind="worker_down",
                    severity="critical",
                    key=f"worker_down:{w.name}",
                    title=f"Worker {w.name} is down",
                    detail=f"no heartbeat from worker {w.name} on {w.hostname or 'its host'} for "
                    f"{age / 60:.0f} min; jobs it held will be retried by another worker. "
                    "Restart it (`python -m mlops_core worker`).",
                    evidence={
                        "worker": w.name,
                        "heartbeat_at": aware(w.heartbeat_at).isoformat(),
                        "seconds_since": round(age),
                    },
                    link="/infrastructure",
                )
            )
    lease = s.get(Lease, "scheduler")
    if lease is not None and aware(lease.expires_at) < now - timedelta(seconds=WORKER_DOWN_AFTER_S):
        age = (now - aware(lease.expires_at)).total_seconds()
        out.append(
            Breach(
                kind="scheduler_down",
                severity="critical",
                key="scheduler_down",
                title="The scheduler is down",
                detail=f"the scheduler lease (last held by {lease.holder}) expired {age / 60:.0f} min ago: "
                "scheduled monitors and ingestion are not firing. Start a worker with "
                "MLOPS_SCHEDULER=true.",
                evidence={"holder": lease.holder, "expired_at": aware(lease.expires_at).isoformat()},
                link="/infrastructure",
            )
        )
    since = now - INGEST_FAILURE_LOOKBACK
    failed = s.exec(
        select(Job)
        .where(Job.kind == "ingest", Job.status == "failed", col(Job.finished_at) >= since)
        .order_by(col(Job.id).desc())
        .limit(20)
    ).all()
    for j in failed:
        src = (
            (j.payload or {}).get("source_name")
            or (j.payload or {}).get("dataset")
            or (j.payload or {}).get("source_id", "")
        )
        out.append(
            Breach(
                kind="ingestion_failed",
                severity="warning",
                key=f"ingestion_failed:job:{j.id}",
                title=f"Ingestion failed{f' for {src}' if src else ''} (job {j.id})",
                detail=((j.error or "").strip().splitlines() or ["no error recorded"])[-1][:1000],
                evidence={"job_id": j.id, "payload": j.payload},
                link="/infrastructure",
            )
        )
    from ..targets import silent_target_breaches  # issue 19: bundle targets that stopped reporting

    out += silent_target_breaches(s, now)
    from ..ops_settings import slo_breaches  # availability objectives set on the SLOs tab

    out += slo_breaches(s, now)
    return out


def _compute_check(db: Database, monitor: Monitor, dep, as_of: datetime) -> dict[str, Any]:
    """Everything one check measures (no writes): the window's shared figures, then each kind's own."""
    out: dict[str, Any] = {"status": "ok", "error": "", "unreadable_rows": 0, "unreadable_labelled_rows": 0}
    with db.read() as s:
        window = window_bounds(s, deployment_id=dep.id, kind=monitor.window_kind, size=monitor.window_size, as_of=as_of)
        out["window"] = window
        # stored as the check's `health` JSON
        out["health"] = CheckHealthPublic(**health_figures(s, deployment_id=dep.id, window=window).model_dump())
        n_ok, labelled, out["unreadable_labelled_rows"] = _labelled_rows(s, dep.id, window)
        task = ""
        if dep.model_version_id is not None:
            task = get_or_404(s, ModelVersion, dep.model_version_id, "model version").task or ""
    out["labels"] = label_figures(n_ok, labelled)
    positive = canvas.problem_settings(db, dep.use_case_id)[1]  # the ML canvas's positive class (issue 20)
    metrics = performance_metrics(task, labelled, positive or None)
    out["performance"] = CheckPerformancePublic(task=task, metrics=metrics, n_labelled=len(labelled))
    for kind in CHECKS:
        kind.measure(db, monitor, dep, out)
    return out


def use_sketches(volume: int) -> bool:
    """Whether a window of `volume` logged predictions is checked for drift from sketches (issue 16.4).

    Up to MLOPS_DRIFT_SKETCH_ROWS (200,000 by default) the window is loaded whole and compared exactly, as
    before: its cost is moderate, and text columns (a domain classifier on the texts) and any knife-edge
    Wasserstein score stay exact. Above it the window is read once in batches and compared from binned
    sketches: the same verdicts (counts exact; the binned Wasserstein distance within ~1e-3 of the exact one)
    in memory bounded by the batch size instead of the window."""
    from ...config import get_settings

    limit = get_settings().drift_sketch_rows
    return limit <= 0 or volume > limit


def drift_from_sketches(db: Database, monitor: Monitor, dep, out: dict[str, Any]) -> None:
    """DriftCheck.measure for a large window: the stored reference sketches against the window's, built
    while reading the window once in batches. Fills `out` like the in-memory path does."""
    from ...config import get_settings
    from ...monitoring.sketches import detect_drift_from_sketches
    from .kinds import MIN_ROWS_FOR_DRIFT

    try:
        ref = windows.reference_sketches(db, model_version_id=dep.model_version_id)
    except Exception as exc:  # noqa: BLE001 - a check without reference still stores health and performance
        out["status"] = "failed"
        out["error"] = f"could not load the training reference: {exc}"[:2000]
        return
    out["reference_dataset_version_id"] = ref.dataset_version_id
    out["n_reference_rows"] = ref.n_rows
    batch_rows = max(1000, int(get_settings().stream_batch_rows))
    with db.read() as s:
        cur = windows.window_sketches(
            s, deployment_id=dep.id, window=out["window"], reference=ref, batch_rows=batch_rows
        )
    out["unreadable_rows"] = cur.unreadable_rows
    if cur.n_rows < MIN_ROWS_FOR_DRIFT:
        out["status"] = "ok"
        out["drift_note"] = f"only {cur.n_rows} rows in the window: at least {MIN_ROWS_FOR_DRIFT} are needed for drift"
        return
    columns = [c for c in (monitor.columns or list(ref.inputs.columns)) if c in ref.inputs.columns]
    methods = {k: v for k, v in (monitor.method_overrides or {}).items() if k in columns}
    thresholds = {k: float(v) for k, v in (monitor.threshold_overrides or {}).items() if k in columns}
    try:
        result = detect_drift_from_sketches(
            ref.inputs,
            cur.inputs,
            columns=columns,
            stattest_overrides=methods or None,
            threshold_overrides=thresholds or None,
            drift_share=monitor.drift_share,
        )
    except ValueError as exc:
        out["status"] = "failed"
        out["error"] = f"drift could not be computed: {exc}"[:2000]
        return
    drift = result.to_dict()
    drift["prediction"] = None
    drift["computed_from"] = f"sketches ({cur.n_rows:,} rows read in batches of {batch_rows:,})"
    if ref.prediction is not None and cur.prediction is not None:
        try:
            pr = detect_drift_from_sketches(ref.prediction, cur.prediction)
            drift["prediction"] = pr.columns["prediction"].to_dict() if "prediction" in pr.columns else None
        except (ValueError, TypeError) as exc:
            log.info("prediction drift skipped: %s", exc)
    elif cur.prediction_note:
        log.info("%s", cur.prediction_note)
    out["drift"] = CheckDriftPublic.model_validate(drift)


def _breaches_for_check(monitor: Monitor, dep, check: MonitorCheck, figures: dict[str, Any]) -> list[Breach]:
    link = f"{PAGE_DEPLOYMENT}?deployment={dep.name}&check={check.id}"
    base = dict(
        deployment_id=dep.id,
        deployment_name=dep.name,
        use_case_id=dep.use_case_id,
        monitor_id=monitor.id,
        check_id=check.id,
        link=link,
    )
    return [b for kind in CHECKS for b in kind.breaches(monitor, dep, check, figures, base)]


def _worst_kpi(kpis: list[CheckKpiPublic]) -> str:
    worst = "unknown"
    for k in kpis:
        if KPI_RANK.get(k.status, 0) > KPI_RANK.get(worst, 0):
            worst = k.status
    return worst


def _stored(value: BaseModel) -> dict[str, Any]:
    """A check's figure as its JSON column holds it (only the keys that were measured)."""
    return value.model_dump(exclude_unset=True)


def _unreadable_note(figures: dict[str, Any]) -> str:
    """What the check left out because the logged JSON could not be decoded ("" when nothing)."""
    parts = []
    if figures.get("unreadable_rows"):
        parts.append(
            f"{figures['unreadable_rows']:,} logged prediction(s) in the window could not be decoded "
            "(not valid JSON) and were left out of drift"
        )
    if figures.get("unreadable_labelled_rows"):
        parts.append(
            f"{figures['unreadable_labelled_rows']:,} labelled prediction(s) could not be decoded and "
            "were left out of performance"
        )
    return "; ".join(parts)


def _run_one(
    db: Database, monitor: Monitor, dep, *, as_of: datetime, triggered_by: str, members: list[str]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    started = utcnow()
    figures = _compute_check(db, monitor, dep, as_of)
    w: Window = figures["window"]
    drift: CheckDriftPublic | None = figures.get("drift")
    h: CheckHealthPublic = figures["health"]
    lab = figures["labels"]
    skipped_note = _unreadable_note(figures)
    if skipped_note:
        # Stored with the check (health, performance) and shown in its error line even when it is "ok".
        h = h.model_copy(update={"unreadable_rows": figures["unreadable_rows"]})
        figures["performance"].unreadable_rows = figures["unreadable_labelled_rows"]
        figures["error"] = "; ".join(x for x in (figures["error"], skipped_note) if x)[:2000]
    health_breach = any(kind.breached(monitor, figures) for kind in CHECKS if kind.health)
    created, repeated, retrain_alerts = [], [], []
    with db.unit_of_work() as s:
        check = MonitorCheck(
            monitor_id=monitor.id,
            deployment_id=dep.id,
            model_version_id=dep.model_version_id,
            reference_dataset_version_id=figures.get("reference_dataset_version_id"),
            started_at=started,
            triggered_by=triggered_by,
            status=figures["status"],
            error=figures["error"],
            window_start=w.start,
            window_end=w.end,
            n_rows=h.volume,
            n_reference_rows=figures.get("n_reference_rows", 0),
            dataset_drifted=None if not drift else drift.dataset_drifted,
            drift_share=None if not drift else drift.drift_share,
            n_drifted_columns=None if not drift else drift.number_of_drifted_columns,
            n_columns=None if not drift else drift.number_of_columns,
            prediction_drifted=None if not drift or not drift.prediction else drift.prediction.drifted,
            drift=_stored(
                drift or CheckDriftPublic(**({"note": figures["drift_note"]} if figures.get("drift_note") else {}))
            ),
            performance=_stored(figures["performance"]),
            kpis=[_stored(k) for k in figures["kpis"]],
            kpi_status=_worst_kpi(figures["kpis"]),
            health=_stored(h),
            health_status="unknown" if not h.volume else ("breach" if health_breach else "ok"),
            label_coverage=lab["coverage"],
            n_unlabelled=lab["n_unlabelled"],
            label_delay_p50_s=lab["delay_p50_s"],
            label_delay_max_s=lab["delay_max_s"],
        )
        s.add(check)
        s.flush()
        for kind in CHECKS:
            kind.store(s, check, figures)
        by_column = list(drift.columns.items()) if drift else []
        if drift and drift.prediction:
            by_column.append(("(prediction)", drift.prediction))
        for name, c in by_column:
            s.add(
                MonitorCheckColumn(
                    check_id=check.id,
                    column=name,
                    column_type=c.column_type,
                    method=c.method,
                    score=c.score,
                    threshold=c.threshold,
                    drifted=c.drifted,
                )
            )
        for b in _breaches_for_check(monitor, dep, check, figures):
            alert, is_new = _open_alert(s, b, members)
            if is_new:
                created.append(alert.id)
                if b.kind in RETRAINING_KINDS and monitor.retraining_policy != "off":
                    retrain_alerts.append(alert.id)
            else:
                repeated.append(alert.id)
        check.finished_at = utcnow()
        check.duration_ms = (time.perf_counter() - t0) * 1000
        s.add(check)
        kpi_events.on_check(s, check, dep.name)  # "KPI met / missed" when the light changes (issue 18)
        audit.record(
            s,
            actor=Actor.system() if triggered_by == "system" else Actor(None, triggered_by, "ops"),
            action="monitor.check",
            entity_type="deployment",
            entity_id=dep.id,
            summary=f"checked {dep.name} ({monitor.name}): {check.status}, {check.n_rows:,} predictions, "
            f"drift {'yes' if check.dataset_drifted else 'no'}, KPIs {check.kpi_status}, "
            f"{len(created)} new alert(s)" + (f"; {skipped_note}" if skipped_note else ""),
            after={"check_id": check.id, "alerts": created},
        )
        check_id = check.id
    proposals = []
    for alert_id in retrain_alerts[:1]:  # one retraining per check is plenty
        p = retraining.propose_retraining(db, monitor=monitor, dep=dep, alert_id=alert_id)
        if p is not None:
            proposals.append(p)
    return {
        "monitor": monitor.name,
        "monitor_id": monitor.id,
        "check_id": check_id,
        "status": figures["status"],
        "error": figures["error"],
        "n_rows": h.volume,
        "window_start": w.start.isoformat() if w.start else None,
        "window_end": w.end.isoformat(),
        "dataset_drifted": None if not drift else drift.dataset_drifted,
        "drift_share": None if not drift else drift.drift_share,
        "drifted_columns": [] if not drift else drift.drifted_columns,
        "kpi_status": _worst_kpi(figures["kpis"]),
        "kpis": {k.name: k.status for k in figures["kpis"]},
        "metrics": figures["performance"].metrics,
        "health": _stored(h),
        "labels": lab,
        "alerts_opened": created,
        "alerts_repeated": repeated,
        "proposals": [p["id"] for p in proposals],
        "runs_queued": [p["run_id"] for p in proposals if p["run_id"]],
        "skipped_rows": figures["unreadable_rows"],
        "skipped_labelled_rows": figures["unreadable_labelled_rows"],
        "duration_ms": round((time.perf_counter() - t0) * 1000, 1),
    }


def run_monitor(
    db: Database,
    *,
    deployment_name: str,
    actor: Actor | None = None,
    as_of: datetime | None = None,
    monitor_id: int | None = None,
) -> dict[str, Any]:
    """Run the deployment's enabled monitors now (or only `monitor_id`); returns a JSON-safe summary.

    `actor` None means the scheduler (system). `as_of` replays a check as of an earlier moment (demo, tests).
    A run that fails raises a "monitoring_down" alert of its own (kept open, deduplicated, while runs keep
    failing) and re-raises; the next run that succeeds resolves it. Every caller — the scheduled job, the
    CLI, "Run a check now" — goes through here, so none of them can fail silently.
    """
    if actor is not None:
        require(actor, "monitor.run")
    with db.read() as s:
        deployment_by_name(s, deployment_name)  # an unknown name is the caller's mistake, not monitoring being down
    try:
        summary = _run_monitor(db, deployment_name=deployment_name, actor=actor, as_of=as_of, monitor_id=monitor_id)
    except Exception as exc:
        try:
            _monitoring_down(db, deployment_name, exc)
        except Exception:  # noqa: BLE001 - the database may be what failed; the job's own error still says why
            log.exception("could not record that monitoring of %s failed", deployment_name)
        raise
    if summary["checks"]:
        _monitoring_back(db, deployment_name)
    return summary


def _monitoring_down_key(deployment_name: str) -> str:
    return f"monitoring_down:{deployment_name}"


def _monitoring_down(db: Database, deployment_name: str, exc: BaseException) -> None:
    """Open (or bump) the alert saying the deployment is no longer monitored, with the failure's reason."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    reason = f"{type(exc).__name__}: {reason}"[:300]
    now = utcnow()
    with db.read() as s:
        use_case_id = deployment_by_name(s, deployment_name).use_case_id
    members: list[str] = []
    if use_case_id is not None:
        members = usecases.member_usernames(db, use_case_id, roles=("ops", "data_scientist"))
    with db.unit_of_work() as s:
        dep = deployment_by_name(s, deployment_name)
        existing = s.exec(select(Alert).where(Alert.open_key == _monitoring_down_key(deployment_name))).first()
        since = aware(existing.created_at) if existing is not None else now
        last_ok = s.exec(select(func.max(MonitorCheck.started_at)).where(MonitorCheck.deployment_id == dep.id)).one()
        b = Breach(
            kind="monitoring_down",
            severity="critical",
            key=_monitoring_down_key(deployment_name),
            title=f"Monitoring is not running for {deployment_name} since {since:%Y-%m-%d %H:%M} UTC: {reason}",
            detail=f"checks of {deployment_name} fail, so drift, KPIs and health are not being watched. "
            f"Last error: {reason}. Last stored check: "
            f"{aware(last_ok).isoformat() if last_ok else 'none'}. Fix the cause and run "
            f"`python -m mlops_core monitor run --deployment {deployment_name}`; this alert resolves "
            "itself at the next check that succeeds.",
            evidence={
                "error": reason,
                "failed_at": now.isoformat(),
                "last_check_at": aware(last_ok).isoformat() if last_ok else None,
            },
            link=f"{PAGE_DEPLOYMENT}?deployment={deployment_name}",
            deployment_id=dep.id,
            deployment_name=deployment_name,
            use_case_id=dep.use_case_id,
        )
        alert, is_new = _open_alert(s, b, members)
        if is_new:
            audit.record(
                s,
                actor=Actor.system(),
                action="alert.open",
                entity_type="alert",
                entity_id=alert.id,
                summary=f"monitoring of {deployment_name} failed: {reason}",
            )


def _monitoring_back(db: Database, deployment_name: str) -> None:
    """Resolve the "monitoring_down" alert of the deployment, if one is open: a check succeeded again."""
    key = _monitoring_down_key(deployment_name)
    with db.read() as s:
        if s.exec(select(Alert.id).where(Alert.open_key == key)).first() is None:
            return  # the usual case: nothing to resolve, no write
    with db.unit_of_work() as s:
        row = s.exec(select(Alert).where(Alert.open_key == key)).first()
        if row is None:
            return
        before = {"state": row.state}
        row.state = "resolved"
        row.open_key = None
        row.resolved_by = "system"
        row.resolved_at = utcnow()
        row.resolve_note = f"a check of {deployment_name} succeeded again at {row.resolved_at:%Y-%m-%d %H:%M} UTC"
        s.add(row)
        audit.record(
            s,
            actor=Actor.system(),
            action="alert.resolve",
            entity_type="alert",
            entity_id=row.id,
            summary=f"resolved {row.kind} alert: {row.title}",
            before=before,
            after={"state": "resolved", "note": row.resolve_note},
        )


def _run_monitor(
    db: Database, *, deployment_name: str, actor: Actor | None, as_of: datetime | None, monitor_id: int | None
) -> dict[str, Any]:
    as_of = as_of or utcnow()
    _ensure_default_monitor(db, deployment_name)
    retraining.advance_retraining(db)
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        q = select(Monitor).where(Monitor.deployment_id == dep.id)
        if monitor_id is not None:
            q = q.where(Monitor.id == monitor_id)
        else:
            q = q.where(col(Monitor.enabled).is_(True))
        monitors = s.exec(q.order_by(Monitor.id)).all()
        s.expunge_all()
    members: list[str] = []
    if dep.use_case_id is not None:
        members = usecases.member_usernames(db, dep.use_case_id, roles=("ops", "data_scientist"))
    who = "system" if actor is None else actor.username
    checks = [_run_one(db, m, dep, as_of=as_of, triggered_by=who, members=members) for m in monitors]
    system = check_system_health(db, now=as_of)
    return {
        "deployment": dep.name,
        "model_version_id": dep.model_version_id,
        "as_of": as_of.isoformat(),
        "checks": checks,
        "alerts_opened": [a for c in checks for a in c["alerts_opened"]] + system["alerts_opened"],
        "alerts_repeated": [a for c in checks for a in c["alerts_repeated"]] + system["alerts_repeated"],
        "proposals": [p for c in checks for p in c["proposals"]],
        "runs_queued": [r for c in checks for r in c["runs_queued"]],
    }


def check_system_health(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """Alerts for workers or the scheduler being down and for failed ingestion jobs."""
    now = now or utcnow()
    created, repeated = [], []
    with db.unit_of_work() as s:
        for b in _system_breaches(s, now):
            alert, is_new = _open_alert(s, b, [])
            if is_new:
                created.append(alert.id)
            else:
                repeated.append(alert.id)
    return {"alerts_opened": created, "alerts_repeated": repeated}


def list_checks(db: Database, *, deployment_name: str, limit: int = 200) -> list[MonitorCheckPublic]:
    """The latest checks of a deployment, oldest first (for charts)."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        rows = s.exec(
            select(MonitorCheck)
            .where(MonitorCheck.deployment_id == dep.id)
            .order_by(col(MonitorCheck.started_at).desc(), col(MonitorCheck.id).desc())
            .limit(limit)
        ).all()
        return [MonitorCheckPublic.model_validate(r, from_attributes=True) for r in reversed(rows)]


def get_check(db: Database, check_id: int) -> MonitorCheckPublic:
    with db.read() as s:
        row = s.get(MonitorCheck, check_id)
        if row is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        return MonitorCheckPublic.model_validate(row, from_attributes=True)


def monitor_job(ctx) -> dict[str, Any]:
    """Kind "monitor": payload {"deployment": name, "monitor_id"?: id}; fired by the monitor's schedule."""
    name = ctx.payload.get("deployment")
    if not name:
        raise ValidationError("a monitor job needs the deployment name in its payload")
    ctx.progress(0.05, f"checking {name}")
    summary = run_monitor(ctx.db, deployment_name=name, monitor_id=ctx.payload.get("monitor_id"))
    ctx.progress(1.0, f"{len(summary['alerts_opened'])} new alert(s)")
    return summary
