"""Ops settings of a deployment (issue 15): its availability objective and who hears of which alerts.

Table `ops_settings`, one row per deployment (none: no routes, no availability objective):
- `slo_availability`: the share of requests the service answers without failing (5xx), e.g. 0.995, over
  the last `slo_window_days` days; the error-rate and latency p95 objectives are the monitor's
  `max_error_rate` / `max_latency_p95_ms` (the health check's thresholds), edited with them;
- `alert_routes`: [{"kinds": ["*"] | [alert kind, ...], "min_severity": "info"|"warning"|"critical",
  "recipients": ["omar", "role:ops", ...], "channels": ["in_app", "email", "chat", "webhook"]}]:
  a matching alert reaches the recipients' inbox (in_app), their email and their own chat webhook (as set on
  their Account page, delivered by services/delivery.py), and `webhook_url` (the deployment's webhook);
- `webhook_url` / `webhook_flavor`: a Slack- or Teams-compatible webhook of the deployment (a credential).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field

ROUTE_CHANNELS = ("in_app", "email", "chat", "webhook")


class OpsSettings(SQLModel, table=True):
    __tablename__ = "ops_settings"

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id", unique=True, index=True)
    slo_availability: float | None = Field(default=None)
    slo_window_days: int = Field(default=30)
    alert_routes: list[dict[str, Any]] = json_field(default_factory=list)
    webhook_url: str = Field(default="", max_length=1000)
    webhook_flavor: str = Field(default="slack", max_length=16)
    version: int = Field(default=1)
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class AlertRoute(BaseModel):
    kinds: list[str] = ["*"]
    min_severity: str = "warning"
    recipients: list[str] = []
    channels: list[str] = ["in_app", "email"]


class OpsSettingsPublic(BaseModel):
    deployment: str
    deployment_id: int
    # the health check's thresholds (the deployment's default monitor)
    max_error_rate: float | None
    max_latency_p95_ms: float | None
    slo_availability: float | None
    slo_window_days: int
    alert_routes: list[AlertRoute]
    webhook_url: str  # blanked for those who may not edit (a credential)
    webhook_set: bool
    webhook_flavor: str
    version: int  # 0: never saved
    updated_by: str
    updated_at: datetime | None


class SloStatusPublic(BaseModel):
    window_days: int
    requests: int
    server_errors: int
    availability: float | None
    target: float | None
    met: bool | None
    budget_left: float | None  # share of the error budget still unspent (negative: overspent)
