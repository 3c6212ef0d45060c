"""Production monitoring (stage 5): monitors, their checks, alerts and retraining proposals.

Tables:
- `monitors`: what to watch on one deployment (window, schedule, drift settings, KPIs, health
  thresholds, retraining policy);
- `monitor_checks`: one run of a monitor, with its drift summary, performance, KPI verdicts,
  health figures, label coverage/delay, and the key of the evidently report once rendered;
- `monitor_check_columns`: per-column drift score and verdict of each check, so drift over time is
  charted straight from SQL without recomputing anything;
- `alerts`: a breach (drift, KPI missed, error rate, latency, worker/scheduler down, ingestion
  failed) with severity and an open -> acknowledged -> resolved lifecycle. `open_key` equals
  `dedupe_key` while the alert is not resolved and is NULL afterwards; its unique constraint
  makes "one alert per persisting breach" hold even with two checks racing;
- `retraining_proposals`: a proposed (or automatically queued) retraining run caused by an alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializationInfo, field_serializer
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field
from .datasets import ColumnDriftPublic

WINDOW_KINDS = ("last_n", "last_hours")
RETRAINING_POLICIES = ("off", "propose", "automatic")
ALERT_KINDS = (
    "drift",
    "kpi_missed",
    "error_rate",
    "latency",
    "worker_down",
    "scheduler_down",
    "ingestion_failed",
    "label_coverage",
    "monitoring_down",
    "kpi_estimated_missed",
    "segment_kpi_missed",
    "target_silent",
    "slo_availability",
)
SEVERITIES = ("info", "warning", "critical")
ALERT_STATES = ("open", "acknowledged", "resolved")
PROPOSAL_STATES = ("proposed", "approved", "rejected", "training", "finished", "failed", "challenger")


class Monitor(SQLModel, table=True):
    """What to watch on one deployment and when to raise an alert."""

    __tablename__ = "monitors"
    __table_args__ = (UniqueConstraint("deployment_id", "name", name="uq_monitor_name"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id", index=True)
    deployment_name: str = Field(max_length=200, index=True)
    use_case_id: int | None = Field(default=None, index=True)
    name: str = Field(default="default", max_length=100)
    # Window: the last `window_size` predictions ("last_n") or the last `window_size` hours ("last_hours").
    window_kind: str = Field(default="last_n", max_length=16)
    window_size: int = Field(default=5000)
    # Scheduled by the worker's scheduler every `schedule_seconds` (None: only on demand).
    schedule_seconds: int | None = Field(default=3600)
    columns: list[str] | None = json_field(default_factory=lambda: None, nullable=True)
    method_overrides: dict[str, str] = json_field()
    threshold_overrides: dict[str, float] = json_field()
    drift_share: float = Field(default=0.5)
    # Model KPI names of the use case to watch (None: all of them).
    watch_kpis: list[str] | None = json_field(default_factory=lambda: None, nullable=True)
    max_error_rate: float | None = Field(default=0.05)
    max_latency_p95_ms: float | None = Field(default=500.0)
    min_label_coverage: float | None = Field(default=None)
    retraining_policy: str = Field(default="propose", max_length=16)
    enabled: bool = Field(default=True)
    # Alert on a KPI estimated missed (CBPE/DLE) while labels are too few for a realized verdict.
    alert_on_estimated: bool = Field(default=False)
    # Segment columns: {column: None (categorical) | [bin edges] (numeric)}; see services/monitoring/estimates.py.
    segments: dict[str, Any] = json_field()
    # A drift alert needs a drifted column whose importance x drift intensity reaches this (None: any drift).
    drift_min_importance: float | None = Field(default=None)
    # Columns marked important (issue 15): a drift of one of them alone raises a drift alert for it, even
    # when the share of drifted columns stays below drift_share (None: no per-column alerts).
    important_columns: list[str] | None = json_field(default_factory=lambda: None, nullable=True)
    version: int = Field(default=1)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MonitorPublic(BaseModel):
    id: int
    deployment_id: int
    deployment_name: str
    use_case_id: int | None
    name: str
    window_kind: str
    window_size: int
    schedule_seconds: int | None
    columns: list[str] | None
    method_overrides: dict[str, str]
    threshold_overrides: dict[str, float]
    drift_share: float
    watch_kpis: list[str] | None
    max_error_rate: float | None
    max_latency_p95_ms: float | None
    min_label_coverage: float | None
    retraining_policy: str
    enabled: bool
    alert_on_estimated: bool = False
    segments: dict[str, Any] = {}
    drift_min_importance: float | None = None
    important_columns: list[str] | None = None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class MonitorCheck(SQLModel, table=True):
    """One run of a monitor over one window of logged predictions."""

    __tablename__ = "monitor_checks"
    __table_args__ = (
        Index("ix_monitor_checks_monitor_started", "monitor_id", "started_at"),
        Index("ix_monitor_checks_deployment_started", "deployment_id", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    monitor_id: int = Field(foreign_key="monitors.id")
    deployment_id: int
    model_version_id: int | None = None
    reference_dataset_version_id: int | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_ms: float | None = None
    triggered_by: str = Field(default="system", max_length=64)
    # "ok" (computed), "no_data" (empty window), "failed" (error says why)
    status: str = Field(default="ok", max_length=16)
    error: str = Field(default="", max_length=2000)
    window_start: datetime | None = None
    window_end: datetime | None = None
    n_rows: int = Field(default=0)
    n_reference_rows: int = Field(default=0)
    dataset_drifted: bool | None = None
    drift_share: float | None = None
    n_drifted_columns: int | None = None
    n_columns: int | None = None
    prediction_drifted: bool | None = None
    drift: dict[str, Any] = json_field()  # DriftResult.to_dict() (+ "prediction")
    performance: dict[str, Any] = json_field()  # {"metrics": {...}, "n_labelled": int, "task": ...}
    kpis: list[dict[str, Any]] = json_field(default_factory=list)  # [{name, metric, target, value, status}]
    kpi_status: str = Field(default="unknown", max_length=16)  # worst of the watched KPIs
    health: dict[str, Any] = json_field()  # volume, error_rate, latency p50/p95/p99
    health_status: str = Field(default="unknown", max_length=16)  # "ok" | "breach" | "unknown"
    label_coverage: float | None = None
    n_unlabelled: int | None = None
    label_delay_p50_s: float | None = None
    label_delay_max_s: float | None = None
    report_key: str | None = Field(default=None, max_length=500)  # evidently HTML in the artifact store


# --- what a check stores as JSON (drift, performance, KPIs, health), read into these at the service boundary.
# Every field has a default, so a check stored by any version reads back (`{}` when nothing was measured);
# a key written by a newer check is kept (extra="allow"). MonitorCheckPublic dumps them with
# exclude_unset, so the check's JSON (REST, job results) is exactly what was stored.


class _StoredJson(BaseModel):
    model_config = ConfigDict(extra="allow")


class CheckDriftPublic(_StoredJson):
    """A check's drift: `DriftResult.to_dict()` plus the prediction column's drift; empty when none was
    computed, only `note` when the window was too small."""

    dataset_drifted: bool | None = None
    drift_share: float | None = None
    number_of_columns: int | None = None
    number_of_drifted_columns: int | None = None
    drift_share_threshold: float | None = None
    columns: dict[str, ColumnDriftPublic] = {}
    skipped: dict[str, str] = {}
    prediction: ColumnDriftPublic | None = None
    note: str | None = None  # why there is no drift verdict

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, v in self.columns.items() if v.drifted]


class CheckPerformancePublic(_StoredJson):
    """The model's metrics on the window's labelled predictions."""

    task: str = ""
    metrics: dict[str, float | None] = {}
    n_labelled: int = 0
    unreadable_rows: int | None = None  # labelled rows whose logged JSON could not be decoded


class CheckKpiPublic(_StoredJson):
    """One watched model KPI evaluated on the window."""

    kpi_id: int | None = None
    name: str = ""
    metric: str | None = None
    direction: str = ""
    target: float | None = None
    warning: float | None = None
    value: float | None = None
    status: str = "unknown"  # met | warning | missed | unknown


class CheckHealthPublic(_StoredJson):
    """Volume, error rate and latency of the window (HealthFiguresPublic as stored with the check)."""

    volume: int = 0
    errors: int = 0  # the service's failures only (5xx and unclassified), since issue 15
    error_rate: float | None = None
    client_errors: int | None = None  # 4xx refusals, not in error_rate (None in checks stored before)
    client_error_rate: float | None = None
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    first_at: str | None = None
    last_at: str | None = None
    per_hour: float | None = None
    unreadable_rows: int | None = None  # logged predictions whose JSON could not be decoded


class MonitorCheckPublic(BaseModel):
    id: int
    monitor_id: int
    deployment_id: int
    model_version_id: int | None
    reference_dataset_version_id: int | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    triggered_by: str
    status: str
    error: str
    window_start: datetime | None
    window_end: datetime | None
    n_rows: int
    n_reference_rows: int
    dataset_drifted: bool | None
    drift_share: float | None
    n_drifted_columns: int | None
    n_columns: int | None
    prediction_drifted: bool | None
    drift: CheckDriftPublic
    performance: CheckPerformancePublic
    kpis: list[CheckKpiPublic]
    kpi_status: str
    health: CheckHealthPublic
    health_status: str
    label_coverage: float | None
    n_unlabelled: int | None
    label_delay_p50_s: float | None
    label_delay_max_s: float | None
    report_key: str | None

    @field_serializer("drift", "performance", "health")
    def _as_stored(self, value: _StoredJson, info: SerializationInfo) -> dict[str, Any]:
        return value.model_dump(mode=info.mode, exclude_unset=True)

    @field_serializer("kpis")
    def _kpis_as_stored(self, value: list[CheckKpiPublic], info: SerializationInfo) -> list[dict[str, Any]]:
        return [k.model_dump(mode=info.mode, exclude_unset=True) for k in value]


class MonitorCheckColumn(SQLModel, table=True):
    """Drift of one column in one check (the monitoring page charts these over time)."""

    __tablename__ = "monitor_check_columns"
    __table_args__ = (Index("ix_monitor_check_columns_check", "check_id"),)

    id: int | None = Field(default=None, primary_key=True)
    check_id: int = Field(foreign_key="monitor_checks.id")
    column: str = Field(max_length=200)
    column_type: str = Field(default="", max_length=16)
    method: str = Field(max_length=32)
    score: float | None = None
    threshold: float
    drifted: bool


class Alert(SQLModel, table=True):
    """A threshold breach someone should look at."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("open_key", name="uq_alert_open_key"),
        Index("ix_alerts_state_created", "state", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)
    severity: str = Field(default="warning", max_length=16)
    state: str = Field(default="open", max_length=16)
    title: str = Field(max_length=300)
    detail: str = Field(default="", max_length=4000)
    deployment_id: int | None = Field(default=None, index=True)
    deployment_name: str | None = Field(default=None, max_length=200)
    use_case_id: int | None = Field(default=None, index=True)
    monitor_id: int | None = Field(default=None, index=True)
    check_id: int | None = None
    dedupe_key: str = Field(max_length=300, index=True)
    # = dedupe_key while not resolved, NULL once resolved (unique: one live alert per breach).
    open_key: str | None = Field(default=None, max_length=300)
    evidence: dict[str, Any] = json_field()
    evidence_link: str = Field(default="", max_length=500)
    occurrences: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = None
    ack_note: str = Field(default="", max_length=2000)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = None
    resolve_note: str = Field(default="", max_length=2000)
    webhook_status: str = Field(default="none", max_length=16)  # none | pending | sent | failed
    webhook_attempts: int = Field(default=0)
    webhook_error: str = Field(default="", max_length=500)


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    state: str
    title: str
    detail: str
    deployment_id: int | None
    deployment_name: str | None
    use_case_id: int | None
    monitor_id: int | None
    check_id: int | None
    dedupe_key: str
    evidence: dict[str, Any]
    evidence_link: str
    occurrences: int
    created_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str
    resolved_by: str | None
    resolved_at: datetime | None
    resolve_note: str
    webhook_status: str
    webhook_attempts: int
    webhook_error: str


