"""MLflow experiments = Hub use cases (the experiment's name is the use case's title, its id the use case id)."""

from __future__ import annotations

import re

from fastapi import APIRouter

from ...errors import Conflict, NotFound, PermissionDenied
from ...services import usecases
from ...services.auth import can
from ._common import Call, MlflowError, bad, experiment_json, int_id, not_found, route

router = APIRouter()


def _by_title(call: Call, name: str):
    """The use case titled `name` (case-insensitive, exact), or None."""
    wanted = name.strip().lower()
    offset = 0
    while True:
        page = usecases.list_use_cases(call.db, actor=call.actor, search=name.strip(), limit=500, offset=offset)
        for uc in page.items:
            if uc.title.strip().lower() == wanted:
                return uc
        if len(page.items) < 500:
            return None
        offset += 500


def use_case_of(call: Call, experiment_id) -> object:
    if str(experiment_id) == "0":
        raise not_found(
            "MLflow's Default experiment (id 0) does not exist in MLOps Hub: call "
            "mlflow.set_experiment('<use case title>') first"
        )
    try:
        return usecases.get_use_case(call.db, actor=call.actor, use_case_id=int_id(experiment_id, "experiment_id"))
    except NotFound:
        raise not_found(f"No Experiment with id={experiment_id} exists (experiments are MLOps Hub use cases)") from None


@route(router, "/experiments/get-by-name", ["GET"])
def get_by_name(call: Call):
    """An experiment by name (= a use case by title)."""
    name = str(call.need("experiment_name"))
    uc = _by_title(call, name)
    if uc is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_json(uc)}


@route(router, "/experiments/get", ["GET"])
def get(call: Call):
    """An experiment by id (= a use case by id)."""
    return {"experiment": experiment_json(use_case_of(call, call.need("experiment_id")))}


@route(router, "/experiments/create", ["POST"])
def create(call: Call):
    """Create an experiment: a new use case in its first lifecycle state, owned by the caller (the roles that
    may create use cases in the UI)."""
    name = str(call.need("name")).strip()
    if _by_title(call, name) is not None:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.", 400)
    if not can(call.actor, "usecase.write"):
        raise PermissionDenied(
            f"experiment '{name}' does not exist; ask a business user to create the use case "
            f"'{name}' in MLOps Hub, or set an existing one (mlflow.set_experiment('<title>'))"
        )
    try:
        uc = usecases.create_use_case(
            call.db, actor=call.actor, title=name, problem_statement="Created from MLflow (mlflow.set_experiment)."
        )
    except Conflict:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.", 400) from None
    return {"experiment_id": str(uc.id)}


@route(router, "/experiments/search", ["GET", "POST"])
def search(call: Call):
    """Experiments (use cases), paginated; `filter` supports only `name = '...'`/`name LIKE '%...%'`."""
    flt = str(call.get("filter") or "").strip()
    search_text = None
    if flt:
        m = re.fullmatch(r"(?:attributes\.)?name\s*(=|LIKE|ILIKE)\s*'([^']*)'", flt, re.I)
        if not m:
            raise bad(f"filter {flt!r} is not supported; use name = '<title>' or name LIKE '%text%'")
        search_text = m.group(2).strip("%")
    limit = max(1, min(int(call.get("max_results") or 1000), 500))
    offset = int(call.get("page_token") or 0) if str(call.get("page_token") or "0").isdigit() else 0
    page = usecases.list_use_cases(call.db, actor=call.actor, search=search_text, limit=limit, offset=offset)
    out = {"experiments": [experiment_json(uc) for uc in page.items]}
    if offset + limit < page.total:
        out["next_page_token"] = str(offset + limit)
    return out
