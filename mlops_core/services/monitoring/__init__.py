"""Production monitoring (stage 5): monitors, checks, alerts, dashboards and evidently reports.

A *monitor* watches one deployment (`monitors.py`). Running it (`checks.run_monitor`, from the
scheduler's "monitor" job, the CLI or the page) produces one *check* per monitor over a window of
logged predictions (`windows.py`): service health from SQL, data drift against the model's training
reference, performance and KPIs on the predictions whose late labels have arrived, label coverage.
Each kind of check is one object in `kinds.py`. Breaches raise deduplicated *alerts* (`alerts.py`);
drift or a missed KPI starts the retraining loop (services/retraining.py). The pages read
`dashboards.py` and `reports.py`.

This package re-exports the names pages, the CLI and tests use as `monitoring.X`.
"""

from __future__ import annotations

from .alerts import (
    Breach,
    acknowledge_alert,
    alert_deployment_names,
    deliver_webhook,
    get_alert,
    list_alerts,
    resolve_alert,
    webhook_body,
    webhook_job,
)
from .checks import check_system_health, get_check, list_checks, monitor_job, run_monitor
from .dashboards import drift_history, live_health, overview
from .estimates import estimated_kpi_status, estimated_kpis_many, list_estimates
from .kinds import CHECKS
from .monitors import MONITOR_FIELDS, configure_monitor, enqueue_monitor_run, list_monitors
from .reports import render_report, report_html, report_job, request_report
from .windows import Window, health_figures, load_window_frame, reference_frame, window_bounds

__all__ = [
    "CHECKS",
    "MONITOR_FIELDS",
    "Breach",
    "Window",
    "acknowledge_alert",
    "alert_deployment_names",
    "check_system_health",
    "configure_monitor",
    "deliver_webhook",
    "drift_history",
    "enqueue_monitor_run",
    "estimated_kpi_status",
    "estimated_kpis_many",
    "get_alert",
    "get_check",
    "health_figures",
    "list_alerts",
    "list_checks",
    "list_estimates",
    "list_monitors",
    "live_health",
    "load_window_frame",
    "monitor_job",
    "overview",
    "reference_frame",
    "render_report",
    "report_html",
    "report_job",
    "request_report",
    "resolve_alert",
    "run_monitor",
    "webhook_body",
    "webhook_job",
    "window_bounds",
]
