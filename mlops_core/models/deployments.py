"""Deployments (stage 4): named endpoints, the gated requests that move model versions onto
them, their history, their API keys, and the log of every prediction they served.

Tables:
- `deployments`: one named endpoint (`churn`) of a use case in one environment; which model
  version it serves now, and an optional canary challenger with a traffic share. `generation`
  is bumped by every change so scoring processes notice a deploy/rollback by polling one row.
- `deployment_requests`: a data scientist's request to put a model version on an endpoint,
  with the gates evaluated from evidence (a checklist) and what became of it.
- `deployment_events`: history — which model version served from when (deploy, rollback,
  canary start/stop, override).
- `api_keys`: per-deployment scoring keys; only the SHA-256 is stored.
- `predictions`: one row per scored record (API, canary shadow, batch scoring), with the
  ground-truth label joined later by `request_id`.

Monitoring (stage 5) reads `predictions`: use rows with `status == "ok"`; `inputs` is
the record as a {column: value} dict, `prediction` the served output, `label`/`labelled_at`
the late ground truth.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from ..db import utcnow

ENVIRONMENTS = ("staging", "production")


class Deployment(SQLModel, table=True):
    """A named scoring endpoint of a use case, in staging or production."""

    __tablename__ = "deployments"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    use_case_id: int | None = Field(default=None, foreign_key="use_cases.id", index=True)
    environment: str = Field(default="staging", max_length=16, index=True)
    # The champion: what the endpoint serves now (None until the first deploy).
    model_version_id: int | None = Field(default=None, foreign_key="model_versions.id", index=True)
    deployed_at: datetime | None = None
    # Optional canary: `canary_share` (0..1) of requests are served by the challenger;
    # each such request is scored by both versions and both predictions are logged.
    canary_model_version_id: int | None = Field(default=None, foreign_key="model_versions.id")
    canary_share: float = Field(default=0.0)
    # Largest allowed drop of a KPI metric vs the current production version (gate "no regression").
    regression_tolerance: float = Field(default=0.01)
    # Bumped on every change to what is served; scoring processes poll it to hot-reload.
    generation: int = Field(default=1)
    description: str = Field(default="", max_length=2000)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DeploymentRequest(SQLModel, table=True):
    """A request to serve a model version on an endpoint, and its gate checklist."""

    __tablename__ = "deployment_requests"

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id", index=True)
    model_version_id: int = Field(foreign_key="model_versions.id", index=True)
    environment: str = Field(max_length=16)
    requested_by: str = Field(max_length=64)
    # pending (gates evaluated, waiting for ops) | deployed | rejected | superseded
    status: str = Field(default="pending", max_length=16, index=True)
    # [{"gate", "title", "status": "passed"|"failed"|"waived"|"not_required", "detail", "evidence": {...}}]
    gates: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    gates_evaluated_at: datetime = Field(default_factory=utcnow)
    # sha256 of (model version id, dataset version id, metrics): what a business sign-off must approve.
    evidence_hash: str = Field(default="", max_length=64)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    signoff_id: int | None = Field(default=None)
    override_reason: str = Field(default="", max_length=2000)
    overridden_by: str | None = Field(default=None, max_length=64)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    note: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Who acknowledged, when requesting, that the model's input schema differs from what the endpoint
    # serves now ("" = not acknowledged): the gate "schema_match" then counts as waived (issue 15).
    schema_change_ack: str = Field(default="", max_length=64)


class DeploymentEvent(SQLModel, table=True):
    """One move of an endpoint: deploy, rollback, canary start/stop. The history screen."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_dep_at", "deployment_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="deployments.id")
    kind: str = Field(max_length=32)  # deploy | rollback | canary_start | canary_stop | override
    from_model_version_id: int | None = None
    to_model_version_id: int | None = None
    request_id: int | None = Field(default=None)
    actor_username: str = Field(max_length=64)
    reason: str = Field(default="", max_length=2000)
    at: datetime = Field(default_factory=utcnow)


class DeploymentKeyBase(SQLModel):
    """The columns every per-deployment key table has (scoring `api_keys`, bundle `upload_keys`): only the key's
    SHA-256 is stored, with the first characters to recognise it by, and who created/revoked it."""

    deployment_id: int = Field(foreign_key="deployments.id", index=True)
    name: str = Field(default="", max_length=200)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=64)


