"""/api/v1/runs: runs logged from code (the tracking SDK) and no-code runs launched like the UI's Launch.

    POST /runs                         {"dataset": "customers@v2", "use_case": 3|"Customer churn", "name", "tags"}
    POST /runs/launch                  {"use_case", "dataset", "config": {...}, "algorithms", "params_by_algorithm",
                                        "name", "tags"} -> {"runs": [...]} (queued; a worker trains them)
    POST /runs/{id}/log-batch          {"params": {...}, "metrics": [{"key", "value", "step"}], "tags": {...}}
    POST /runs/{id}/params | metrics | tags   the same, one kind at a time
    POST /runs/{id}/finish | fail      {"error": "...", "status": "failed"|"cancelled"} for fail
    PUT  /runs/{id}/model              multipart: file `model` (skops bytes), field `input_schema` (JSON list)
    GET  /runs/{id}/model              the skops file
    PUT/GET /runs/{id}/artifacts/{path}, GET /runs/{id}/artifacts
    GET  /runs/{id}, GET /runs/{id}/metrics/history?key=, GET /runs?order_by=metric:roc_auc&order=desc
    PATCH /runs/{id}                   {"notes": "...", "tags": {...}, "remove_tags": [...]}: notes and tags of a run
                                       in any status (the run page's editor; the owner, data scientists, admins)

A batch is one transaction (experiments.log_batch). Values are checked here first so a bad one is named:
metric values must be finite numbers (NaN, inf and strings are refused with the key), at most
MAX_BATCH_ITEMS values per request (413 past it: split the batch)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ... import data_io
from ...errors import ValidationError
from ...services import datasets, experiments, usecases
from ...services.auth import require
from .deps import DB, CurrentActor, Pagination, dump
from .errors import TooLarge

router = APIRouter(prefix="/runs", tags=["runs"])

MAX_BATCH_ITEMS = 10_000  # params + metric values + tags in one request; the SDK sends 1,000 per batch
MAX_KEY_LENGTH = 200  # the run_metrics.key column
MAX_STEP = 2**31 - 1  # an INTEGER column on Postgres


def run_id_of(run_id: str) -> int:
    """A run id from the path: whole numbers only (the same id everywhere: UI, SDK, MLflow)."""
    text = run_id.strip()
    if not text.isdigit() or len(text) > 18:
        raise ValidationError(f"run id {run_id!r} is not a number; run ids are whole numbers like 42")
    return int(text)


def finite(value: Any) -> Any:
    """JSON has no NaN/inf: a metric computed as NaN by training (say, AUC of a one-class fold) is sent as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def _run(db, run_id: int) -> Any:
    return finite(dump(experiments.get_run(db, run_id)))


def _use_case_id(db, use_case: int | str | None) -> int | None:
    if use_case is None or use_case == "":
        return None
    return usecases.resolve_use_case(db, use_case).id


# --- bodies --------------------------------------------------------------------------------------------


class CreateRun(BaseModel):
    dataset: str = Field(description='the dataset version, "name@vN"')
    use_case: int | str | None = Field(default=None, description="use case id or title (default: the dataset's)")
    name: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict, description="e.g. the git commit and CI pipeline")


class LaunchRuns(BaseModel):
    use_case: int | str
    dataset: str = Field(description='the dataset version, "name@vN"')
    config: dict[str, Any] = Field(
        description="as the Experiments page's launch form: target, task, features, "
        "split, test_size, folds, seed, search, n_iter, algorithm"
    )
    algorithms: list[str] | None = None
    params_by_algorithm: dict[str, dict[str, Any]] | None = None
    name: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    source: Literal["api", "ci"] = Field(
        "api", description='"ci" from a pipeline (the CLI sends it, with the commit and pipeline as ci.* tags)'
    )


class LogBatch(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: list[Any] = Field(default_factory=list, description='[{"key": "auc", "value": 0.9, "step": 3}, ...]')
    tags: dict[str, Any] = Field(default_factory=dict)


class Params(BaseModel):
    params: dict[str, Any]


class Metrics(BaseModel):
    metrics: list[Any]


class Tags(BaseModel):
    tags: dict[str, Any]


class Annotate(BaseModel):
    notes: str | None = Field(default=None, description='markdown; "" clears them, absent leaves them')
    tags: dict[str, Any] = Field(default_factory=dict, description="tags to set (values are stored as text)")
    remove_tags: list[str] = Field(default_factory=list, description="tag names to delete")


class Fail(BaseModel):
    error: str = ""
    status: Literal["failed", "cancelled"] = "failed"


def check_metrics(items: list[Any]) -> list[tuple[str, float, int | None]]:
    """[(key, value, step)] from the request's list, or the first bad value named with how to fix it."""
    out: list[tuple[str, float, int | None]] = []
    for i, m in enumerate(items):
        if not isinstance(m, dict) or "key" not in m or "value" not in m:
            raise ValidationError(f'metrics[{i}] must be an object {{"key": "name", "value": 0.5, "step": 0}}')
        key, value, step = m["key"], m["value"], m.get("step")
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise ValidationError(
                f"metrics[{i}]: the key must be a name of 1 to {MAX_KEY_LENGTH} characters, got {key!r}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"metric {key!r} must be a number, got {value!r}; send numbers, not text")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValidationError(
                f"metric {key!r} must be a finite number, got {value!r}; NaN and infinity are "
                "refused: skip the value or log it as a tag"
            )
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP):
            raise ValidationError(f"metric {key!r}: step must be a whole number from 0 to {MAX_STEP}, got {step!r}")
        out.append((key, number, step))
    return out


