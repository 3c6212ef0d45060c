"""Datasets, their immutable content-addressed versions, schemas and scheduled ingestion.

Modelled on Breck et al., "Data validation for machine learning" (SysML 2019): a schema per
dataset (its own versioned record), each new version validated against it, findings in words a
person can act on, drift against the previous version. See issue 4 and DESIGN.md stage 2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field

# Version status: only validated or waived versions may be used for training.
VALIDATED, FAILED, WAIVED = "validated", "failed", "waived"
TRAINABLE_STATUSES = (VALIDATED, WAIVED)

# Column types of a dataset schema (the same words as a model's input_schema, plus datetime).
COLUMN_TYPES = ("integer", "number", "boolean", "category", "string", "datetime")


class Dataset(SQLModel, table=True):
    """A named table of data a use case works with; its content lives in its versions."""

    __tablename__ = "datasets"

    id: int | None = Field(default=None, primary_key=True)
    # Plain indexed id (no FK): the use cases stage owns that table; the service checks it exists.
    use_case_id: int | None = Field(default=None, index=True)
    name: str = Field(max_length=100, unique=True, index=True)
    description: str = Field(default="", max_length=2000)
    owner_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DatasetSchema(SQLModel, table=True):
    """One version of a dataset's schema: inferred from the first data version, then edited by people."""

    __tablename__ = "dataset_schemas"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_schema_version"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="datasets.id", index=True)
    version: int
    # [{"name", "type", "nullable", "max_null_share", "categories"?, "min"?, "max"?}, ...]
    columns: list[dict[str, Any]] = json_field(default_factory=list)
    note: str = Field(default="", max_length=1000)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    """An immutable snapshot: a Parquet artifact named by the hash of its content, plus its report."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_dataset_version_number"),
        UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_version_content"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="datasets.id", index=True)
    version: int
    content_hash: str = Field(max_length=64, index=True)
    artifact_key: str = Field(max_length=300)
    profile_key: str | None = Field(default=None, max_length=300)
    sample_key: str | None = Field(default=None, max_length=300)
    n_rows: int
    n_cols: int
    size_bytes: int = 0
    # [{"name", "type"}] in file order: what a training form or a model's input schema starts from.
    columns: list[dict[str, Any]] = json_field(default_factory=list)
    status: str = Field(max_length=16, index=True)
    parent_id: int | None = Field(default=None, foreign_key="dataset_versions.id")
    schema_id: int | None = Field(default=None, foreign_key="dataset_schemas.id")
    source_kind: str = Field(default="upload", max_length=16)  # upload | path | sql | sdk | cli | ingestion
    source: str = Field(default="", max_length=500)
    # {"findings": [{"severity", "column", "kind", "message"}...], "drift": {...} | None, "counts": {...}}
    report: dict[str, Any] = json_field(default_factory=dict)
    created_by: str = Field(max_length=64)
    created_by_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    waived_by: str | None = Field(default=None, max_length=64)
    waived_reason: str | None = Field(default=None, max_length=1000)
    waived_at: datetime | None = None


class IngestionSource(SQLModel, table=True):
    """A path or SQL query re-read on a schedule; each run adds a version only if the content changed."""

    __tablename__ = "ingestion_sources"

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="datasets.id", index=True)
    kind: str = Field(max_length=8)  # path | sql
    location: str = Field(max_length=1000)  # a file path, or a connection name for sql
    query: str | None = Field(default=None, max_length=10000)
    interval_seconds: int | None = None
    cron: str | None = Field(default=None, max_length=100)
    enabled: bool = True
    schedule_name: str = Field(max_length=100, unique=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_run_at: datetime | None = None
    last_status: str | None = Field(default=None, max_length=16)
    last_error: str | None = Field(default=None, max_length=2000)


class IngestionRun(SQLModel, table=True):
    """One execution of an ingestion source: created a version, found it unchanged, or failed (with why)."""

    __tablename__ = "ingestion_runs"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="ingestion_sources.id", index=True)
    job_id: int | None = None
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    status: str = Field(max_length=16)  # created | unchanged | failed
    version_id: int | None = Field(default=None, foreign_key="dataset_versions.id")
    error: str | None = Field(default=None, max_length=2000)


# --- what pages, the SDK and other stages see ---------------------------------------------


class DatasetPublic(BaseModel):
    id: int
    use_case_id: int | None
    name: str
    description: str
    owner_id: int | None
    created_at: datetime
    n_versions: int = 0
    latest_version: int | None = None
    latest_status: str | None = None


class DatasetVersionPublic(BaseModel):
    """One version; `ref` is what the SDK and runs use ("customers@v2")."""

    id: int
    dataset_id: int
    dataset_name: str
    use_case_id: int | None
    version: int
    ref: str
    content_hash: str
    artifact_key: str
    n_rows: int
    n_cols: int
    size_bytes: int
    columns: list[dict[str, Any]]
    status: str
    parent_id: int | None
    schema_id: int | None
    source_kind: str
    source: str
    created_by: str
    created_at: datetime
    waived_by: str | None = None
    waived_reason: str | None = None
    n_errors: int = 0
    n_warnings: int = 0
    # True when this call found the same content already stored (no new version was made).
    deduplicated: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]


class DatasetSchemaPublic(BaseModel):
    id: int
    dataset_id: int
    version: int
    columns: list[dict[str, Any]]
    note: str
    created_by: str
    created_at: datetime


class IngestionSourcePublic(BaseModel):
    id: int
    dataset_id: int
    kind: str
    location: str
    query: str | None
    interval_seconds: int | None
    cron: str | None
    enabled: bool
    schedule_name: str
    created_by: str
    created_at: datetime
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None


class IngestionRunPublic(BaseModel):
    id: int
    source_id: int
    job_id: int | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    version_id: int | None
    error: str | None


# --- validation reports, profiles and diffs (stored as JSON; read into these at the service boundary) ---


class FindingPublic(BaseModel):
    """One validation finding: what a data engineer reads and acts on; `error` fails the version."""

    severity: str  # error | warning | info
    column: str | None = None
    kind: str  # the name of the validation rule that found it (mlops_core.validation.RULES)
    message: str


class ColumnDriftPublic(BaseModel):
    """Drift of one column against the previous version (monitoring.detect_drift's per-column figures)."""

    method: str
    score: float | None  # None when the test gave no finite score
    threshold: float
    drifted: bool
    column_type: str = "num"
    # Added by issue 15: the test statistic behind a p-value score (None for distances) and the size of
    # the shift in plain units ({"kind": "mean", reference_mean, current_mean, reference_std, shift_sd}
    # or {"kind": "share", value, reference_share, current_share, change}); None in older stored results.
    statistic: float | None = None
    effect: dict[str, Any] | None = None


class DataDriftPublic(BaseModel):
    """Drift between two samples, as `DriftResult.to_dict()` stores it."""

    dataset_drifted: bool
    drift_share: float
    number_of_columns: int
    number_of_drifted_columns: int
    drift_share_threshold: float = 0.5
    columns: dict[str, ColumnDriftPublic] = {}
    skipped: dict[str, str] = {}


class ValidationReportPublic(BaseModel):
    """A version's stored validation report (DatasetVersion.report has exactly these keys)."""

    findings: list[FindingPublic] = []
    drift: DataDriftPublic | None = None
    counts: dict[str, int] = {}  # findings per severity
    schema_version: int | None = None  # the schema version it was checked against
    compared_with: str | None = None  # the version drift was measured against ("customers@v1")


class ChartPublic(BaseModel):
    """Plotly-ready chart data of one profiled column."""

    kind: str  # histogram | bar
    x: list[Any]
    y: list[int]
    width: float | None = None  # bar width of a histogram


class CategoryCountPublic(BaseModel):
    """One of the most frequent values of a text column."""

    value: str
    count: int


class ColumnProfilePublic(BaseModel):
    """Summary of one column; numeric figures only for numeric columns, `top` only for text ones."""

    name: str
    type: str
    count: int
    nulls: int
    null_share: float | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float | None] | None = None  # p5..p95 (exact, or a t-digest over the whole file)
    distinct: int | str | None = None  # exact, a HyperLogLog estimate, or a sentence ("more than 1,000")
    top: list[CategoryCountPublic] | None = None
    chart: ChartPublic | None = None
    # per figure: "exact" or the sketch that made it ("sketch: t-digest", "sketch: HyperLogLog",
    # "sketch: Misra-Gries"); None on profiles stored before issue 16
    kinds: dict[str, str] | None = None


class ProfilePublic(BaseModel):
    """A version's stored profile (computed once at registration)."""

    n_rows: int
    n_cols: int
    duplicate_rows: int
    sample_rows: int
    columns: list[ColumnProfilePublic]


class DiffColumnPublic(BaseModel):
    """One column of a version diff; each pair is (from, to), None where the version has no figure."""

    column: str
    change: str  # added | removed | type changed | "" (unchanged)
    type: str
    null_share: tuple[float | None, float | None]
    mean: tuple[float | None, float | None]
    min: tuple[float | None, float | None]
    max: tuple[float | None, float | None]
    distinct: tuple[int | str | None, int | str | None]


class DatasetDiffPublic(BaseModel):
    """What changed between two versions (columns, rows, drift on their samples)."""

    from_ref: str
    to_ref: str
    rows: tuple[int, int]
    same_content: bool
    columns: list[DiffColumnPublic]
    drift: DataDriftPublic | None = None
