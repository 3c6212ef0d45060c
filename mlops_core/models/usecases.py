"""Use cases (stage 1): the business problem every other team works against, its KPIs and lifecycle.

Tables: `use_cases` (optimistic-locked by `version`), `use_case_members` (who works on it, per role),
`use_case_tags`, `use_case_transitions` (who moved the lifecycle status, when), `kpis` and `kpi_readings`.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import utcnow


class UseCase(SQLModel, table=True):
    """A business problem turned into something the teams can build, deploy and measure."""

    __tablename__ = "use_cases"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200, unique=True, index=True)
    problem_statement: str = Field(default="", max_length=5000)
    objectives: str = Field(default="", max_length=5000)
    status: str = Field(default="proposed", max_length=32, index=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    priority: str = Field(default="medium", max_length=16)
    target_date: date | None = None
    # Optimistic locking: every write bumps it; a write with a stale expected_version is refused.
    version: int = Field(default=1)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(default="", max_length=64)


class UseCaseMember(SQLModel, table=True):
    """A person working on a use case in one role (business, data_engineer, data_scientist, ops)."""

    __tablename__ = "use_case_members"
    __table_args__ = (UniqueConstraint("use_case_id", "user_id", "role", name="uq_use_case_member"),)

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    role: str = Field(max_length=32)


class UseCaseTag(SQLModel, table=True):
    """One tag of a use case (a row per tag, so the portfolio filters by tag in SQL)."""

    __tablename__ = "use_case_tags"
    __table_args__ = (UniqueConstraint("use_case_id", "tag", name="uq_use_case_tag"),)

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    tag: str = Field(max_length=64, index=True)


class UseCaseTransition(SQLModel, table=True):
    """One move of the lifecycle status: from, to, who, when, why."""

    __tablename__ = "use_case_transitions"

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    by_username: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)
    note: str = Field(default="", max_length=1000)


class Kpi(SQLModel, table=True):
    """A KPI contract: a model KPI (metric, direction, target, warning band) or a business KPI
    (unit, baseline, target, direction; readings over time)."""

    __tablename__ = "kpis"
    __table_args__ = (UniqueConstraint("use_case_id", "name", name="uq_kpi_name"),)

    id: int | None = Field(default=None, primary_key=True)
    use_case_id: int = Field(foreign_key="use_cases.id", index=True)
    kind: str = Field(max_length=16)  # "model" | "business"
    name: str = Field(max_length=200)
    metric: str | None = Field(default=None, max_length=64)  # model KPIs only
    direction: str = Field(max_length=2)  # ">=" | "<="
    target: float
    warning: float | None = None
    unit: str = Field(default="", max_length=32)
    baseline: float | None = None
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class KpiReading(SQLModel, table=True):
    """A business KPI value measured on a date, entered by someone."""

    __tablename__ = "kpi_readings"
    __table_args__ = (Index("ix_kpi_readings_kpi_on", "kpi_id", "measured_on"),)

    id: int | None = Field(default=None, primary_key=True)
    kpi_id: int = Field(foreign_key="kpis.id", index=True)
    value: float
    measured_on: date
    note: str = Field(default="", max_length=1000)
    by_username: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


# --- what pages and other stages see ----------------------------------------------------


class KpiPublic(BaseModel):
    id: int
    use_case_id: int
    kind: str
    name: str
    metric: str | None
    direction: str
    target: float
    warning: float | None
    unit: str
    baseline: float | None

    @property
    def label(self) -> str:
        what = self.metric if self.kind == "model" else self.name
        unit = f" {self.unit}" if self.unit else ""
        return f"{what} {self.direction} {self.target:g}{unit}"


class KpiReadingPublic(BaseModel):
    id: int
    kpi_id: int
    value: float
    measured_on: date
    note: str
    by_username: str
    created_at: datetime


class MemberPublic(BaseModel):
    username: str
    display_name: str
    role: str


class UseCasePublic(BaseModel):
    """A use case with its owner, members, tags and KPIs."""

    id: int
    title: str
    problem_statement: str
    objectives: str
    status: str
    owner_username: str
    priority: str
    target_date: date | None
    tags: list[str]
    members: list[MemberPublic]
    kpis: list[KpiPublic]
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str


class TransitionPublic(BaseModel):
    from_status: str | None
    to_status: str
    by_username: str
    at: datetime
    note: str


class KpiCheck(BaseModel):
    """One model KPI evaluated against a value: status is "met" | "warning" | "missed" | "unknown"."""

    kpi: KpiPublic
    value: float | None
    status: str