def _check_size(n: int) -> None:
    if n > MAX_BATCH_ITEMS:
        raise TooLarge(
            f"{n:,} values in one request; the limit is {MAX_BATCH_ITEMS:,} params, metric values and "
            "tags per request: split them over several requests (the SDK sends 1,000 per batch)"
        )


def _log(db, actor, run_id: str, params: dict | None, metrics: list | None, tags: dict | None) -> dict[str, Any]:
    rid = run_id_of(run_id)
    params, metrics, tags = params or {}, metrics or [], tags or {}
    _check_size(len(params) + len(metrics) + len(tags))
    checked = check_metrics(metrics)
    experiments.log_batch(db, actor=actor, run_id=rid, params=params, metrics=checked, tags=tags)
    return {"run_id": rid, "params": len(params), "metrics": len(checked), "tags": len(tags)}


# --- create and list ------------------------------------------------------------------------------------


@router.post("", status_code=201, summary="Start a run logged from code (the SDK's start_run); it is 'running'")
def create_run(body: CreateRun, db: DB, actor: CurrentActor) -> Any:
    require(actor, "run.start")
    version = datasets.resolve_ref(db, body.dataset)
    run = experiments.create_sdk_run(
        db, actor=actor, use_case_id=_use_case_id(db, body.use_case), dataset_version_id=version.id, name=body.name
    )
    out = finite(dump(run))
    if body.tags:
        _check_size(len(body.tags))
        experiments.log_batch(db, actor=actor, run_id=run.id, tags=body.tags)
        out["tags"] = {**out["tags"], **{str(k): v for k, v in body.tags.items()}}
    return out


@router.post(
    "/launch",
    status_code=201,
    summary="Launch no-code training runs (as the Experiments page's Launch): queued for a worker",
)
def launch_runs(body: LaunchRuns, db: DB, actor: CurrentActor) -> dict[str, Any]:
    require(actor, "run.start")
    version = datasets.resolve_ref(db, body.dataset)
    if len(body.tags) > 100:
        raise ValidationError("at most 100 tags on a launched run")
    runs = experiments.start_runs(
        db,
        actor=actor,
        use_case_id=_use_case_id(db, body.use_case),
        dataset_version_id=version.id,
        config=body.config,
        algorithms=body.algorithms,
        params_by_algorithm=body.params_by_algorithm,
        name=body.name,
        source=body.source,
        tags=body.tags,
    )
    return {"runs": finite(dump(runs))}


