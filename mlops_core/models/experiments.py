"""Experiments and the model registry (stage 3).

Tables:
- `runs`: one training run (from the UI, the tracking SDK, a reproduction or a retraining alert) with
  everything needed to reproduce it: dataset version and hash, config, params, seed, code and package
  versions, who, status, timings.
- `run_metrics`: every logged metric value (history: per step, per fold, boosting stages).
- `run_latest_metrics`: one row per (run, key) with the latest value — what tables sort, filter and
  compare on in SQL (MLflow's `latest_metrics` idea: never scan the history to rank runs).
- `run_artifacts`: files of a run in the artifact store (the skops model, plot data, tracebacks).
- `registered_models`, `model_versions` (auto-incremented per model), `model_aliases` (champion, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow

RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled")
FINAL_STATUSES = ("finished", "failed", "cancelled")


class Run(SQLModel, table=True):
    """One training run and its reproducibility record."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_use_case_status", "use_case_id", "status"),
        Index("ix_runs_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    use_case_id: int | None = Field(default=None, foreign_key="use_cases.id", index=True)
    dataset_version_id: int | None = Field(default=None, index=True)
    dataset_hash: str = Field(default="", max_length=128)
    status: str = Field(default="queued", max_length=16, index=True)
    # "ui" (no-code launch), "sdk" (tracking SDK), "mlflow" (MLflow client), "api" / "ci" (no-code launch over
    # the Hub API / from a CI pipeline), "reproduce", "retrain" (from a monitoring alert)
    source: str = Field(default="ui", max_length=16, index=True)
    task: str = Field(default="", max_length=32)  # "classification" | "regression" | "" (SDK, unknown)
    target: str = Field(default="", max_length=200)
    algorithm: str = Field(default="", max_length=64, index=True)
    # The launch configuration (what `start_run` got, normalised); re-running it reproduces the run.
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tags: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seed: int | None = None
    code_version: str = Field(default="", max_length=64)
    package_versions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    input_schema: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    model_artifact_key: str | None = Field(default=None, max_length=500)
    job_id: int | None = Field(default=None, index=True)
    progress: float = Field(default=0.0)
    progress_message: str = Field(default="", max_length=500)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reproduced_from_run_id: int | None = Field(default=None, foreign_key="runs.id")
    triggered_by_alert_id: int | None = Field(default=None, index=True)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_by: str = Field(default="", max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None


class RunMetric(SQLModel, table=True):
    """One logged metric value. `step` is None for a single value, a step/fold/stage number otherwise."""

    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_key", "run_id", "key", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id")
    key: str = Field(max_length=200)
    value: float
    step: int | None = None


class RunLatestMetric(SQLModel, table=True):
    """The latest value of each metric of a run (test metrics plain, e.g. `f1`; train as `train_f1`)."""

    __tablename__ = "run_latest_metrics"
    __table_args__ = (Index("ix_run_latest_key_value", "key", "value"),)

    run_id: int = Field(foreign_key="runs.id", primary_key=True)
    key: str = Field(max_length=200, primary_key=True)
    value: float
    step: int | None = None


class RunArtifact(SQLModel, table=True):
    """A file of a run in the artifact store: kind "model" (skops), "plot_data" (JSON), "traceback", "file"."""

    __tablename__ = "run_artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_run_artifact_name"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="file", max_length=32)
    artifact_key: str = Field(max_length=500)
    media_type: str = Field(default="application/octet-stream", max_length=100)
    size_bytes: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class RegisteredModel(SQLModel, table=True):
    """A named model (e.g. "churn-classifier"); its versions come from runs."""

    __tablename__ = "registered_models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    use_case_id: int | None = Field(default=None, foreign_key="use_cases.id", index=True)
    description: str = Field(default="", max_length=5000)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    """Version N of a registered model: the fitted pipeline of one run (skops), with its lineage and card."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", index=True)
    version: int
    run_id: int = Field(foreign_key="runs.id", index=True)
    use_case_id: int | None = Field(default=None, foreign_key="use_cases.id", index=True)
    dataset_version_id: int | None = Field(default=None, index=True)
    artifact_key: str = Field(max_length=500)
    task: str = Field(default="", max_length=32)
    target: str = Field(default="", max_length=200)
    input_schema: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Snapshot of the run's test metrics at registration (the run is immutable once finished anyway).
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Model card: intended use, limitations, free-form notes (KPI checks and lineage are computed).
    card: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ModelAlias(SQLModel, table=True):
    """A movable name for one version of a model, e.g. `champion` or `challenger`."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias", name="uq_model_alias"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", index=True)
    alias: str = Field(max_length=64)
    model_version_id: int = Field(foreign_key="model_versions.id", index=True)
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


# --- what services return -----------------------------------------------------------------


