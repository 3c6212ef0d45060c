"""MLflow registered models and aliases = the Hub registry (services/registry). A Hub model exists from its
first version on, so registered-models/create only checks the name and the role; the model appears when
model-versions/create makes version 1."""

from __future__ import annotations

from fastapi import APIRouter

from ...errors import NotFound
from ...services import registry
from ...services.auth import require
from ._common import Call, MlflowError, bad, ms, not_found, route
from .model_versions import model_version_json, resolve

router = APIRouter()


def model_named(call: Call, name: str):
    """The registered model `name` (names are lower-case in the Hub), or None."""
    wanted = (name or "").strip().lower()
    for m in registry.list_models(call.db, search=wanted, limit=500):
        if m.name == wanted:
            return m
    return None


def registered_model_json(m) -> dict:
    out = {
        "name": m.name,
        "creation_timestamp": ms(m.created_at),
        "last_updated_timestamp": ms(m.created_at),
        "description": m.description or "",
        "tags": [],
        "aliases": [{"alias": a, "version": str(v)} for a, v in (m.aliases or {}).items()],
    }
    return out


@route(router, "/registered-models/create", ["POST"])
def create(call: Call):
    """Check that a model name is free (the model itself is created with its first version)."""
    require(call.actor, "model.register")
    name = str(call.need("name"))
    existing = model_named(call, name)
    if existing is not None:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.", 400)
    lowered = name.strip().lower()
    try:
        registry._check_name(lowered)
    except Exception as exc:
        raise bad(str(exc)) from None
    return {"registered_model": {"name": lowered, "tags": [], "aliases": [], "description": ""}}


@route(router, "/registered-models/get", ["GET"])
def get(call: Call):
    """A registered model with its aliases."""
    name = str(call.need("name"))
    m = model_named(call, name)
    if m is None:
        raise not_found(f"Registered Model with name={name} not found")
    return {"registered_model": registered_model_json(m)}


@route(router, "/registered-models/get-latest-versions", ["GET", "POST"])
def latest_versions(call: Call):
    """The latest version of a model (`models:/NAME/latest`); stages are not used in MLOps Hub."""
    name = str(call.need("name"))
    try:
        mv = registry.resolve_version(call.db, model_name=name)
    except NotFound:
        if model_named(call, name) is None:
            raise not_found(f"Registered Model with name={name} not found") from None
        return {"model_versions": []}
    return {"model_versions": [model_version_json(mv)]}


@route(router, "/registered-models/alias", ["POST"])
def set_alias(call: Call):
    """Point an alias (e.g. champion) at a version."""
    name, alias, version = str(call.need("name")), str(call.need("alias")), call.need("version")
    resolve(call, name, version)
    registry.set_alias(call.db, actor=call.actor, model_name=name, alias=alias, version=int(version))
    return {}


@route(router, "/registered-models/alias", ["GET"])
def get_by_alias(call: Call):
    """The version an alias points at (`models:/NAME@ALIAS`)."""
    name, alias = str(call.need("name")), str(call.need("alias"))
    try:
        mv = registry.resolve_version(call.db, model_name=name, alias=alias.strip().lower())
    except NotFound:
        raise not_found(f"Registered model alias {alias} not found.") from None
    return {"model_version": model_version_json(mv)}


@route(router, "/registered-models/alias", ["DELETE"])
def delete_alias(call: Call):
    """Remove an alias."""
    registry.remove_alias(
        call.db, actor=call.actor, model_name=str(call.need("name")), alias=str(call.need("alias")).strip().lower()
    )
    return {}
