"""ML canvas and value model of a use case (issue 20), and the decision threshold of a model version.

Tables: `use_case_canvases` (one row per saved version of a use case's canvas: its history),
`value_models` (one row per saved version of a use case's value model), `model_version_thresholds`
(the value-maximising decision threshold chosen for a binary classifier's model version, used by serving).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow
from .base import json_field


class UseCaseCanvas(SQLModel, table=True):
    """One saved version of a use case's ML canvas (the latest version is the current canvas)."""

    __tablename__ = "use_case_canvases"
    __table_args__ = (UniqueConstraint("use_case_id", "version", name="uq_canvas_version"),)

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    version: int
    fields: dict[str, Any] = json_field(default_factory=dict)  # field key -> text
    problem_type: str = Field(default="", max_length=16)  # "" | binary | multiclass | regression
    positive_class: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ValueModelRow(SQLModel, table=True):
    """One saved version of a use case's value model: gain (+) / cost (-) per outcome, or per unit of error."""

    __tablename__ = "value_models"
    __table_args__ = (UniqueConstraint("use_case_id", "version", name="uq_value_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    version: int
    problem_type: str = Field(max_length=16)
    currency: str = Field(max_length=8)
    period: str = Field(max_length=16)
    volume_per_period: float | None = None
    value_tp: float | None = None
    value_fp: float | None = None
    value_fn: float | None = None
    value_tn: float | None = None
    cost_per_unit_error: float | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersionThreshold(SQLModel, table=True):
    """The decision threshold chosen for a binary classifier's model version (serving predicts the
    positive class when its score is >= threshold)."""

    __tablename__ = "model_version_thresholds"

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="model_versions.id", unique=True, index=True)
    threshold: float
    value_per_period: float | None = None
    default_value_per_period: float | None = None
    currency: str = Field(default="", max_length=8)
    value_model_version: int | None = None
    chosen_by: str = Field(max_length=64)
    chosen_at: datetime = Field(default_factory=utcnow)


# --- what pages and other stages see ----------------------------------------------------


class CanvasPublic(BaseModel):
    use_case_id: int
    version: int  # 0: never saved
    fields: dict[str, str]
    problem_type: str
    positive_class: str
    created_by: str
    created_at: datetime | None


class ValueModelPublic(BaseModel):
    use_case_id: int
    version: int
    problem_type: str
    currency: str
    period: str
    volume_per_period: float | None
    outcome_values: dict[str, float | None]
    cost_per_unit_error: float | None
    missing: list[str]
    created_by: str
    created_at: datetime


class ValuePublic(BaseModel):
    """A value per period (None when incomplete or unavailable: see `missing` / `reason`)."""

    value_per_period: float | None
    currency: str
    period: str
    status: str  # complete | incomplete | unavailable
    missing: list[str] = []
    reason: str = ""
    low: float | None = None
    high: float | None = None
    text: str = ""
    basis: str = ""  # "test split", "realised (labels)", "estimated (calibrated scores)", ...


class RunValuePublic(BaseModel):
    run_id: int
    run_name: str
    algorithm: str
    status: str
    created_at: datetime
    value: ValuePublic
    threshold: float | None  # the threshold the value is computed at (binary classifiers)
    best_threshold: float | None  # value-maximising threshold on the run's test split, when known
    best_value_per_period: float | None
    kpi_metrics: dict[str, float]


class ThresholdPublic(BaseModel):
    model_version_id: int
    threshold: float
    value_per_period: float | None
    default_value_per_period: float | None
    currency: str
    value_model_version: int | None
    chosen_by: str
    chosen_at: datetime


class UseCaseValuePublic(BaseModel):
    """A use case's live value per period for the portfolio."""

    use_case_id: int
    title: str
    deployment_name: str | None
    value: ValuePublic