class RunPublic(BaseModel):
    """A run as pages, the SDK and other stages see it. `metrics`: latest test metrics (no `train_` keys)."""

    id: int
    name: str
    use_case_id: int | None
    dataset_version_id: int | None
    dataset_hash: str
    status: str
    source: str
    task: str
    target: str
    algorithm: str
    config: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, Any]
    seed: int | None
    code_version: str
    package_versions: dict[str, Any]
    input_schema: list[dict[str, Any]] | None
    model_artifact_key: str | None
    job_id: int | None
    progress: float
    progress_message: str
    error: str | None
    reproduced_from_run_id: int | None
    triggered_by_alert_id: int | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    metrics: dict[str, float] = {}
    train_metrics: dict[str, float] = {}
    all_metrics: dict[str, float] = {}


class RunArtifactPublic(BaseModel):
    id: int
    run_id: int
    name: str
    kind: str
    artifact_key: str
    media_type: str
    size_bytes: int
    created_at: datetime


class RegisteredModelPublic(BaseModel):
    id: int
    name: str
    use_case_id: int | None
    description: str
    created_by: str
    created_at: datetime
    latest_version: int | None = None
    aliases: dict[str, int] = {}  # alias -> version number


class ModelVersionPublic(BaseModel):
    """A model version with what deployment and monitoring need (schema, metrics, lineage)."""

    id: int
    model_id: int
    model_name: str
    version: int
    run_id: int
    use_case_id: int | None
    dataset_version_id: int | None
    artifact_key: str
    task: str
    target: str
    input_schema: list[dict[str, Any]]
    metrics: dict[str, float]
    card: dict[str, Any]
    aliases: list[str] = []
    created_by: str
    created_at: datetime

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.version}"


# --- what the run page plots (stored as the run's plots.json artifact; read into these by plot_data) ---


class ConfusionMatrixPublic(BaseModel):
    """Counts per (actual, predicted) class, rows = actual."""

    labels: list[str]
    matrix: list[list[int]]


class RocCurvePublic(BaseModel):
    """ROC curve of a binary classifier (thinned to at most 200 points)."""

    fpr: list[float]
    tpr: list[float]


class PrCurvePublic(BaseModel):
    """Precision-recall curve of a binary classifier."""

    recall: list[float]
    precision: list[float]


class ClassMetricsPublic(BaseModel):
    """Precision, recall, f1 of one class on the test split, and its support (rows of that class)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


class ClassRocCurvePublic(BaseModel):
    """ROC curve of one class (binary: the positive class; multiclass: one-vs-rest) and its area."""

    label: str
    fpr: list[float]
    tpr: list[float]
    auc: float | None = None


class ClassPrCurvePublic(BaseModel):
    """Precision-recall curve of one class, its average precision and the class's share of rows (chance)."""

    label: str
    recall: list[float]
    precision: list[float]
    average_precision: float | None = None
    prevalence: float | None = None


class ResidualsPublic(BaseModel):
    """Predicted value and actual minus predicted, for up to 1,000 test rows of a regression."""

    predicted: list[float]
    residual: list[float]


class FeatureImportancePublic(BaseModel):
    """One feature's importance (the model's own, or its mean absolute coefficient)."""

    feature: str
    importance: float
    std: float | None = None  # permutation importance: spread over the shuffles


class StagedCurvePublic(BaseModel):
    """Train/test score per boosting stage (log loss or RMSE)."""

    metric: str
    stage: list[int]
    train: list[float]
    test: list[float]


class SearchResultPublic(BaseModel):
    """One hyperparameter candidate and its mean validation score."""

    params: dict[str, Any]
    score: float
    seconds: float | None = None  # time to fit and score its folds (runs trained before issue 16 have none)


class PlotDataPublic(BaseModel):
    """Everything the run page plots; a figure is None (or empty) when the run has no data for it."""

    task: str | None = None
    confusion_matrix: ConfusionMatrixPublic | None = None
    roc: RocCurvePublic | None = None
    pr: PrCurvePublic | None = None
    positive_class: str | None = None
    residuals: ResidualsPublic | None = None
    feature_importance: list[FeatureImportancePublic] = []
    # permutation importance of each input column on the test split (original column names)
    permutation_importance: list[FeatureImportancePublic] = []
    staged: StagedCurvePublic | None = None
    search_results: list[SearchResultPublic] = []
    n_train: int | None = None
    n_test: int | None = None
    # issue 15, classifiers: rows per class in the test split, per-class metrics, one ROC/PR curve per class
    # (binary: the positive class). Empty for runs trained before: the page says "not recorded for this run".
    class_counts: dict[str, int] = {}
    per_class: list[ClassMetricsPublic] = []
    roc_curves: list[ClassRocCurvePublic] = []
    pr_curves: list[ClassPrCurvePublic] = []

    @field_validator("feature_importance", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        """Runs trained before issue 15 stored the ColumnTransformer's names ("num__age", "cat__plan_basic")."""
        out = []
        for f in v or []:
            if isinstance(f, dict) and str(f.get("feature", "")).startswith(("num__", "cat__")):
                f = {**f, "feature": str(f["feature"]).split("__", 1)[1]}
            out.append(f)
        return out

    @field_validator("staged", mode="before")
    @classmethod
    def _no_stages(cls, v: Any) -> Any:
        return v or None  # stored as {} for models without boosting stages
