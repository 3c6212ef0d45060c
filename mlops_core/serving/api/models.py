"""/api/v1/models: the model registry (register a run's model, versions, aliases, model card, download).

GET    /models?search=&use_case=                 registered models
POST   /models                                   {"run_id", "name", "alias", "description", ...} -> the version
GET    /models/{name}/versions                   newest first
GET    /models/{name}/versions/{version}         a version number, or @alias (e.g. @champion), or latest
GET    /models/{name}/versions/{version}/card    the model card (lineage, params, KPI checks)
PATCH  /models/{name}/versions/{version}/card    {"intended_use", "limitations", "notes"}
GET    /models/{name}/versions/{version}/file    the skops file
PUT    /models/{name}/aliases/{alias}            {"version": N}
DELETE /models/{name}/aliases/{alias}
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ...errors import ValidationError
from ...services import registry, usecases
from .deps import DB, CurrentActor, Pagination, dump, paginate
from .runs import finite, run_id_of

router = APIRouter(prefix="/models", tags=["models"])


class Register(BaseModel):
    run_id: int | str
    name: str
    alias: str | None = None
    description: str = ""
    intended_use: str = ""
    limitations: str = ""


class SetAlias(BaseModel):
    version: int = Field(ge=1)


class Card(BaseModel):
    intended_use: str | None = None
    limitations: str | None = None
    notes: str | None = None


def _version(db, name: str, version: str):
    """ "3", "v3", "@champion" (an alias) or "latest"."""
    v = version.strip()
    if v.startswith("@"):
        return registry.resolve_version(db, model_name=name, alias=v[1:])
    if v.lower() == "latest":
        return registry.resolve_version(db, model_name=name)
    if v.lower().startswith("v"):
        v = v[1:]
    if not v.isdigit() or int(v) < 1:
        raise ValidationError(f"version {version!r} is not a version; write 3, v3, @champion or latest")
    return registry.resolve_version(db, model_name=name, version=int(v))


@router.get("", summary="Registered models")
def list_models(
    db: DB,
    actor: CurrentActor,
    page: Pagination,
    search: str | None = None,
    use_case: Annotated[str | None, Query(description="use case id or title")] = None,
) -> dict[str, Any]:
    uc = usecases.resolve_use_case(db, use_case).id if use_case else None
    rows = registry.list_models(db, search=search, use_case_id=uc, limit=page.limit + 1, offset=page.offset)
    more = len(rows) > page.limit
    return {"items": finite(dump(rows[: page.limit])), "next_offset": page.offset + page.limit if more else None}


@router.post("", status_code=201, summary="Register a finished run's model as the next version of a model")
def register(body: Register, db: DB, actor: CurrentActor) -> Any:
    mv = registry.register_model(
        db,
        actor=actor,
        run_id=run_id_of(str(body.run_id)),
        name=body.name,
        alias=body.alias,
        description=body.description,
        intended_use=body.intended_use,
        limitations=body.limitations,
    )
    return finite(dump(mv))


@router.get("/{name}/versions", summary="The versions of a model, newest first")
def list_versions(name: str, db: DB, actor: CurrentActor, page: Pagination) -> dict[str, Any]:
    rows = registry.list_model_versions(db, model_name=name, limit=page.offset + page.limit + 1)
    out = paginate(rows, page)
    out["items"] = finite(out["items"])
    return out


@router.get("/{name}/versions/{version}", summary="One version: 3, v3, @alias or latest")
def get_version(name: str, version: str, db: DB, actor: CurrentActor) -> Any:
    return finite(dump(_version(db, name, version)))


@router.get("/{name}/versions/{version}/card", summary="The model card of a version")
def get_card(name: str, version: str, db: DB, actor: CurrentActor) -> Any:
    return finite(dump(registry.model_card(db, _version(db, name, version).id)))


@router.patch("/{name}/versions/{version}/card", summary="Edit the model card (intended use, limitations, notes)")
def edit_card(name: str, version: str, body: Card, db: DB, actor: CurrentActor) -> Any:
    mv = _version(db, name, version)
    return finite(
        dump(
            registry.update_card(
                db,
                actor=actor,
                model_version_id=mv.id,
                intended_use=body.intended_use,
                limitations=body.limitations,
                notes=body.notes,
            )
        )
    )


@router.get(
    "/{name}/versions/{version}/file", summary="Download the version's model file (skops)", response_class=Response
)
def download(name: str, version: str, db: DB, actor: CurrentActor) -> Response:
    filename, data = registry.model_file(db, _version(db, name, version).id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.put("/{name}/aliases/{alias}", summary="Point an alias (e.g. champion) at a version")
def set_alias(name: str, alias: str, body: SetAlias, db: DB, actor: CurrentActor) -> Any:
    return finite(dump(registry.set_alias(db, actor=actor, model_name=name, alias=alias, version=body.version)))


@router.delete("/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(name: str, alias: str, db: DB, actor: CurrentActor) -> Response:
    registry.remove_alias(db, actor=actor, model_name=name, alias=alias)
    return Response(status_code=204)
