"""/api/v1/use-cases: list, get, create, update (optimistic lock), transition; their KPIs and readings.

Same service calls as the Portfolio and Use case pages (services/usecases.py): roles and audit identical."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ...errors import NotFound
from ...services import usecases
from .deps import DB, CurrentActor, Pagination, dump, paginate

router = APIRouter(prefix="/use-cases", tags=["use cases"])

Number = float | str  # the service parses and checks numbers (and says which field is wrong)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is a 400, not silently ignored


class UseCaseCreate(_Body):
    title: str = Field(max_length=200)
    problem_statement: str = ""
    objectives: str = ""
    owner_username: str | None = None
    priority: str = "medium"
    target_date: date | None = None
    tags: list[str] = []
    members: dict[str, list[str]] | None = Field(None, description="role -> usernames")


class UseCaseUpdate(_Body):
    expected_version: int = Field(description="the `version` you read; a newer one means someone saved since (409)")
    title: str | None = None
    problem_statement: str | None = None
    objectives: str | None = None
    owner_username: str | None = None
    priority: str | None = None
    target_date: date | None = None
    tags: list[str] | None = None
    members: dict[str, list[str]] | None = None


class Transition(_Body):
    to_status: str
    note: str = ""
    expected_version: int | None = None


class KpiCreate(_Body):
    kind: str = Field(description="model (a model metric) or business (readings over time)")
    target: Number
    name: str | None = None
    metric: str | None = None
    direction: str | None = None
    warning: Number | None = None
    unit: str = ""
    baseline: Number | None = None


class ReadingCreate(_Body):
    value: Number
    measured_on: date | None = None
    note: str = ""


@router.get("", summary="Use cases, filtered and paginated (portfolio order)")
def list_use_cases(
    actor: CurrentActor,
    db: DB,
    page: Pagination,
    owner: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    result = usecases.list_use_cases(
        db, actor=actor, owner=owner, status=status, tag=tag, search=search, limit=page.limit, offset=page.offset
    )
    more = page.offset + page.limit < result.total
    return {
        "items": dump(result.items),
        "next_offset": page.offset + page.limit if more else None,
        "total": result.total,
        "by_status": result.by_status,
    }


@router.post("", status_code=201, summary="Create a use case (business role); it starts as proposed")
def create_use_case(body: UseCaseCreate, actor: CurrentActor, db: DB):
    return dump(usecases.create_use_case(db, actor=actor, **body.model_dump()))


@router.get("/{use_case_id}", summary="One use case")
def get_use_case(use_case_id: int, actor: CurrentActor, db: DB):
    return dump(usecases.get_use_case(db, actor=actor, use_case_id=use_case_id))


@router.patch("/{use_case_id}", summary="Edit fields; send the version you read (409 if someone saved since)")
def update_use_case(use_case_id: int, body: UseCaseUpdate, actor: CurrentActor, db: DB):
    # Only the fields the caller sent: an absent field stays as it is, an explicit null clears a date.
    fields = body.model_dump(exclude_unset=True)
    return dump(usecases.update_use_case(db, actor=actor, use_case_id=use_case_id, **fields))


@router.post("/{use_case_id}/transitions", summary="Move the lifecycle status along an allowed transition")
def transition(use_case_id: int, body: Transition, actor: CurrentActor, db: DB):
    return dump(usecases.transition_use_case(db, actor=actor, use_case_id=use_case_id, **body.model_dump()))


@router.get("/{use_case_id}/history", summary="Lifecycle moves, oldest first")
def history(use_case_id: int, actor: CurrentActor, db: DB, page: Pagination) -> dict:
    usecases.get_use_case(db, actor=actor, use_case_id=use_case_id)  # 404 for an unknown id
    return paginate(usecases.history(db, actor=actor, use_case_id=use_case_id), page)


@router.get("/{use_case_id}/kpis", summary="KPIs of a use case")
def list_kpis(use_case_id: int, actor: CurrentActor, db: DB, page: Pagination, kind: str | None = None) -> dict:
    usecases.get_use_case(db, actor=actor, use_case_id=use_case_id)
    return paginate(usecases.list_kpis(db, use_case_id, kind=kind), page)


@router.post("/{use_case_id}/kpis", status_code=201, summary="Add a model or business KPI (business role)")
def add_kpi(use_case_id: int, body: KpiCreate, actor: CurrentActor, db: DB):
    return dump(usecases.add_kpi(db, actor=actor, use_case_id=use_case_id, **body.model_dump()))


def _kpi_of(db, use_case_id: int, kpi_id: int):
    """The KPI, if it belongs to the use case in the path (else 404: ids of other use cases do not leak)."""
    for k in usecases.list_kpis(db, use_case_id):
        if k.id == kpi_id:
            return k
    usecases.get_use_case(db, use_case_id=use_case_id)
    raise NotFound(f"use case {use_case_id} has no KPI {kpi_id}; list them at /api/v1/use-cases/{use_case_id}/kpis")


@router.get("/{use_case_id}/kpis/{kpi_id}/readings", summary="Readings of a business KPI, oldest first")
def list_readings(use_case_id: int, kpi_id: int, actor: CurrentActor, db: DB, page: Pagination) -> dict:
    _kpi_of(db, use_case_id, kpi_id)
    return paginate(usecases.list_readings(db, kpi_id), page)


@router.post(
    "/{use_case_id}/kpis/{kpi_id}/readings", status_code=201, summary="Enter a business KPI reading (business role)"
)
def add_reading(use_case_id: int, kpi_id: int, body: ReadingCreate, actor: CurrentActor, db: DB):
    _kpi_of(db, use_case_id, kpi_id)
    return dump(usecases.add_reading(db, actor=actor, kpi_id=kpi_id, **body.model_dump()))
