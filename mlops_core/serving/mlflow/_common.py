"""Shared pieces of the MLflow-compatible routes: registration on both prefixes, the token, MLflow's error
JSON, and the JSON shapes of runs and experiments (the client side: tests/api/mlflow_scripts/).

Every route is a plain sync function `fn(call) -> dict` run in the thread pool (services block on the
database). Errors are MLflow's `{"error_code", "message"}` with a 4xx: the MLflow client retries 5xx
responses for about four minutes, so nothing a caller sent may ever answer 500.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...db import Database, get_database
from ...errors import (
    AuthenticationFailed,
    Conflict,
    DatabaseUnavailable,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from ...models.experiments import RunPublic
from ...services import mlflow_bridge
from ...services._common import aware
from ...services.auth import Actor
from ...services.users import authenticate_token

log = logging.getLogger("mlops_core.serving.mlflow")

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
MAX_BODY = 16 * 1024 * 1024  # a log-batch of 1000 metrics is ~150 KB; MLflow's own limit is 16 MB too
TAG = "MLflow-compatible"


class MlflowError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def bad(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message, 400)


def not_found(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message, 404)


def error_response(exc: BaseException) -> JSONResponse:
    """MLflow's error JSON for any exception (codes the client knows: databricks_pb2.ErrorCode names)."""
    if isinstance(exc, MlflowError):
        code, status, msg = exc.code, exc.status, exc.message
    elif isinstance(exc, AuthenticationFailed):
        code, status, msg = "UNAUTHENTICATED", 401, f"{exc}; set MLFLOW_TRACKING_TOKEN to a Hub personal access token"
    elif isinstance(exc, PermissionDenied):
        code, status, msg = "PERMISSION_DENIED", 403, str(exc)
    elif isinstance(exc, NotFound):
        code, status, msg = "RESOURCE_DOES_NOT_EXIST", 404, str(exc)
    elif isinstance(exc, DatabaseUnavailable):  # the one error worth the client's retries
        code, status, msg = "TEMPORARILY_UNAVAILABLE", 503, str(exc)
    elif isinstance(exc, (ValidationError, Conflict, DomainError)):
        code, status, msg = "INVALID_PARAMETER_VALUE", 400, str(exc)
    else:
        # A bug of ours, not the caller's: logged with its traceback, answered 400 and not 500 because the
        # MLflow client would retry a 500 for minutes before showing anything.
        log.exception("unexpected error in an MLflow route")
        code, status, msg = "INTERNAL_ERROR", 400, f"internal error ({type(exc).__name__}); see the Hub's log"
    return JSONResponse({"error_code": code, "message": msg}, status_code=status)


def get_db(request: Request) -> Database:
    state = getattr(request.app.state, "serving", None)
    return state.db if state is not None else get_database()


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("no personal access token was sent")
    return token.strip()


@dataclass
class Call:
    """What a route function gets: the database, the token's actor and the request's fields."""

    db: Database
    actor: Actor
    args: dict[str, Any]

    def get(self, *names: str, default: Any = None) -> Any:
        for n in names:
            v = self.args.get(n)
            if v not in (None, ""):
                return v
        return default

    def need(self, *names: str) -> Any:
        v = self.get(*names)
        if v is None:
            raise bad(f"Missing value for required parameter '{names[0]}'.")
        return v


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise bad(f"the request body is {len(raw):,} bytes; the limit is {MAX_BODY:,}: send smaller batches")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad("the body must be a JSON object")
    return data


def _run_call(fn: Callable[[Call], Any], db: Database, token: str, args: dict[str, Any]) -> Any:
    actor = authenticate_token(db, token=token)
    return fn(Call(db=db, actor=actor, args=args))


