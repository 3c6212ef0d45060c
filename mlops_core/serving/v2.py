"""The Open Inference Protocol (V2) routes of the scoring service, over the same deployments as /v1.

    GET  /v2                          server metadata (no key)
    GET  /v2/health/live              200 while the process runs (no key)
    GET  /v2/health/ready             200 once deployments were read from the database, else 503 (no key)
    GET  /v2/models/{name}            model metadata: one input per column (datatype, shape [-1]), outputs
    GET  /v2/models/{name}/ready      200 when the deployment serves a loaded model version, else 503
    POST /v2/models/{name}/infer      named input tensors per column -> `predict` (+ `score`) output tensors

Model routes take the deployment's API key (`Authorization: Bearer <key>`), as /v1 does; the infer route
runs the same validator, limits, canary split, fast path and prediction log as /v1/.../predict (the request
is turned into records by `oip.request_to_records`, then `app.check_records` and `app.score_and_log`).
Errors are the protocol's {"error": "<sentence>"}.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from . import oip

router = APIRouter(prefix="/v2")

SERVER_NAME = "mlops-hub"
SERVER_VERSION = "1"


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _state(request: Request):
    return request.app.state.serving


def _authorize(name: str, request: Request, endpoint: str):
    """(served, None) or (None, error response) — the /v1 key check, answered the protocol's way."""
    from .app import _Refused, authorize

    request.scope["mlops.metric"] = (endpoint, name)
    try:
        return authorize(_state(request), name, request), None
    except _Refused as exc:
        return None, _err(exc.status, exc.message)


def _classes(model: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    if classes is None or getattr(classes, "ndim", 0) != 1:
        return None
    return [c.item() if hasattr(c, "item") else c for c in classes]


@router.get("")
async def server_metadata():
    return oip.server_metadata(SERVER_NAME, SERVER_VERSION)


@router.get("/health/live")
async def live():
    return {"live": True}


@router.get("/health/ready")
async def ready(state=Depends(_state)):
    if state.last_poll_error:
        return JSONResponse({"ready": False, "error": state.last_poll_error}, status_code=503)
    return {"ready": True}


@router.get("/models/{name}")
async def model_metadata(name: str, request: Request):
    served, err = _authorize(name, request, "describe")
    if err is not None:
        return err
    champion = served.champion
    if champion is None:
        return _err(503, served.load_error or f"{name} serves no model version yet; deploy one first")
    return oip.model_metadata(
        name,
        champion.label,
        champion.input_schema,
        classifier=champion.positive is not None,
        classes=_classes(champion.model),
    )


@router.get("/models/{name}/ready")
async def model_ready(name: str, request: Request):
    served, err = _authorize(name, request, "describe")
    if err is not None:
        return err
    if served.champion is None:
        return JSONResponse({"name": name, "ready": False}, status_code=503)
    return {"name": name, "ready": True}


@router.post("/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    from .app import _log_error, _read_json, check_records, score_and_log

    served, err = _authorize(name, request, "predict")
    if err is not None:
        return err
    state = _state(request)
    started = time.perf_counter()
    payload, bad = await _read_json(request)
    if bad is not None:
        message = json.loads(bad.body)["detail"]
        _log_error(state, served, started, bad.status_code, message)
        return _err(bad.status_code, message)
    if served.champion is None:
        return _err(503, served.load_error or f"{name} serves no model version yet; deploy one first")
    try:
        records, wanted = oip.request_to_records(payload, served.champion.input_schema)
    except oip.ProtocolError as exc:
        _log_error(state, served, started, 400, str(exc))
        return _err(400, str(exc))
    bad = check_records(records, served, request.app.state.limits.max_records_per_request)
    if bad is not None:
        message = json.loads(bad.body)["detail"]
        _log_error(state, served, started, bad.status_code, message)
        return _err(bad.status_code, message)
    body = score_and_log(state, served, records, started)
    if isinstance(body, JSONResponse):
        return _err(body.status_code, json.loads(body.body)["detail"])
    request.scope["mlops.records"] = len(records)
    return JSONResponse(
        oip.response(
            model_name=name,
            model_version=body["model_version"],
            request_id=body["request_id"],
            given_id=payload.get("id") if isinstance(payload, dict) else None,
            predictions=body["predictions"],
            scores=body.get("scores"),
            wanted=wanted,
            record_ids=body.get("record_ids"),
        )
    )
