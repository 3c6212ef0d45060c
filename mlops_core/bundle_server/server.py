"""The bundle's scoring server: one model version of one deployment, with the Hub's request/response contract.

    GET  /healthz                              {"status": "ok"} (no key)
    POST /v1/deployments/{name}/predict        {"records": [...]} -> predictions (+ scores), model_version, request_id
    POST /v1/deployments/{name}/feedback       {"labels": [{"request_id", "label"}]} -> sent to the Hub
    GET  /v1/deployments/{name}                name, model_version, input_schema
    GET  /v2/..., POST /v2/models/{name}/infer the Open Inference Protocol, as the Hub's service answers it
    GET  /bundle/status                        buffer, drops, uploads (no key; no data)

The same validator (schema.RecordValidator), limits, numpy fast path (verified against the pipeline at start, on
the sample rows the Hub packed) and response bodies as the Hub's service; the prediction log goes to the local
disk buffer and from there to the Hub (uploader.py). Settings come from the environment:

    MLOPS_PORT (8080), MLOPS_HOST (0.0.0.0), MLOPS_API_KEYS (comma-separated keys callers send as Bearer),
    MLOPS_API_KEY_HASHES (or their SHA-256), MLOPS_HUB_URL, MLOPS_UPLOAD_KEY, MLOPS_BUFFER_DIR (./buffer),
    MLOPS_BUFFER_MAX_ROWS (1000000), MLOPS_UPLOAD_INTERVAL (1.0 s), MLOPS_MAX_RECORDS, MLOPS_MAX_REQUEST_BYTES,
    MLOPS_BUNDLE_DIR (the folder holding manifest.json; default: this package's parent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

try:  # in a bundle: the copies next to this file
    from . import fastpath, oip, persistence, schema, scoring  # type: ignore[attr-defined]
except ImportError:  # in the Hub's repository (tests): the originals
    from ..ml import fastpath, persistence, scoring
    from ..serving import oip, schema

from .uploader import Uploader

log = logging.getLogger("mlops_bundle_server")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class Model:
    """The packed model version: pipeline, validator, fast path, what it answers."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text())
        data = (folder / self.manifest["model_file"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(digest, self.manifest["model_sha256"]):
            raise RuntimeError(
                f"the model file's sha256 {digest} is not the manifest's {self.manifest['model_sha256']}"
            )
        self.model = persistence.load_model_bytes(data)
        self.input_schema = json.loads((folder / "input_schema.json").read_text())
        limits = self.manifest.get("limits", {})
        self.max_records = _env_int("MLOPS_MAX_RECORDS", limits.get("max_records_per_request", 10_000))
        self.max_bytes = _env_int("MLOPS_MAX_REQUEST_BYTES", limits.get("max_request_bytes", 20 * 1024 * 1024))
        self.validator = schema.RecordValidator(
            self.input_schema,
            max_string_length=_env_int("MLOPS_MAX_STRING_LENGTH", limits.get("max_string_length", 256)),
        )
        self.label = self.manifest["model_version"]
        self.model_version_id = self.manifest.get("model_version_id")
        self.deployment = self.manifest["deployment"]
        self.positive = scoring.positive_index(self.model)
        self.fast = None
        sample_path = folder / "verify_records.json"
        try:
            fast = fastpath.compile_fast_path(self.model, self.validator.names, self.positive)
            sample = json.loads(sample_path.read_text()) if sample_path.exists() else []
            if fast is not None and fastpath.verify_fast_path(fast, self.model, self.validator, sample, self.positive):
                self.fast = fast
        except Exception:  # noqa: BLE001 - no fast path is always correct
            log.exception("no fast path")
        classes = getattr(self.model, "classes_", None)
        self.classes = (
            [c.item() if hasattr(c, "item") else c for c in classes] if getattr(classes, "ndim", 0) == 1 else None
        )

    def predict_scored(self, records: list[dict[str, Any]]):
        if self.positive is None:
            if self.fast is not None and len(records) == 1:
                return schema.to_jsonable([self.fast(records[0])]), None
            return schema.to_jsonable(self.model.predict(self.validator.to_frame(records))), None
        if self.fast is not None and len(records) == 1:
            label, score = self.fast.scored(records[0])
            return schema.to_jsonable([label]), [score if math.isfinite(score) else None]
        labels, scores = scoring.predict_scored(self.model, self.validator.to_frame(records), self.positive)
        return schema.to_jsonable(labels), scoring.jsonable_scores(scores, len(records))


def _err(status: int, message: str, v2: bool = False) -> JSONResponse:
    return JSONResponse({"error" if v2 else "detail": message}, status_code=status)


def _key_hashes() -> set[str]:
    keys = [k.strip() for k in os.environ.get("MLOPS_API_KEYS", "").split(",") if k.strip()]
    hashes = [h.strip().lower() for h in os.environ.get("MLOPS_API_KEY_HASHES", "").split(",") if h.strip()]
    return {hashlib.sha256(k.encode()).hexdigest() for k in keys} | set(hashes)


def create_app(folder: str | Path | None = None) -> FastAPI:
    folder = Path(folder or os.environ.get("MLOPS_BUNDLE_DIR") or Path(__file__).resolve().parent.parent)
    model = Model(folder)
    key_hashes = _key_hashes()
    if not key_hashes:
        log.warning("no MLOPS_API_KEYS / MLOPS_API_KEY_HASHES: every scoring request will be refused (401)")
    uploader = Uploader(
        hub_url=os.environ.get("MLOPS_HUB_URL", model.manifest.get("hub_url", "")),
        deployment=model.deployment,
        upload_key=os.environ.get("MLOPS_UPLOAD_KEY", ""),
        buffer_path=Path(os.environ.get("MLOPS_BUFFER_DIR", "buffer")) / "predictions.sqlite",
        max_rows=_env_int("MLOPS_BUFFER_MAX_ROWS", 1_000_000),
        interval_seconds=float(os.environ.get("MLOPS_UPLOAD_INTERVAL", "1.0")),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        uploader.start()
        try:
            yield
        finally:
            uploader.close()  # SIGTERM: every queued row is written to the buffer before the process exits

    app = FastAPI(title=f"MLOps Hub bundle: {model.deployment}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.model, app.state.uploader = model, uploader

    def authorized(name: str, request: Request, v2: bool = False) -> JSONResponse | None:
        if name != model.deployment:
            return _err(404, f"no deployment named {name!r}, or your key is not for it", v2)
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or hashlib.sha256(header[7:].strip().encode()).hexdigest() not in key_hashes:
            return _err(
                401, f"a valid API key for {name!r} is required: send the header 'Authorization: Bearer <key>'", v2
            )
        return None

    async def read_json(request: Request) -> tuple[Any, str | None, int]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > model.max_bytes:
            return None, f"the request body is {int(length):,} bytes; the limit is {model.max_bytes:,} bytes", 413
        body = await request.body()
        if len(body) > model.max_bytes:
            return None, f"the request body is over the limit of {model.max_bytes:,} bytes", 413
        if not body:
            return None, 'the request body is empty; send JSON like {"records": [{...}]}', 400
        try:
            return orjson.loads(body), None, 200
        except orjson.JSONDecodeError as exc:
            return None, f"the request body is not valid JSON ({exc})", 400

    def log_error(started: float, status: int, message: str) -> None:
        uploader.put(
            "predictions", [_row(uuid.uuid4().hex, None, None, None, started, "error", f"{status}: {message}")]
        )

    def _row(rid, inputs, prediction, score, started_or_latency, status="ok", error=""):
        latency = started_or_latency if status == "ok" else (time.perf_counter() - started_or_latency) * 1000
        return {
            "request_id": rid,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "model_version_id": model.model_version_id,
            "inputs": inputs,
            "prediction": prediction,
            "score": score,
            "latency_ms": latency,
            "status": status,
            "error": error[:500],
        }

    def check(records: Any) -> tuple[int, str] | None:
        if isinstance(records, list) and len(records) > model.max_records:
            return 413, f"{len(records):,} records in one request; the limit is {model.max_records:,}: split them"
        problems = model.validator.problems(records)
        return (400, "; ".join(problems)) if problems else None

    def score(records: list[dict[str, Any]], started: float) -> dict[str, Any]:
        preds, scores = model.predict_scored(records)
        latency = (time.perf_counter() - started) * 1000
        rid = uuid.uuid4().hex
        n = len(records)
        if n == 1:
            rows = [_row(rid, records[0], preds[0], scores[0] if scores else None, latency)]
        else:
            rows = [
                _row(f"{rid}.{i}", rec, p, scores[i] if scores else None, latency / n)
                for i, (rec, p) in enumerate(zip(records, preds))
            ]
        uploader.put("predictions", rows)
        body: dict[str, Any] = {"predictions": preds, "model_version": model.label, "request_id": rid}
        if scores is not None:
            body["scores"] = scores
        if n > 1:
            body["record_ids"] = [r["request_id"] for r in rows]
        return body

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/bundle/status")
    async def status():
        return {
            "deployment": model.deployment,
            "model_version": model.label,
            "fast_path": model.fast is not None,
            **uploader.status(),
        }

    @app.post("/v1/deployments/{name}/predict")
    async def predict(name: str, request: Request):
        refused = authorized(name, request)
        if refused is not None:
            return refused
        started = time.perf_counter()
        payload, why, code = await read_json(request)
        if why is None:
            if not isinstance(payload, dict):
                why, code = 'the body must be a JSON object: {"records": [{...}, ...]}', 400
            elif "records" not in payload:
                why, code = 'the body has no "records"; send {"records": [{column: value, ...}, ...]}', 400
            elif len(payload) > 1:
                extra = ", ".join(str(k) for k in payload if k != "records")
                why, code = f'unexpected fields in the body: {extra}; send only "records"', 400
            else:
                bad = check(payload["records"])
                if bad is not None:
                    code, why = bad
        if why is not None:
            log_error(started, code, why)
            return _err(code, why)
        try:
            return JSONResponse(score(payload["records"], started))
        except Exception as exc:  # noqa: BLE001 - a model failure is a 500 with a message, and logged
            log.exception("prediction failed")
            log_error(started, 500, str(exc))
            return _err(500, f"the model failed to predict: {exc}")

    @app.post("/v1/deployments/{name}/feedback")
    async def feedback(name: str, request: Request):
        refused = authorized(name, request)
        if refused is not None:
            return refused
        payload, why, code = await read_json(request)
        if why is None and (not isinstance(payload, dict) or not isinstance(payload.get("labels"), list)):
            why, code = 'send {"labels": [{"request_id": "...", "label": ...}, ...]}', 400
        if why is not None:
            return _err(code, why)
        good = [x for x in payload["labels"] if isinstance(x, dict) and "request_id" in x and "label" in x]
        uploader.put("labels", good)
        # The Hub joins them to the uploaded predictions; what it did not know is reported there.
        return {"accepted": len(good), "unknown_request_ids": [], "invalid": [], "queued": True}

    @app.get("/v1/deployments/{name}")
    async def describe(name: str, request: Request):
        refused = authorized(name, request)
        if refused is not None:
            return refused
        return {"name": name, "model_version": model.label, "input_schema": model.input_schema}

    @app.get("/v2")
    async def v2_server():
        return oip.server_metadata("mlops-bundle-server", "1")

    @app.get("/v2/health/live")
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def v2_ready():
        return {"ready": True}

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str, request: Request):
        refused = authorized(name, request, v2=True)
        if refused is not None:
            return refused
        return oip.model_metadata(
            name, model.label, model.input_schema, classifier=model.positive is not None, classes=model.classes
        )

    @app.get("/v2/models/{name}/ready")
    async def v2_model_ready(name: str, request: Request):
        refused = authorized(name, request, v2=True)
        return refused if refused is not None else {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, request: Request):
        refused = authorized(name, request, v2=True)
        if refused is not None:
            return refused
        started = time.perf_counter()
        payload, why, code = await read_json(request)
        if why is None:
            try:
                records, wanted = oip.request_to_records(payload, model.input_schema)
                bad = check(records)
                if bad is not None:
                    code, why = bad
            except oip.ProtocolError as exc:
                code, why = 400, str(exc)
        if why is not None:
            log_error(started, code, why)
            return _err(code, why, v2=True)
        try:
            body = score(records, started)
        except Exception as exc:  # noqa: BLE001
            log.exception("prediction failed")
            log_error(started, 500, str(exc))
            return _err(500, f"the model failed to predict: {exc}", v2=True)
        return JSONResponse(
            oip.response(
                model_name=name,
                model_version=body["model_version"],
                request_id=body["request_id"],
                given_id=payload.get("id"),
                predictions=body["predictions"],
                scores=body.get("scores"),
                wanted=wanted,
                record_ids=body.get("record_ids"),
            )
        )

    return app