class ApiKey(DeploymentKeyBase, table=True):
    """A scoring API key for one deployment; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)


class Prediction(SQLModel, table=True):
    """One scored record. Written in batches by the scoring service (never one commit per request)."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_dep_created", "deployment_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # The id returned to the caller; a request of n > 1 records logs ids "<request_id>.<i>".
    request_id: str = Field(max_length=64, unique=True, index=True)
    deployment_id: int = Field(foreign_key="deployments.id")
    model_version_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    source: str = Field(default="api", max_length=16)  # api | batch | ui
    inputs: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    prediction: Any | None = Field(default=None, sa_type=JSON)
    # Binary classifiers: the probability of the positive class (ml.scoring.positive_index picks
    # it with the rule monitoring uses for precision/recall), so live roc_auc can be computed. NULL otherwise.
    score: float | None = None
    # Canary: the other version's prediction of the same record, side by side.
    shadow_model_version_id: int | None = None
    shadow_prediction: Any | None = Field(default=None, sa_type=JSON)
    latency_ms: float = Field(default=0.0)
    status: str = Field(default="ok", max_length=16, index=True)  # ok | error
    error: str = Field(default="", max_length=500)
    label: Any | None = Field(default=None, sa_type=JSON)
    labelled_at: datetime | None = None


# --- what pages, the CLI and other stages see -------------------------------------------------


class DeploymentPublic(BaseModel):
    id: int
    name: str
    use_case_id: int | None
    environment: str
    model_version_id: int | None
    deployed_at: datetime | None
    canary_model_version_id: int | None
    canary_share: float
    regression_tolerance: float
    generation: int
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class GateResult(BaseModel):
    """One line of the gate checklist."""

    gate: str
    title: str
    status: str  # passed | failed | waived | not_required
    detail: str
    evidence: dict[str, Any] = {}

    @property
    def blocks(self) -> bool:
        return self.status == "failed"


class DeploymentRequestPublic(BaseModel):
    id: int
    deployment_id: int
    deployment_name: str = ""
    model_version_id: int
    environment: str
    requested_by: str
    status: str
    gates: list[GateResult]
    gates_evaluated_at: datetime
    evidence_hash: str
    evidence: dict[str, Any]
    signoff_id: int | None
    override_reason: str
    overridden_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    note: str
    created_at: datetime
    schema_change_ack: str = ""

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "failed"]


class DeploymentEventPublic(BaseModel):
    id: int
    deployment_id: int
    kind: str
    from_model_version_id: int | None
    to_model_version_id: int | None
    request_id: int | None
    actor_username: str
    reason: str
    at: datetime


class DeploymentKeyPublic(BaseModel):
    """A per-deployment key as shown (never the key or its hash)."""

    id: int
    deployment_id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class ApiKeyPublic(DeploymentKeyPublic):
    pass


class PredictionPublic(BaseModel):
    id: int
    request_id: str
    deployment_id: int
    model_version_id: int | None
    created_at: datetime
    source: str
    inputs: dict[str, Any] | None
    prediction: Any | None
    score: float | None = None
    shadow_model_version_id: int | None
    shadow_prediction: Any | None
    latency_ms: float
    status: str
    error: str
    label: Any | None
    labelled_at: datetime | None


class DeploymentOverviewPublic(BaseModel):
    """One row of the deployments overview: what serves on an endpoint and its recent traffic."""

    name: str
    environment: str
    model_version_id: int | None
    model_version: str
    since: datetime | None
    canary: str  # "<model> vN (10%)" or "" without a canary
    requests: int
    errors: int
    error_rate: float
    avg_latency_ms: float | None
    active_keys: int
    endpoint: str


class PlacementPublic(BaseModel):
    """Where a model version serves: one deployment, as its champion or its canary."""

    deployment: str
    deployment_id: int
    environment: str
    role: str  # champion | canary
    since: datetime | None
    traffic_share: float


class ScoredRecordsPublic(BaseModel):
    """Predictions for records scored from the UI, logged like API predictions under `request_id`."""

    predictions: list[Any]
    model_version_id: int | None
    request_id: str
    scores: list[float | None] | None = None  # positive-class probabilities of a binary classifier


class SignoffKpiRow(BaseModel):
    """One KPI of a sign-off's evidence: what business approves, in words and numbers."""

    kpi: str  # "recall >= 0.75"
    metric: str
    direction: str
    target: float
    value: float | None
    status: str  # met | warning | missed | unknown


class SignoffReviewPublic(BaseModel):
    """A model-version sign-off's evidence, readable: the KPI table of the use case the request serves,
    the training data and its validation status, and what to link to (model card, data, run)."""

    signoff_id: int
    model_version_id: int
    model_version: str  # "churn-classifier v3"
    model_name: str
    use_case_id: int | None
    use_case: str
    deployments: list[str]  # the endpoints whose requests wait on this sign-off
    kpis: list[SignoffKpiRow]
    dataset_id: int | None
    dataset_version_id: int | None
    dataset: str  # "customers@v2"
    dataset_status: str  # validated | waived | failed | "" (none)
    run_id: int | None
    shortfalls: list[str]  # sentences of what falls short (a missed KPI, unvalidated data)
