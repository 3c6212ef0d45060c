"""The REST scoring service (DESIGN.md, "Contracts" -> REST scoring service).

    GET  /healthz                              200 {"status": "ok"} (no key)
    POST /v1/deployments/{name}/predict        {"records": [{...}, ...]} -> predictions
    POST /v1/deployments/{name}/feedback       {"labels": [{"request_id", "label"}, ...]}
    GET  /v1/deployments/{name}                name, model_version, input_schema
    GET  /metrics                              Prometheus text (Bearer MLOPS_METRICS_TOKEN, or loopback only)

How it stays fast and consistent across processes (several may run on one Postgres):
- A poller thread reads `deployments` and the unrevoked API key hashes every POLL_SECONDS; a changed
  `generation` (deploy, rollback, canary) loads the new model version in that thread and swaps it in,
  so requests never wait for a load and a deploy takes effect within seconds, without a restart.
  Models are cached per model version.
- Requests are validated against a per-version `RecordValidator` built once at load.
- Every scored record is queued to the batched `PredictionWriter`; no commit is on a request's path.
  Shutdown (SIGTERM) flushes the queue before the process exits.
- Bodies are parsed by orjson (strict: no lone surrogates, nesting depth capped); only what it refuses is
  parsed again by the json module, to answer with the exact problem (NaN, huge numbers, bad syntax).
- Every response carries security headers (`SecurityHeaders`, a pure ASGI middleware: no per-request task);
  `RequestMetrics` (pure ASGI too) counts each answered request once. Routes are module-level (`router`);
  `Depends(_served(...))` resolves the deployment and checks the key, `Depends(get_state)` gives the state.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import random
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..config import get_settings
from ..db import Database, get_database
from ..errors import DomainError, ValidationError
from ..ml.fastpath import compile_fast_path, verify_fast_path
from ..ml.scoring import apply_threshold, jsonable_scores, positive_index, predict_scored
from ..services import datasets, deployments, infrastructure, registry
from ..services import canvas
from ..services import value as value_service
from ..services.apikeys import hash_key
from ..services.predictions import PredictionWriter, apply_labels, prediction_row
from .api import API_V1
from .api import errors as api_errors
from .api import deployments as api_deployments
from .api import jobs as api_jobs
from .api import me as api_me
from . import mlflow as mlflow_api
from .api import monitoring as api_monitoring
from .api import usecases as api_usecases
from .api import datasets as api_datasets
from .api import models as api_models
from .api import runs as api_runs
from .api import uploads as api_uploads
from .api import reports as api_reports
from .replica import ReplicaReporter
from .schema import RecordValidator, frame_to_records, is_valid_text, probe_records, to_jsonable
from . import v2

log = logging.getLogger("mlops_core.serving")

POLL_SECONDS = 1.0
ENDPOINTS = ("predict", "feedback", "describe")
# Not counted as requests in flight: the scraper's and the health check's own requests.
UNCOUNTED = frozenset({"/metrics", "/healthz"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class LoadedModel:
    model_version_id: int
    label: str
    model: Any
    validator: RecordValidator
    input_schema: list[dict[str, Any]]
    # One-record numpy fast path, verified equal to model.predict (and predict_proba) at load (None: use the pipeline).
    fast: Any = None
    # Binary classifiers: index in classes_ of the class whose probability is logged as `score` (else None).
    positive: int | None = None
    # Binary classifiers: the model version's stored decision threshold (issue 20; None: the model's own rule).
    threshold: float | None = None

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        if self.threshold is not None and self.positive is not None:
            return self.predict_scored(records)[0]
        if self.fast is not None and len(records) == 1:
            return to_jsonable([self.fast(records[0])])
        return to_jsonable(self.model.predict(self.validator.to_frame(records)))

    def predict_scored(self, records: list[dict[str, Any]]) -> tuple[list[Any], list[float | None] | None]:
        """(predictions, positive-class probabilities) — the scores are None unless a binary classifier."""
        if self.positive is None:
            return self.predict(records), None
        if self.fast is not None and len(records) == 1:
            label, score = self.fast.scored(records[0])  # a Python float
            if self.threshold is not None and math.isfinite(score):
                label = apply_threshold(self.model, [label], [score], self.positive, self.threshold)[0]
            return to_jsonable([label]), [score if math.isfinite(score) else None]
        labels, scores = predict_scored(self.model, self.validator.to_frame(records), self.positive, self.threshold)
        return to_jsonable(labels), jsonable_scores(scores, len(records))


@dataclass
class Served:
    """What one endpoint serves right now (replaced as a whole on every change)."""

    id: int
    name: str
    generation: int
    champion: LoadedModel | None
    canary: LoadedModel | None = None
    canary_share: float = 0.0
    load_error: str = ""


@dataclass
class Metrics:
    """Prometheus counters and a latency histogram, per process."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, list[int]] = field(default_factory=dict)
    latency_sum: dict[str, float] = field(default_factory=dict)
    latency_count: dict[str, int] = field(default_factory=dict)
    # HTTP requests being answered now (RequestMetrics; /metrics and /healthz not counted).
    in_flight: int = 0

    def observe(self, deployment: str, endpoint: str, status: int, seconds: float, n_records: int = 0) -> None:
        key = (deployment, endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if endpoint == "predict":
            if n_records:
                self.records[deployment] = self.records.get(deployment, 0) + n_records
            b = self.buckets.get(deployment)
            if b is None:
                b = self.buckets[deployment] = [0] * (len(LATENCY_BUCKETS) + 1)
            for i, upper in enumerate(LATENCY_BUCKETS):
                if seconds <= upper:
                    b[i] += 1
                    break
            else:
                b[-1] += 1
            self.latency_sum[deployment] = self.latency_sum.get(deployment, 0.0) + seconds
            self.latency_count[deployment] = self.latency_count.get(deployment, 0) + 1

    def render(self, *, pending: int, written: int) -> str:
        lines = [
            "# HELP mlops_requests_total Scoring API requests by deployment, endpoint and HTTP status.",
            "# TYPE mlops_requests_total counter",
        ]
        for (dep, ep, status), n in sorted(self.requests.items()):
            lines.append(f'mlops_requests_total{{deployment="{dep}",endpoint="{ep}",status="{status}"}} {n}')
        lines += [
            "# HELP mlops_request_errors_total Scoring API requests answered with an error (4xx/5xx).",
            "# TYPE mlops_request_errors_total counter",
        ]
        errors: dict[tuple[str, str], int] = {}
        for (dep, ep, status), n in self.requests.items():
            if status >= 400:
                errors[(dep, ep)] = errors.get((dep, ep), 0) + n
        for (dep, ep), n in sorted(errors.items()):
            lines.append(f'mlops_request_errors_total{{deployment="{dep}",endpoint="{ep}"}} {n}')
        lines += ["# HELP mlops_predictions_total Records scored.", "# TYPE mlops_predictions_total counter"]
        for dep, n in sorted(self.records.items()):
            lines.append(f'mlops_predictions_total{{deployment="{dep}"}} {n}')
        lines += [
            "# HELP mlops_request_latency_seconds Time to answer a predict request.",
            "# TYPE mlops_request_latency_seconds histogram",
        ]
        for dep, b in sorted(self.buckets.items()):
            cum = 0
            for upper, n in zip(LATENCY_BUCKETS, b):
                cum += n
                lines.append(f'mlops_request_latency_seconds_bucket{{deployment="{dep}",le="{upper}"}} {cum}')
            cum += b[-1]
            lines.append(f'mlops_request_latency_seconds_bucket{{deployment="{dep}",le="+Inf"}} {cum}')
            lines.append(f'mlops_request_latency_seconds_sum{{deployment="{dep}"}} {self.latency_sum[dep]:.6f}')
            lines.append(f'mlops_request_latency_seconds_count{{deployment="{dep}"}} {self.latency_count[dep]}')
        lines += [
            "# HELP mlops_prediction_log_pending Prediction rows queued, not yet written.",
            "# TYPE mlops_prediction_log_pending gauge",
            f"mlops_prediction_log_pending {pending}",
            "# HELP mlops_prediction_log_written_total Prediction rows written by this process.",
            "# TYPE mlops_prediction_log_written_total counter",
            f"mlops_prediction_log_written_total {written}",
        ]
        return "\n".join(lines) + "\n"


class ServingState:
    """Everything a scoring process holds: the served endpoints, key hashes, model cache, log writer."""

    def __init__(self, db: Database, *, poll_seconds: float = POLL_SECONDS):
        self.db = db
        self.poll_seconds = poll_seconds
        self.settings = get_settings()
        self.served: dict[str, Served] = {}
        self.keys: dict[str, int] = {}
        self.models: dict[int, LoadedModel] = {}
        self.writer = PredictionWriter(db)
        self.metrics = Metrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_poll_error = ""
        self.reporter: ReplicaReporter | None = None

    # -- polling ------------------------------------------------------------------------------

    def _load(self, model_version_id: int) -> LoadedModel:
        cached = self.models.get(model_version_id)
        if cached is not None:
            return cached
        mv = registry.get_model_version(self.db, model_version_id).model_dump()
        model = deployments.load_model(self.db, model_version_id)
        schema = list(mv.get("input_schema") or [])
        loaded = LoadedModel(
            model_version_id=model_version_id,
            label=f"{mv.get('model_name', 'model')} v{mv.get('version', model_version_id)}",
            model=model,
            validator=RecordValidator(schema),
            input_schema=schema,
            positive=positive_index(model, canvas.problem_settings(self.db, mv.get("use_case_id"))[1]),
            threshold=value_service.threshold_for(self.db, model_version_id),
        )
        loaded.fast = self._fast_path(loaded, mv)
        self.models[model_version_id] = loaded
        return loaded

    def _fast_path(self, loaded: LoadedModel, mv: dict[str, Any]):
        """Compile the one-record fast path and keep it only if it agrees with the pipeline on training rows
        (its labels with predict, and for a binary classifier its scores with predict_proba)."""
        try:
            fast = compile_fast_path(loaded.model, loaded.validator.names, loaded.positive)
            if fast is None or mv.get("dataset_version_id") is None:
                return None
            frame = datasets.load_frame(self.db, mv["dataset_version_id"])
            records = frame_to_records(frame, loaded.validator.names, limit=50)
            records += probe_records(records, loaded.validator.types)
            if verify_fast_path(fast, loaded.model, loaded.validator, records, loaded.positive):
                return fast
            log.warning("fast path of %s disagrees with the pipeline; using the pipeline", loaded.label)
        except Exception:  # noqa: BLE001 - no fast path is always correct
            log.exception("no fast path for %s", loaded.label)
        return None

    def poll(self) -> None:
        """Pick up deploys, rollbacks, canaries and key changes (called every poll_seconds)."""
        rows, keys = deployments.serving_snapshot(self.db)
        served: dict[str, Served] = {}
        for row in rows:
            dep_id, name, generation = row.id, row.name, row.generation
            mv_id, canary_id, share = row.model_version_id, row.canary_model_version_id, row.canary_share
            current = self.served.get(name)
            if (
                current is not None
                and current.generation == generation
                and current.id == dep_id
                and not current.load_error
            ):
                served[name] = current
                continue
            entry = Served(id=dep_id, name=name, generation=generation, champion=None)
            try:
                entry.champion = self._load(mv_id) if mv_id is not None else None
                if canary_id is not None and share > 0:
                    entry.canary, entry.canary_share = self._load(canary_id), float(share)
            except Exception as exc:  # noqa: BLE001 - keep serving the old version, report the new one's failure
                log.exception("cannot load the model of deployment %s", name)
                if current is not None and current.champion is not None:
                    served[name] = current
                    continue
                entry.load_error = f"the model of {name} cannot be loaded: {exc}"
            served[name] = entry
        self.served = served
        self.keys = keys
        # Forget models no endpoint serves any more.
        live = {m.model_version_id for e in served.values() for m in (e.champion, e.canary) if m is not None}
        for mv_id in list(self.models):
            if mv_id not in live:
                self.models.pop(mv_id, None)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
                self.last_poll_error = ""
            except Exception as exc:  # noqa: BLE001 - keep serving what we have; try again next tick
                self.last_poll_error = str(exc)
                log.warning("polling deployments failed: %s", exc)

    def start(self) -> None:
        try:
            self.poll()
        except Exception as exc:  # noqa: BLE001 - the database may come up later
            self.last_poll_error = str(exc)
            log.warning("first poll of deployments failed: %s", exc)
        self._thread = threading.Thread(target=self._poll_loop, name="deployment-poller", daemon=True)
        self._thread.start()
        # This replica's load, written to the database every few seconds (Infrastructure page, /metrics).
        self.reporter = ReplicaReporter(self.db, self.metrics, LATENCY_BUCKETS)
        self.reporter.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.reporter is not None:
            self.reporter.stop()
        self.writer.close()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


# The API serves JSON to programs, never pages: nothing it sends may be sniffed as HTML, framed or run.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
# The one page: FastAPI's Swagger UI at /docs loads its script and style from jsDelivr and runs one inline
# script, then fetches /openapi.json; only these two paths get a CSP that allows that.
DOCS_PATHS = frozenset({"/docs", "/openapi.json"})
DOCS_HEADERS: list[tuple[bytes, bytes]] = [
    (
        k,
        b"default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
        b"style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src data: https://fastapi.tiangolo.com; "
        b"connect-src 'self'; frame-ancestors 'none'",
    )
    if k == b"content-security-policy"
    else (k, v)
    for k, v in SECURITY_HEADERS
]


class SecurityHeaders:
    """Pure ASGI middleware adding SECURITY_HEADERS to every HTTP response (cheaper than
    BaseHTTPMiddleware, which runs each request in its own task and wraps the body stream)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = DOCS_HEADERS if scope.get("path") in DOCS_PATHS else SECURITY_HEADERS

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _has_lone_surrogate(value: Any) -> bool:
    """Any string (key or value) in a parsed JSON document that is not valid UTF-8 (iterative: the
    document may be deep)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not is_valid_text(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def parse_body(body: bytes) -> tuple[Any, str | None]:
    """(document, None), or (None, why the body is refused). orjson parses nearly every request; it refuses
    lone surrogates and nesting deeper than 1024 itself. What it refuses otherwise (NaN, numbers beyond
    64 bits, bad syntax) is parsed again by the json module, so the validator can name NaN or a huge
    number, and a syntax error gets the json module's message."""
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        why = str(exc)
    if "depth limit" in why:
        return None, "the request body is nested too deeply; send {\"records\": [{column: value, ...}]}"
    if "UTF-8" in why or "surrogate" in why:
        return None, (
            "the request body is not valid UTF-8 text (for example a lone surrogate such as \\ud800): "
            "send every string as UTF-8; characters outside the BMP as a surrogate pair"
        )
    try:
        doc = json.loads(body)
    except RecursionError:
        return None, "the request body is nested too deeply; send {\"records\": [{column: value, ...}]}"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the request body is not valid JSON ({exc}); send {{\"records\": [{{...}}]}}"
    if _has_lone_surrogate(doc):
        return None, (
            "the request body is not valid UTF-8 text (for example a lone surrogate such as \\ud800): "
            "send every string as UTF-8; characters outside the BMP as a surrogate pair"
        )
    return doc, None


def get_state(request: Request) -> ServingState:
    """The process's ServingState (set by the app's lifespan)."""
    return request.app.state.serving


def _label(state: ServingState, name: str) -> str:
    # Unknown names share one label, so probing random URLs cannot grow the metrics without bound.
    return name if name in state.served else "-"


class _Refused(Exception):
    """A request refused before its handler ran (unknown deployment, bad key); answered as {"detail": ...}."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def _served(endpoint: str):
    """Dependency: the deployment named in the path, if the caller's key is for it. It also tags the request
    for RequestMetrics with its endpoint and deployment, so every answer of the route is counted once."""

    def dependency(name: str, request: Request, state: ServingState = Depends(get_state)) -> Served:
        request.scope["mlops.metric"] = (endpoint, name)
        return authorize(state, name, request)

    return dependency


def authorize(state: ServingState, name: str, request: Request) -> Served:
    """The deployment `name` if the request's bearer key is for it; raises _Refused (404/401) otherwise."""
    served = state.served.get(name)
    if served is None:
        # Never list the deployments: a caller with a key for one must not learn the others' names.
        raise _Refused(404, f"no deployment named {name!r}, or your key is not for it")
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer " or state.keys.get(hash_key(header[7:].strip())) != served.id:
        raise _Refused(
            401,
            f"a valid API key for {name!r} is required: send the header "
            "'Authorization: Bearer <key>' (create one with `python -m mlops_core apikey "
            f"create --deployment {name}`)",
        )
    return served


class RequestMetrics:
    """Pure ASGI middleware: one `Metrics.observe` per answered predict/feedback/describe request, with the
    status it was answered with and its latency (a route tags the request through `_served`). Pure ASGI
    keeps it to one closure per request: the scoring path serves thousands of requests a second."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        counted = getattr(scope["app"].state, "serving", None) if scope.get("path") not in UNCOUNTED else None
        if counted is not None:
            counted.metrics.in_flight += 1

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if counted is not None:
                counted.metrics.in_flight -= 1
        tag = scope.get("mlops.metric")
        if tag is not None and status:
            state: ServingState = scope["app"].state.serving
            endpoint, name = tag
            state.metrics.observe(
                _label(state, name), endpoint, status, time.perf_counter() - started, scope.get("mlops.records", 0)
            )


router = APIRouter()


async def _read_json(request: Request) -> tuple[Any, JSONResponse | None]:
    max_bytes = request.app.state.limits.max_request_bytes
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            return None, _error(400, "the Content-Length header is not a number")
        if n > max_bytes:
            return None, _error(
                413,
                f"the request body is {n:,} bytes; the limit is {max_bytes:,} bytes "
                "(MLOPS_MAX_REQUEST_BYTES): send fewer records per request",
            )
        body = await request.body()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                return None, _error(
                    413,
                    f"the request body is over the limit of {max_bytes:,} bytes "
                    "(MLOPS_MAX_REQUEST_BYTES): send fewer records per request",
                )
            chunks.append(chunk)
        body = b"".join(chunks)
    if not body:
        return None, _error(400, "the request body is empty; send JSON like {\"records\": [{...}]}")
    doc, why = parse_body(body)
    return (doc, None) if why is None else (None, _error(400, why))


def _log_error(
    state: ServingState, served: Served, started: float, status: int, message: str, model_version_id: int | None = None
) -> None:
    """Log a failed request. `model_version_id`: the version that failed (a canary challenger's crash is its own,
    so the canary comparison sees it); by default the champion's."""
    if model_version_id is None and served.champion:
        model_version_id = served.champion.model_version_id
    state.writer.put(
        [
            prediction_row(
                request_id=uuid.uuid4().hex,
                deployment_id=served.id,
                model_version_id=model_version_id,
                inputs=None,
                prediction=None,
                latency_ms=(time.perf_counter() - started) * 1000,
                status="error",
                error=f"{status}: {message}",
            )
        ]
    )


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.post("/v1/deployments/{name}/predict")
async def predict(
    name: str, request: Request, served: Served = Depends(_served("predict")), state: ServingState = Depends(get_state)
):
    started = time.perf_counter()
    payload, err = await _read_json(request)
    if err is None:
        err = _check_payload(payload, served, request.app.state.limits.max_records_per_request)
    if err is not None:
        _log_error(state, served, started, err.status_code, json.loads(err.body)["detail"])
        return err
    records = payload["records"]
    body = score_and_log(state, served, records, started)
    if isinstance(body, JSONResponse):
        return body
    request.scope["mlops.records"] = len(records)
    return JSONResponse(body)


def score_and_log(state: ServingState, served: Served, records: list[dict[str, Any]], started: float):
    """Score validated records (champion, or the canary for its share), queue their prediction-log rows, and
    return the /predict body; a model failure is logged and answered as a 500 JSONResponse."""
    name = served.name
    champion = served.champion
    use_canary = served.canary is not None and random.random() < served.canary_share  # noqa: S311 - a traffic split, not a secret
    failing = champion
    try:
        shadow = None
        if use_canary:
            shadow = champion.predict(records)
            failing = served.canary
            preds, scores = served.canary.predict_scored(records)
        else:
            preds, scores = champion.predict_scored(records)
    except Exception as exc:  # noqa: BLE001 - a model failure is a 500 with a message, and logged
        log.exception("prediction failed on %s", name)
        _log_error(state, served, started, 500, str(exc), failing.model_version_id if failing else None)
        return _error(500, f"the model failed to predict: {exc}")
    serving = served.canary if use_canary else champion
    latency = (time.perf_counter() - started) * 1000
    rid = uuid.uuid4().hex
    n = len(records)
    per = latency / n
    if n == 1:
        rows = [
            prediction_row(
                request_id=rid,
                deployment_id=served.id,
                model_version_id=serving.model_version_id,
                inputs=records[0],
                prediction=preds[0],
                latency_ms=latency,
                shadow_model_version_id=champion.model_version_id if use_canary else None,
                shadow_prediction=shadow[0] if use_canary else None,
                score=scores[0] if scores is not None else None,
            )
        ]
    else:
        rows = [
            prediction_row(
                request_id=f"{rid}.{i}",
                deployment_id=served.id,
                model_version_id=serving.model_version_id,
                inputs=rec,
                prediction=p,
                latency_ms=per,
                shadow_model_version_id=champion.model_version_id if use_canary else None,
                shadow_prediction=shadow[i] if use_canary else None,
                score=scores[i] if scores is not None else None,
            )
            for i, (rec, p) in enumerate(zip(records, preds))
        ]
    state.writer.put(rows)
    body = {"predictions": preds, "model_version": serving.label, "request_id": rid}
    if scores is not None:
        body["scores"] = scores
    if n > 1:
        body["record_ids"] = [r["request_id"] for r in rows]
    return body


@router.post("/v1/deployments/{name}/feedback")
async def feedback(
    request: Request, served: Served = Depends(_served("feedback")), state: ServingState = Depends(get_state)
):
    payload, err = await _read_json(request)
    if err is None and (not isinstance(payload, dict) or "labels" not in payload):
        err = _error(400, 'send {"labels": [{"request_id": "...", "label": ...}, ...]}')
    if err is not None:
        return err
    # Predictions of the last fraction of a second may still be queued: write them first.
    try:
        state.writer.flush()
        result = apply_labels(state.db, deployment_id=served.id, labels=payload["labels"])
    except ValidationError as exc:
        return _error(400, str(exc))
    except DomainError as exc:
        return _error(503, f"the label store is unavailable: {exc}")
    return {"accepted": len(result.accepted), "unknown_request_ids": result.unknown, "invalid": result.invalid}


@router.get("/v1/deployments/{name}")
async def describe(served: Served = Depends(_served("describe"))):
    champion = served.champion
    return {
        "name": served.name,
        "model_version": champion.label if champion else None,
        "input_schema": champion.input_schema if champion else [],
    }


@router.get("/metrics")
async def metrics(request: Request, state: ServingState = Depends(get_state)):
    # Counters name every deployment and its traffic: only the scraper may read them.
    metrics_token = request.app.state.limits.metrics_token or ""
    if metrics_token:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode(), metrics_token.encode()):
            return _error(
                401,
                "/metrics needs the header 'Authorization: Bearer <MLOPS_METRICS_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _loopback(request.client.host if request.client else None):
        return _error(
            403,
            "/metrics answers only local clients (127.0.0.1, ::1) unless MLOPS_METRICS_TOKEN is "
            "set; set it and scrape with 'Authorization: Bearer <token>'",
        )
    # Scaling figures of the whole hub (queue, workers, all replicas, Dask) from the database, cached a few seconds.
    try:
        scaling = await run_in_threadpool(infrastructure.prometheus_text, state.db)
    except Exception as exc:  # noqa: BLE001 - this process's own metrics still answer without the database
        log.warning("scaling metrics unavailable: %s", exc)
        scaling = "# scaling metrics unavailable: the database did not answer\n"
    return PlainTextResponse(
        state.metrics.render(pending=state.writer.pending, written=state.writer.written)
        + "# HELP mlops_in_flight_requests HTTP requests this process is answering now.\n"
        + "# TYPE mlops_in_flight_requests gauge\n"
        + f"mlops_in_flight_requests {state.metrics.in_flight}\n"
        + scaling,
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


async def _refused(_request: Request, exc: _Refused) -> Response:
    return _error(exc.status, exc.message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in the scoring service")
    state = getattr(request.app.state, "serving", None)
    if state is not None:  # an error no endpoint answered still shows in /metrics (errors by status)
        parts = request.url.path.strip("/").split("/")
        api = len(parts) >= 3 and parts[:2] == ["v1", "deployments"]
        endpoint = (parts[3] if len(parts) == 4 else "describe") if api else "other"
        key = (_label(state, parts[2]) if api else "-", endpoint if endpoint in ENDPOINTS else "other", 500)
        state.metrics.requests[key] = state.metrics.requests.get(key, 0) + 1
    # Starlette answers this handler outside the middleware stack: add the security headers here.
    return _error(
        500,
        f"internal error: {type(exc).__name__}; see the service log",
        headers={k.decode(): v.decode() for k, v in SECURITY_HEADERS},
    )


def create_app(database_url: str | None = None, *, poll_seconds: float = POLL_SECONDS) -> FastAPI:
    """The app factory (`uvicorn --factory mlops_core.serving.app:create_app`)."""
    db = get_database(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = ServingState(db, poll_seconds=poll_seconds)
        state.start()
        app.state.serving = state
        try:
            yield
        finally:
            # Clean shutdown: write every queued prediction before the process exits.
            state.stop()

    app = FastAPI(
        title="MLOps Hub API",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.limits = get_settings()  # read once, when the app is built
    app.include_router(router)
    app.include_router(v2.router)  # the Open Inference Protocol (/v2/...)
    # The Hub API (/api/v1): one include per resource module.
    api_errors.install(app)
    app.include_router(api_me.router, prefix=API_V1)
    app.include_router(api_usecases.router, prefix=API_V1)
    app.include_router(api_deployments.router, prefix=API_V1)
    app.include_router(api_monitoring.router, prefix=API_V1)
    app.include_router(api_jobs.router, prefix=API_V1)
    app.include_router(api_datasets.router, prefix=API_V1)
    app.include_router(api_runs.router, prefix=API_V1)
    app.include_router(api_models.router, prefix=API_V1)
    app.include_router(api_uploads.router, prefix=API_V1)  # bundles' prediction logs and labels
    app.include_router(api_reports.router, prefix=API_V1)  # the use case report, a deployment's bundle
    app.include_router(mlflow_api.router)  # /api/2.0/mlflow..., /ajax-api/..., /api/2.0/mlflow-artifacts/...
    app.add_middleware(RequestMetrics)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(_Refused, _refused)
    app.add_exception_handler(Exception, _unexpected)
    return app


def _check_payload(payload: Any, served: Served, max_records: int) -> JSONResponse | None:
    if served.champion is None:
        msg = served.load_error or f"{served.name} serves no model version yet; deploy one first"
        return _error(503, msg)
    if not isinstance(payload, dict):
        return _error(400, 'the body must be a JSON object: {"records": [{...}, ...]}')
    if "records" not in payload:
        return _error(400, 'the body has no "records"; send {"records": [{column: value, ...}, ...]}')
    extra = [k for k in payload if k != "records"]
    if extra:
        return _error(400, f"unexpected fields in the body: {', '.join(map(str, extra))}; send only \"records\"")
    return check_records(payload["records"], served, max_records)


def check_records(records: Any, served: Served, max_records: int) -> JSONResponse | None:
    """The record count limit and the validators of the served version(s): None when the records may be scored."""
    if isinstance(records, list) and len(records) > max_records:
        return _error(
            413,
            f"{len(records):,} records in one request; the limit is {max_records:,} "
            "(MLOPS_MAX_RECORDS): split them over several requests",
        )
    problems = served.champion.validator.problems(records)
    if problems:
        return _error(400, "; ".join(problems))
    if served.canary is not None and served.canary.validator.names != served.champion.validator.names:
        problems = served.canary.validator.problems(records)
        if problems:
            return _error(400, "; ".join(problems))
    return None
