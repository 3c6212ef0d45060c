"""Evidently reports of a check: rendered on demand by a worker job, stored once, served escaped."""

from __future__ import annotations

from typing import Any

from ... import artifacts, jobs
from ...db import Database
from ...errors import NotFound, ValidationError
from ...models.monitoring import Monitor, MonitorCheck, ReportRequestPublic
from ...monitoring.evidently_report import escape_report_data, render_drift_report_html
from .._common import aware
from ..auth import Actor, require
from .windows import Window, align, load_window_frame, reference_frame


def request_report(db: Database, *, actor: Actor, check_id: int) -> ReportRequestPublic:
    """Ask the worker to render the evidently report of a check: its `report_key` when it exists already,
    else the `job_id` of the render job (deduplicated: two clicks render once)."""
    require(actor, "audit.read")  # everyone may read reports
    with db.unit_of_work() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        if check.report_key:
            return ReportRequestPublic(report_key=check.report_key, job_id=None)
        if check.status != "ok" or not check.drift or "columns" not in check.drift:
            raise ValidationError(
                f"check {check_id} has no drift result to report on ({check.status}"
                f"{': ' + check.error if check.error else ''})"
            )
        job_id = jobs.enqueue(
            s,
            kind="monitor_report",
            payload={"check_id": check_id},
            max_attempts=2,
            dedupe_key=f"monitor_report:{check_id}",
        )
        return ReportRequestPublic(report_key=None, job_id=job_id)


def render_report(db: Database, *, check_id: int) -> str:
    """Render and store the evidently HTML report of a check (the "monitor_report" job). Idempotent."""
    with db.read() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        if check.report_key:
            return check.report_key
        monitor = s.get(Monitor, check.monitor_id)
        s.expunge_all()
    ref, _, _ = reference_frame(db, model_version_id=check.model_version_id)
    window = Window(start=aware(check.window_start), end=aware(check.window_end))
    with db.read() as s:
        cur = load_window_frame(s, deployment_id=check.deployment_id, window=window, columns=list(ref.columns))
    current = align(cur.drop(columns="__prediction__"), ref)
    columns = [c for c in (monitor.columns or list(ref.columns)) if c in ref.columns]
    html = render_drift_report_html(ref, current, columns=columns, drift_share=monitor.drift_share)
    key = f"monitoring/reports/check-{check_id}.html"
    artifacts.put_bytes(key, html.encode("utf-8"))
    with db.unit_of_work() as s:
        row = s.get(MonitorCheck, check_id)
        row.report_key = key
        s.add(row)
    return key


def report_html(db: Database, *, check_id: int) -> str | None:
    """The stored report of a check, or None when it was not rendered yet. Its inlined data is escaped
    again on the way out, so a report stored before that escaping existed cannot run a logged value."""
    with db.read() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        key = check.report_key
    if not key:
        return None
    return escape_report_data(artifacts.get_bytes(key).decode("utf-8"))[0]


def report_job(ctx) -> dict[str, Any]:
    """Kind "monitor_report": payload {"check_id"}; renders and stores the evidently report."""
    ctx.progress(0.1, "rendering the evidently report")
    key = render_report(ctx.db, check_id=int(ctx.payload["check_id"]))
    return {"report_key": key}
