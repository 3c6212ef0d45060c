"""MLflow model versions = Hub model versions (services/registry.register_model from the run that logged the
model; the same allow-list check, aliases and deployment gates as a version registered in the UI)."""

from __future__ import annotations

import re

from fastapi import APIRouter

from ...errors import NotFound
from ...services import mlflow_bridge, registry
from ._common import Call, MlflowError, bad, ms, not_found, route, to_kv
from .runs import get_run_public

router = APIRouter()


def model_version_json(mv) -> dict:
    model_id = mlflow_bridge.model_id_of_key(mv.artifact_key)
    out = {
        "name": mv.model_name,
        "version": str(mv.version),
        "creation_timestamp": ms(mv.created_at),
        "last_updated_timestamp": ms(mv.created_at),
        "current_stage": "None",
        "source": f"models:/{model_id}" if model_id else f"runs:/{mv.run_id}/model",
        "run_id": str(mv.run_id),
        "status": "READY",
        "user_id": mv.created_by,
        "description": (mv.card or {}).get("notes", ""),
        "tags": to_kv({}),
        "aliases": list(mv.aliases or []),
    }
    if model_id:
        out["model_id"] = model_id
    return out


def resolve(call: Call, name: str, version) -> object:
    s = str(version).strip()
    if not s.isdigit():
        raise bad(f"Model version must be an integer, got '{version}'.")
    try:
        return registry.resolve_version(call.db, model_name=name, version=int(s))
    except NotFound:
        raise not_found(f"Model Version (name={name}, version={s}) not found") from None


def _run_of_source(call: Call) -> tuple[int, str | None]:
    """(run id, logged model id) of a new version: from model_id, source models:/<id> or runs:/<run>/..."""
    model_id = call.get("model_id")
    source = str(call.get("source") or "")
    if not model_id:
        m = re.fullmatch(r"models:/(m-\d+-[0-9a-f]+)", source)
        model_id = m.group(1) if m else None
    if model_id:
        try:
            return mlflow_bridge.run_of_model_id(str(model_id)), str(model_id)
        except NotFound as exc:
            raise not_found(str(exc)) from None
    m = re.fullmatch(r"runs:/(\d+)(/.*)?", source)
    rid = call.get("run_id") or (m.group(1) if m else None)
    if rid is None or not str(rid).isdigit():
        raise bad(
            f"source '{source}' is not a model this Hub knows: register models:/<model_id> as returned by "
            "log_model, or runs:/<run_id>/model"
        )
    return int(rid), None


@route(router, "/model-versions/create", ["POST"])
def create(call: Call):
    """The next version of a registered model, from the run whose logged model it is."""
    name = str(call.need("name"))
    run_id, model_id = _run_of_source(call)
    if model_id:
        run = get_run_public(call, run_id)
        if mlflow_bridge.model_id_of_key(run.model_artifact_key) != model_id:
            raise bad(
                f"logged model {model_id} is not the model of run {run_id} (a Hub run keeps one model: the "
                "last one logged and marked ready); register the run's current model or log it again"
            )
    mv = registry.register_model(call.db, actor=call.actor, run_id=run_id, name=name)
    return {"model_version": model_version_json(mv)}


@route(router, "/model-versions/get", ["GET"])
def get(call: Call):
    """One version (`models:/NAME/3`)."""
    return {"model_version": model_version_json(resolve(call, str(call.need("name")), call.need("version")))}


@route(router, "/model-versions/get-download-uri", ["GET"])
def download_uri(call: Call):
    """Where the client downloads a version's files (the logged model's folder in the artifact proxy)."""
    mv = resolve(call, str(call.need("name")), call.need("version"))
    model_id = mlflow_bridge.model_id_of_key(mv.artifact_key)
    if model_id is None:
        raise MlflowError(
            "NOT_IMPLEMENTED",
            f"{mv.model_name} v{mv.version} was trained in MLOps Hub, not logged "
            "from MLflow; download it from the Hub API (/api/v1/models) instead",
            501,
        )
    return {"artifact_uri": f"mlflow-artifacts:/{mv.use_case_id}/models/{model_id}/artifacts"}
