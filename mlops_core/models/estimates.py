"""Estimated KPIs, segments and importance-ranked drift of a monitor check (issue 17).

Table `monitor_check_estimates`: one row per check (written in the check's unit of work) with
- `estimates`: {metric: {value, lower, upper, std, n, reason}} from CBPE (classifiers) or DLE (regressors)
  over the whole window (`mlops_core.monitoring.estimation`);
- `kpis`: the watched model KPIs judged on the estimates: [{name, metric, direction, target, value, lower,
  upper, status, realized, realized_status}] and `kpi_status`, the worst "estimated" verdict;
- `segments`: per segment of the monitor's segment columns: volume, drift, realized and estimated KPIs;
- `drift_ranking`: drifted columns ranked by permutation importance x drift score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field


class MonitorCheckEstimate(SQLModel, table=True):
    __tablename__ = "monitor_check_estimates"

    id: int | None = Field(default=None, primary_key=True)
    check_id: int = Field(foreign_key="monitor_checks.id", unique=True)
    deployment_id: int = Field(index=True)
    monitor_id: int
    created_at: datetime = Field(default_factory=utcnow)
    method: str = Field(default="", max_length=16)  # "cbpe" | "dle" | ""
    reason: str = Field(default="", max_length=1000)  # why there is no estimate ("" when there is)
    n: int = Field(default=0)
    estimates: dict[str, Any] = json_field()
    kpis: list[dict[str, Any]] = json_field(default_factory=list)
    kpi_status: str = Field(default="unknown", max_length=16)  # met | warning | missed | unknown (estimated)
    segments: list[dict[str, Any]] = json_field(default_factory=list)
    drift_ranking: list[dict[str, Any]] = json_field(default_factory=list)


class CheckEstimatePublic(BaseModel):
    """A check's estimates, with the check's window and realized metrics for charts."""

    check_id: int
    deployment_id: int
    monitor_id: int
    started_at: datetime | None = None
    window_end: datetime | None = None
    n_labelled: int = 0
    realized: dict[str, float | None] = {}
    method: str
    reason: str
    n: int
    estimates: dict[str, Any]
    kpis: list[dict[str, Any]]
    kpi_status: str
    segments: list[dict[str, Any]]
    drift_ranking: list[dict[str, Any]]


class EstimatedKpiPublic(BaseModel):
    """One model KPI of a deployed use case judged on the estimate of its latest check (too few labels to judge
    it on realized values): the portfolio card's "estimated" light."""

    use_case_id: int
    deployment_name: str
    kpi_name: str
    metric: str
    value: float
    status: str  # met | warning | missed (estimated)
    n_labelled: int = 0


class InputPlacePublic(BaseModel):
    """A logged prediction's input placed in the model's training data (the single prediction view)."""

    column: str
    value: Any = None
    kind: str  # numeric | categorical | missing (no value, or a column the training data lacks)
    percentile: float | None = None  # numeric: share of training values <= value, in %
    share: float | None = None  # categorical: share of training rows with this category, in %
    reference_median: float | None = None
    reference_top: str | None = None  # categorical: the most common training category


class PredictionViewPublic(BaseModel):
    request_id: str
    deployment_name: str
    model_version_id: int | None
    prediction: Any = None
    score: float | None = None
    label: Any = None
    reference_rows: int = 0
    reference_note: str = ""
    inputs: list[InputPlacePublic] = []


class DeploymentFairness(SQLModel, table=True):
    """The fairness gate of a deployment: the largest gap of `metric` between the groups of `column` on the
    model's test split must stay within `tolerance` (fairlearn's MetricFrame, `difference()`)."""

    __tablename__ = "deployment_fairness"

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id", unique=True)
    column: str = Field(max_length=200)
    metric: str = Field(max_length=32)
    tolerance: float
    enabled: bool = Field(default=True)
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class FairnessGatePublic(BaseModel):
    deployment_id: int
    column: str
    metric: str
    tolerance: float
    enabled: bool
    updated_by: str
    updated_at: datetime
