"""MLflow 3 logged models: created by log_model/autolog inside a run, their files uploaded through the artifact
proxy, then marked READY, when the sklearn file becomes the run's model (mlflow_bridge.finalize_logged_model).
A logged model id is m-<run id>-<hex>: it names its run."""

from __future__ import annotations

import re

from fastapi import APIRouter

from ...errors import NotFound
from ...services import experiments, mlflow_bridge
from ._common import Call, bad, kv, not_found, route, to_kv
from .experiments import use_case_of
from .runs import get_run_public

router = APIRouter()


def logged_model_json(run, model_id: str, m: dict) -> dict:
    exp = str(run.use_case_id)
    return {
        "info": {
            "model_id": model_id,
            "experiment_id": exp,
            "name": m.get("name", "model"),
            "creation_timestamp_ms": m.get("created"),
            "last_updated_timestamp_ms": m.get("updated"),
            "artifact_uri": f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts",
            "status": m.get("status", "LOGGED_MODEL_PENDING"),
            "model_type": m.get("model_type", ""),
            "source_run_id": str(run.id),
            "tags": to_kv(m.get("tags") or {}),
        },
        "data": {"params": to_kv(m.get("params") or {}), "metrics": []},
    }


def find(call: Call, model_id: str):
    try:
        run = get_run_public(call, mlflow_bridge.run_of_model_id(model_id))
    except (NotFound, Exception) as exc:
        if getattr(exc, "status", 404) != 404 and not isinstance(exc, NotFound):
            raise
        raise not_found(f"Logged model with ID '{model_id}' not found.") from None
    m = mlflow_bridge.mlflow_meta(run)["models"].get(model_id)
    if m is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return run, m


@route(router, "/logged-models", ["POST"])
def create(call: Call):
    """A logged model of a run (MLflow 3 log_model); a model outside a run is refused."""
    uc = use_case_of(call, call.need("experiment_id"))
    source = call.get("source_run_id")
    if not source:
        raise bad("MLOps Hub keeps every model with the run that trained it: log the model inside mlflow.start_run()")
    run = get_run_public(call, int(source) if str(source).isdigit() else None) if str(source).isdigit() else None
    if run is None:
        raise bad(f"source_run_id '{source}' is not a Hub run id (a decimal number)")
    if run.use_case_id != uc.id:
        raise bad(f"run {run.id} is not in experiment {uc.id}")
    model_id = mlflow_bridge.create_logged_model(
        call.db,
        actor=call.actor,
        run_id=run.id,
        name=str(call.get("name") or "model"),
        model_type=str(call.get("model_type") or ""),
        params=kv(call.get("params")),
        tags=kv(call.get("tags")),
    )
    run, m = find(call, model_id)
    return {"model": logged_model_json(run, model_id, m)}


@route(router, "/logged-models/search", ["POST"])
def search(call: Call):
    """Logged models of experiments; `filter` supports only name = '...' (what register_model sends)."""
    exp_ids = call.get("experiment_ids") or []
    if not isinstance(exp_ids, list):
        raise bad("experiment_ids is a list")
    flt = str(call.get("filter") or "").strip()
    name = None
    if flt:
        m = re.fullmatch(r"name\s*=\s*'([^']*)'", flt)
        if not m:
            raise bad(f"filter {flt!r} is not supported; use name = '<model name>'")
        name = m.group(1)
    out = []
    for eid in exp_ids:
        uc = use_case_of(call, eid)
        offset = 0
        while True:
            page = experiments.list_runs(
                call.db,
                actor=call.actor,
                use_case_id=uc.id,
                source="mlflow",
                limit=500,
                offset=offset,
                with_total=False,
            )
            for run in page:
                for model_id, m in mlflow_bridge.mlflow_meta(run)["models"].items():
                    if name is None or m.get("name") == name:
                        out.append(logged_model_json(run, model_id, m))
            if len(page) < 500:
                break
            offset += 500
    return {"models": out}


@route(router, "/logged-models/{model_id}", ["GET"])
def get(call: Call):
    """One logged model."""
    run, m = find(call, str(call.need("model_id")))
    return {"model": logged_model_json(run, call.args["model_id"], m)}


@route(router, "/logged-models/{model_id}", ["PATCH"])
def finalize(call: Call):
    """Mark a logged model READY (its files are uploaded): the sklearn file becomes the run's model."""
    model_id = str(call.need("model_id"))
    find(call, model_id)
    status = str(call.get("status") or "LOGGED_MODEL_READY")
    if status not in ("LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED", "LOGGED_MODEL_PENDING"):
        raise bad(f"unknown logged model status {status!r}")
    mlflow_bridge.finalize_logged_model(call.db, actor=call.actor, model_id=model_id, status=status)
    run, m = find(call, model_id)
    return {"model": logged_model_json(run, model_id, m)}


@route(router, "/logged-models/{model_id}/tags", ["PATCH"])
def set_tags(call: Call):
    """Tags of a logged model (register_model records the versions made from it)."""
    model_id = str(call.need("model_id"))
    find(call, model_id)
    mlflow_bridge.set_logged_model_tags(call.db, actor=call.actor, model_id=model_id, tags=kv(call.get("tags")))
    return {}