class RetrainingProposal(SQLModel, table=True):
    """Retrain the champion's configuration on the newest trainable data, because of an alert."""

    __tablename__ = "retraining_proposals"
    __table_args__ = (UniqueConstraint("alert_id", name="uq_retraining_alert"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alerts.id")
    deployment_id: int = Field(foreign_key="deployments.id", index=True)
    deployment_name: str = Field(max_length=200)
    use_case_id: int | None = None
    policy: str = Field(max_length=16)  # the policy that created it: propose | automatic
    state: str = Field(default="proposed", max_length=16, index=True)
    champion_model_version_id: int | None = None
    base_run_id: int | None = None
    dataset_version_id: int | None = None
    config: dict[str, Any] = json_field()
    reason: str = Field(default="", max_length=1000)
    run_id: int | None = Field(default=None, index=True)
    model_version_id: int | None = None  # registered from the finished run
    gate_summary: dict[str, Any] = json_field()
    created_at: datetime = Field(default_factory=utcnow)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    note: str = Field(default="", max_length=2000)


class RetrainingProposalPublic(BaseModel):
    id: int
    alert_id: int
    deployment_id: int
    deployment_name: str
    use_case_id: int | None
    policy: str
    state: str
    champion_model_version_id: int | None
    base_run_id: int | None
    dataset_version_id: int | None
    config: dict[str, Any]
    reason: str
    run_id: int | None
    model_version_id: int | None
    gate_summary: dict[str, Any]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str


# --- read models of the monitoring pages (not tables) -------------------------------------------


class HealthFiguresPublic(BaseModel):
    """Volume, error rate and latency percentiles of one window (stored as a check's `health`)."""

    volume: int
    errors: int  # the service's failures (5xx and unclassified); 4xx client errors are client_errors
    error_rate: float | None
    client_errors: int = 0
    client_error_rate: float | None = None
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    first_at: str | None
    last_at: str | None
    per_hour: float | None


class DriftPointPublic(BaseModel):
    """One column's stored drift score in one check (a point of the drift-over-time chart)."""

    check_id: int
    at: datetime | None
    column: str
    method: str
    score: float | None
    threshold: float
    drifted: bool


class HealthBucketPublic(BaseModel):
    """One time bucket of the live health chart."""

    start: datetime
    volume: int
    errors: int  # every failed request; split below into the client's (4xx) and the service's (5xx and others)
    latency_p95_ms: float | None
    error_rate: float | None
    client_errors: int = 0
    server_errors: int = 0
    client_error_rate: float | None = None
    server_error_rate: float | None = None


class DeploymentStatusPublic(BaseModel):
    """One row of the monitoring overview: a deployment's latest check as traffic lights."""

    deployment: str
    environment: str
    model_version_id: int | None
    last_check_at: datetime | None
    drift: str  # green | amber | red | grey
    kpis: str
    health: str
    open_alerts: int
    n_rows: int
    drift_share: float | None
    kpi_status: str
    error_rate: float | None
    latency_p95_ms: float | None
    segments_missed: int = 0  # segments with an open "KPI missed in a segment" alert


class ReportRequestPublic(BaseModel):
    """The evidently report of a check: its key when stored already, else the render job queued."""

    report_key: str | None
    job_id: int | None