@router.get("", summary="Runs, filtered and sorted (order_by: a column or metric:<key>), paginated")
def list_runs(
    db: DB,
    actor: CurrentActor,
    page: Pagination,
    use_case: Annotated[str | None, Query(description="use case id or title")] = None,
    status: Annotated[list[str] | None, Query()] = None,
    source: str | None = None,
    created_by: str | None = None,
    search: str | None = None,
    order_by: Annotated[
        str, Query(description="created_at, id, name, status, algorithm, duration or metric:<key>")
    ] = "created_at",
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    result = experiments.list_runs(
        db,
        use_case_id=_use_case_id(db, use_case),
        status=status,
        source=source,
        created_by=created_by,
        search=search,
        sort=order_by,
        descending=order == "desc",
        limit=page.limit,
        offset=page.offset,
    )
    more = result.offset + len(result.items) < result.total
    return {
        "items": finite(dump(result.items)),
        "total": result.total,
        "next_offset": result.offset + len(result.items) if more else None,
    }


# --- one run ----------------------------------------------------------------------------------------------


@router.get("/{run_id}", summary="A run: status, params, metrics (latest per key), tags, error")
def get_run(run_id: str, db: DB, actor: CurrentActor) -> Any:
    return _run(db, run_id_of(run_id))


@router.patch("/{run_id}", summary="Edit a run's notes and tags, in any status (the owner, data scientists and admins)")
def annotate_run(run_id: str, body: Annotate, db: DB, actor: CurrentActor) -> Any:
    _check_size(len(body.tags) + len(body.remove_tags))
    run = experiments.annotate_run(
        db, actor=actor, run_id=run_id_of(run_id), notes=body.notes, tags=body.tags, remove_tags=body.remove_tags
    )
    return finite(dump(run))


@router.get("/{run_id}/metrics/history", summary="Every logged value of the run's metrics: key -> [[step, value]]")
def metric_history(run_id: str, db: DB, actor: CurrentActor, key: str | None = None) -> dict[str, Any]:
    rid = run_id_of(run_id)
    experiments.get_run(db, rid)  # 404 for an unknown run, not an empty history
    return finite({k: [list(p) for p in v] for k, v in experiments.metric_history(db, rid, key).items()})


@router.post("/{run_id}/log-batch", summary="Params, metric values and tags in one transaction")
def log_batch(run_id: str, body: LogBatch, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return _log(db, actor, run_id, body.params, body.metrics, body.tags)


@router.post("/{run_id}/params", summary="Log params")
def log_params(run_id: str, body: Params, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return _log(db, actor, run_id, body.params, None, None)


@router.post("/{run_id}/metrics", summary='Log metric values [{"key", "value", "step"}]')
def log_metrics(run_id: str, body: Metrics, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return _log(db, actor, run_id, None, body.metrics, None)


@router.post("/{run_id}/tags", summary="Set tags")
def set_tags(run_id: str, body: Tags, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return _log(db, actor, run_id, None, None, body.tags)


@router.post("/{run_id}/finish", summary="End the run as finished")
def finish(run_id: str, db: DB, actor: CurrentActor) -> Any:
    rid = run_id_of(run_id)
    return finite(dump(experiments.end_sdk_run(db, actor=actor, run_id=rid, status="finished")))


@router.post("/{run_id}/fail", summary="End the run as failed (or cancelled) with the error text")
def fail(run_id: str, body: Fail, db: DB, actor: CurrentActor) -> Any:
    rid = run_id_of(run_id)
    return finite(
        dump(
            experiments.end_sdk_run(db, actor=actor, run_id=rid, status=body.status, error=body.error[:100_000] or None)
        )
    )


# --- model and files ------------------------------------------------------------------------------------


def _schema(text: str | None) -> list[dict[str, Any]] | None:
    if not text:
        return None
    try:
        schema = json.loads(text)
    except ValueError:
        raise ValidationError('input_schema must be JSON: [{"name": "tenure", "type": "number"}, ...]') from None
    if not isinstance(schema, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("type"), str) for c in schema
    ):
        raise ValidationError('input_schema must be a list like [{"name": "tenure", "type": "number"}, ...]')
    return schema


@router.put(
    "/{run_id}/model",
    summary="Store the run's model: a skops file, checked against the exact type "
    "allow-list (refused types are named; nothing is stored)",
)
async def put_model(
    run_id: str,
    db: DB,
    actor: CurrentActor,
    model: Annotated[UploadFile, File()],
    input_schema: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    rid = run_id_of(run_id)
    require(actor, "run.start")
    limit = data_io.max_upload_bytes()
    data = await model.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the model file is over the limit of {limit / 1024 / 1024:,.0f} MB (MLOPS_MAX_UPLOAD_MB)")
    schema = _schema(input_schema)
    key = await run_in_threadpool(
        experiments.log_model_bytes,
        db,
        actor=actor,
        run_id=rid,
        data=data,
        input_schema=schema,
        label=model.filename or "model",
    )
    return {"run_id": rid, "artifact_key": key, "size_bytes": len(data)}


@router.get("/{run_id}/model", summary="Download the run's model (skops)", response_class=Response)
def get_model(run_id: str, db: DB, actor: CurrentActor) -> Response:
    rid = run_id_of(run_id)
    art, data = experiments.artifact_by_path(db, run_id=rid, path="model.skops")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="run-{rid}-model.skops"'},
    )


@router.get("/{run_id}/artifacts", summary="The run's files")
def list_artifacts(run_id: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    rid = run_id_of(run_id)
    experiments.get_run(db, rid)
    return {"items": dump(experiments.list_artifacts(db, rid))}


@router.put("/{run_id}/artifacts/{path:path}", summary="Store a file of the run under a relative path (no '..')")
async def put_artifact(run_id: str, path: str, request: Request, db: DB, actor: CurrentActor) -> Any:
    rid = run_id_of(run_id)
    require(actor, "run.start")
    experiments.check_artifact_path(path)  # refuse '..' before reading the body
    limit = data_io.max_upload_bytes()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the file is over the limit of {limit / 1024 / 1024:,.0f} MB (MLOPS_MAX_UPLOAD_MB)")
        chunks.append(chunk)
    media = request.headers.get("content-type") or "application/octet-stream"
    art = await run_in_threadpool(
        experiments.log_artifact_bytes, db, actor=actor, run_id=rid, path=path, data=b"".join(chunks), media_type=media
    )
    return dump(art)


@router.get("/{run_id}/artifacts/{path:path}", summary="Download a file of the run", response_class=Response)
def get_artifact(run_id: str, path: str, db: DB, actor: CurrentActor) -> Response:
    art, data = experiments.artifact_by_path(db, run_id=run_id_of(run_id), path=path)
    # Served as a download, never rendered: a logged .html file must not run in the Hub's origin.
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{data_io.sanitize_filename(art.name)}"'},
    )