def route(router: APIRouter, path: str, methods: list[str], *, prefixes: tuple[str, ...] = PREFIXES):
    """Register sync `fn(call)` under every prefix; GET fields come from the query, others from the JSON body
    (plus the query, for DELETE), path parameters from the path."""

    def deco(fn: Callable[[Call], Any]):
        async def endpoint(request: Request):
            try:
                if request.method in ("GET", "HEAD"):
                    args: dict[str, Any] = {}
                    for k, v in request.query_params.multi_items():
                        if k in args:
                            args[k] = [*args[k], v] if isinstance(args[k], list) else [args[k], v]
                        else:
                            args[k] = v
                else:
                    args = {**dict(request.query_params), **await read_json(request)}
                args.update(request.path_params)
                result = await run_in_threadpool(_run_call, fn, get_db(request), bearer(request), args)
            except Exception as exc:  # noqa: BLE001 - every failure becomes MLflow's error JSON (never a 500)
                return error_response(exc)
            if isinstance(result, Response):
                return result
            return JSONResponse(result if result is not None else {})

        endpoint.__name__ = f"mlflow_{fn.__name__}"
        for p in prefixes:
            router.add_api_route(
                p + path, endpoint, methods=methods, tags=[TAG], summary=fn.__doc__, name=f"{endpoint.__name__}_{p}"
            )
        return fn

    return deco


# --- ids -----------------------------------------------------------------------------------------------


def int_id(value: Any, what: str) -> int:
    s = str(value if value is not None else "").strip()
    if not s:
        raise bad(f"Missing value for required parameter '{what}'.")
    if not s.isdigit() or len(s) > 18:
        raise bad(
            f"{what.replace('_', ' ').capitalize()} '{s}' is not a Hub id (a decimal number); "
            "use the id MLflow returned for it"
        )
    return int(s)


def run_id_of(call: Call) -> int:
    return int_id(call.get("run_id", "run_uuid"), "run_id")


def ms(dt: datetime | None) -> int | None:
    if dt is None:
        return None

    return int(aware(dt).timestamp() * 1000)


# --- JSON shapes ---------------------------------------------------------------------------------------

STATUS = {
    "queued": "SCHEDULED",
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "cancelled": "KILLED",
}


def kv(items: Any) -> dict[str, str]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise bad("tags and params are lists of {\"key\": ..., \"value\": ...}")
    out = {}
    for t in items:
        if not isinstance(t, dict) or not t.get("key"):
            raise bad("every tag and param needs a non-empty 'key'")
        out[str(t["key"])] = "" if t.get("value") is None else str(t["value"])
    return out


def to_kv(d: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in d.items()]


def experiment_id(run: RunPublic) -> str:
    return str(run.use_case_id) if run.use_case_id is not None else "0"


def run_info(run: RunPublic) -> dict[str, Any]:
    info = {
        "run_id": str(run.id),
        "run_uuid": str(run.id),
        "run_name": run.name,
        "experiment_id": experiment_id(run),
        "user_id": run.created_by,
        "status": STATUS.get(run.status, "RUNNING"),
        "start_time": ms(run.started_at or run.created_at),
        "artifact_uri": f"mlflow-artifacts:/{experiment_id(run)}/{run.id}/artifacts",
        "lifecycle_stage": "active",
    }
    if run.finished_at is not None:
        info["end_time"] = ms(run.finished_at)
    return info


def run_json(run: RunPublic) -> dict[str, Any]:
    stamp = ms(run.finished_at or run.started_at or run.created_at)
    meta = mlflow_bridge.mlflow_meta(run)
    tags = {"mlflow.runName": run.name, "mlflow.user": run.created_by, **{k: v for k, v in run.tags.items()}}
    return {
        "info": run_info(run),
        "data": {
            "metrics": [{"key": k, "value": v, "timestamp": stamp, "step": 0} for k, v in run.all_metrics.items()],
            "params": to_kv(run.params),
            "tags": to_kv(tags),
        },
        "inputs": {"dataset_inputs": meta["inputs"], "model_inputs": []},
        "outputs": {"model_outputs": meta["outputs"]},
    }


def experiment_json(uc) -> dict[str, Any]:
    created = ms(getattr(uc, "created_at", None))
    return {
        "experiment_id": str(uc.id),
        "name": uc.title,
        "artifact_location": f"mlflow-artifacts:/{uc.id}",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": ms(getattr(uc, "updated_at", None)) or created,
        "tags": [{"key": "mlops.status", "value": str(getattr(uc, "status", ""))}],
    }
