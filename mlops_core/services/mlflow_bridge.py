"""What the MLflow-compatible routes (mlops_core/serving/mlflow/) need beyond the experiments and registry
services: a run created from MLflow (no dataset version yet), MLflow's run-side metadata (logged models,
dataset inputs, model outputs), the files the MLflow artifact proxy stores, and turning a logged MLflow
sklearn model into the run's model through the same exact-type allow-list as every other model.

MLflow metadata lives in the run's `config["mlflow"]` (an MLflow run has no no-code launch configuration;
source "mlflow" runs are never reproduced from their config): one row, read with the run itself.
Params, metrics and tags go through experiments.log_batch, like the tracking SDK's.

Dataset lineage: an MLflow run has no Hub dataset version when it starts. It gets one (the run's
dataset_version_id, which the data_validated deployment gate checks) from the tag `mlops.dataset=customers@v2`
(start_run tags, set_tag, log-batch; an unknown reference is refused with a sentence) or from a log-inputs
dataset whose name or source is a Hub reference ("customers@v2", or the Hub's download URL
/api/v1/datasets/customers/versions/2/...) or whose digest is the version's content hash (12+ leading
characters). The tag always wins; a logged input links only a run that has no dataset yet, and inputs logged
with an evaluation context (eval, test, validation) never link.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from urllib.parse import unquote
from typing import Any, Mapping

import yaml
from sqlmodel import select

from .. import artifacts
from ..db import Database, utcnow
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..ml import training
from ..models.datasets import Dataset, DatasetVersion, DatasetVersionPublic
from ..models.experiments import Run, RunArtifact, RunPublic
from . import audit, datasets, experiments
from .auth import Actor, can, require
from .usecases import get_use_case

MODEL_FILE_KIND = "mlflow_model"  # run_artifacts.kind of a file of an MLflow logged model
MODELS_PREFIX = "mlflow-models/"  # run_artifacts.name prefix of those files: mlflow-models/<model_id>/<file>
MAX_INPUTS = 100
MLFLOW_STATUS = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "cancelled",
}
DATASET_TAG = "mlops.dataset"  # set_tag("mlops.dataset", "customers@v2") links the run to that version
_EVAL_CONTEXTS = {"eval", "evaluation", "test", "testing", "validation", "valid", "holdout"}
_VERSIONED_REF = re.compile(r"^\s*[^@\s/]+\s*@\s*v\d+\s*$", re.IGNORECASE)
_HUB_URL = re.compile(r"/api/v1/datasets/(?P<name>[^/?#]+)/versions/v?(?P<version>\d+)(?:[/?#]|$)")
_MIN_DIGEST = 12


def _run_row(s, run_id: int) -> Run:
    run = s.get(Run, int(run_id))
    if run is None:
        raise NotFound(f"Run '{run_id}' not found; runs logged from MLflow have decimal ids shown by mlflow.start_run")
    return run


def _check_owner(run: Run, actor: Actor) -> None:
    require(actor, "run.start")
    if run.created_by != actor.username and not can(actor, "run.write_any"):
        raise PermissionDenied(f"run {run.id} belongs to {run.created_by}; log to your own runs")


def create_run(
    db: Database, *, actor: Actor, use_case_id: int, name: str | None, tags: Mapping[str, str], user_id: str = ""
) -> RunPublic:
    """A run started by mlflow.start_run: "running", source "mlflow", in the use case of the MLflow experiment
    (and on the dataset version its `mlops.dataset` tag names, if any)."""
    require(actor, "run.start")
    get_use_case(db, use_case_id=int(use_case_id))  # NotFound with a sentence
    linked = dataset_for_tag(db, tags[DATASET_TAG]) if tags.get(DATASET_TAG) else None
    now = utcnow()
    with db.unit_of_work() as s:
        run = Run(
            name=(name or "")[:200],
            use_case_id=int(use_case_id),
            status="running",
            source="mlflow",
            created_by_id=actor.id,
            created_by=actor.username,
            started_at=now,
            dataset_version_id=linked.id if linked else None,
            dataset_hash=linked.content_hash if linked else "",
            code_version=str(tags.get("mlflow.source.git.commit", ""))[:64] or training.code_version(),
            tags={str(k): str(v) for k, v in tags.items()},
            progress_message="logging from MLflow",
            config={"mlflow": {"models": {}, "inputs": [], "outputs": []}},
        )
        s.add(run)
        s.flush()
        if not run.name:
            run.name = f"mlflow run {run.id}"
        run.tags = {**run.tags, "mlflow.runName": run.name}
        s.add(run)
        audit.record(
            s,
            actor=actor,
            action="run.start",
            entity_type="run",
            entity_id=run.id,
            summary=f"run {run.id} started from MLflow in use case {use_case_id}",
            after={
                "use_case_id": int(use_case_id),
                "source": "mlflow",
                "mlflow_user": user_id[:64],
                "dataset_version_id": linked.id if linked else None,
            },
        )
        experiments._note_experimentation(s, actor, int(use_case_id))
        s.flush()
        return experiments._public(run, {})


def rename_run(db: Database, *, actor: Actor, run_id: int, name: str) -> None:
    name = (name or "").strip()[:200]
    if not name:
        return
    with db.unit_of_work() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        before = run.name
        run.name = name
        run.tags = {**run.tags, "mlflow.runName": name}
        s.add(run)
        audit.record(
            s,
            actor=actor,
            action="run.rename",
            entity_type="run",
            entity_id=run.id,
            summary=f"run {run.id} renamed from MLflow",
            before={"name": before},
            after={"name": name},
        )


def log(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    params: Mapping[str, str] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """MLflow's log-batch semantics on top of experiments.log_batch: a param never changes value once
    logged; metric values are finite numbers; the metrics MLflow re-logs to link them to a logged model
    (the same key, step and value carrying a model_id) are not stored twice."""
    params = {str(k): str(v) for k, v in (params or {}).items()}
    tags = {str(k): str(v) for k, v in (tags or {}).items()}
    rows: list[tuple[str, float, int | None]] = []
    relinks: list[tuple[str, float, int]] = []
    for m in metrics or []:
        key, value = m.get("key"), m.get("value")
        if not isinstance(key, str) or not key:
            raise ValidationError("every metric needs a non-empty 'key'")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ValidationError(
                f"Metric '{key}' value {value!r} is not a finite number; log numbers only "
                "(MLOps Hub refuses NaN and infinity)"
            )
        try:
            step = int(m.get("step") or 0)
        except (TypeError, ValueError):
            raise ValidationError(f"Metric '{key}' step {m.get('step')!r} is not an integer") from None
        (relinks if m.get("model_id") else rows).append((key, float(value), step))
    with db.read() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        old = dict(run.params)
    for k, v in params.items():
        if k in old and str(old[k]) != v:
            raise ValidationError(
                f"Changing param values is not allowed. Param with key='{k}' was already logged with "
                f"value='{old[k]}' for run ID='{run_id}'. Attempted logging new value '{v}'."
            )
    if relinks:
        history = experiments.metric_history(db, int(run_id))
        seen = {(k, st, v) for k, hist in history.items() for st, v in hist}
        rows += [r for r in relinks if r not in seen]
    new_name = tags.get("mlflow.runName")
    linked = dataset_for_tag(db, tags[DATASET_TAG]) if tags.get(DATASET_TAG) else None  # refused before storing
    if params or rows or tags:
        experiments.log_batch(
            db, actor=actor, run_id=int(run_id), params=params or None, metrics=rows or None, tags=tags or None
        )
    if new_name:
        rename_run(db, actor=actor, run_id=run_id, name=new_name)
    if linked is not None:
        with db.unit_of_work() as s:
            _link_dataset(s, _run_row(s, run_id), linked, actor=actor, how=f"tag {DATASET_TAG}")


def end_run(db: Database, *, actor: Actor, run_id: int, mlflow_status: str) -> None:
    status = MLFLOW_STATUS.get((mlflow_status or "").upper())
    if status is None:
        raise ValidationError(f"unknown run status {mlflow_status!r}; use FINISHED, FAILED or KILLED")
    with db.read() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        current = run.status
    if status == "running" or current != "running":
        return  # MLflow sends RUNNING on resume and may end a run twice; both are no-ops here
    experiments.end_sdk_run(
        db,
        actor=actor,
        run_id=int(run_id),
        status=status,
        error="ended FAILED by the MLflow client" if status == "failed" else None,
    )


# --- MLflow metadata kept with the run --------------------------------------------------------------


def mlflow_meta(run: RunPublic) -> dict[str, Any]:
    meta = (run.config or {}).get("mlflow") or {}
    return {
        "models": dict(meta.get("models") or {}),
        "inputs": list(meta.get("inputs") or []),
        "outputs": list(meta.get("outputs") or []),
    }


def _update_meta(
    db: Database, *, actor: Actor, run_id: int, change, summary: str, own: bool = True, with_run: bool = False
) -> dict:
    with db.unit_of_work() as s:
        run = _run_row(s, run_id)
        if own:
            _check_owner(run, actor)
        config = dict(run.config or {})
        meta = dict(config.get("mlflow") or {"models": {}, "inputs": [], "outputs": []})
        result = change(meta, run, s) if with_run else change(meta)
        config["mlflow"] = meta
        run.config = config  # a new dict: the JSON column sees the change
        s.add(run)
        audit.record(s, actor=actor, action="run.mlflow", entity_type="run", entity_id=run.id, summary=summary)
        return result


def add_inputs(db: Database, *, actor: Actor, run_id: int, datasets: list, models: list) -> None:
    """Keep MLflow's dataset and model inputs with the run; the first input that names a Hub dataset version
    links a running run that has none yet (see the module docstring)."""
    match = next((v for v in (dataset_of_input(db, d) for d in datasets) if v is not None), None)

    def change(meta, run, s):
        inputs = list(meta.get("inputs") or [])
        if len(inputs) + len(datasets) > MAX_INPUTS:
            raise ValidationError(f"a run keeps at most {MAX_INPUTS} dataset inputs")
        meta["inputs"] = inputs + [d for d in datasets if isinstance(d, dict)]
        meta["model_inputs"] = list(meta.get("model_inputs") or []) + [m for m in models if isinstance(m, dict)]
        if match is not None and run.dataset_version_id is None and run.status == "running":
            _link_dataset(s, run, match, actor=actor, how="MLflow log-inputs")

    _update_meta(
        db,
        actor=actor,
        run_id=run_id,
        change=change,
        summary=f"run {run_id}: {len(datasets)} dataset inputs logged from MLflow",
        with_run=True,
    )


# --- dataset lineage ---------------------------------------------------------------------------------


def dataset_for_tag(db: Database, ref: str) -> DatasetVersionPublic:
    """The version an `mlops.dataset` tag names ("customers@v2"; "customers" = its newest version)."""
    try:
        return datasets.resolve_ref(db, str(ref))
    except (ValidationError, NotFound) as exc:
        raise type(exc)(f"tag {DATASET_TAG}={ref!r}: {exc}") from None


def _candidates(dataset: dict) -> list[str]:
    out = [str(dataset.get("name") or "")]
    source = dataset.get("source")
    try:
        parsed = json.loads(source) if isinstance(source, str) else source
    except ValueError:
        parsed = source
    if isinstance(parsed, dict):  # {"uri": ...} (local), {"url": ...} (http), {"path": ...}, ...
        out += [str(v) for v in parsed.values() if isinstance(v, str)]
    elif isinstance(parsed, str):
        out.append(parsed)
    return [c.strip() for c in out if c and c.strip()]


def dataset_of_input(db: Database, item: Any) -> DatasetVersionPublic | None:
    """The Hub dataset version one MLflow dataset input names, or None (not ours, or an evaluation set)."""
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
        return None
    tags = {str(t.get("key")): str(t.get("value")) for t in item.get("tags") or [] if isinstance(t, dict)}
    if tags.get("mlflow.data.context", "").strip().lower() in _EVAL_CONTEXTS:
        return None
    dataset = item["dataset"]
    for text in _candidates(dataset):
        ref = None
        if _VERSIONED_REF.match(text):
            ref = text
        elif m := _HUB_URL.search(text):
            ref = f"{unquote(m.group('name'))}@v{m.group('version')}"
        if ref:
            try:
                return datasets.resolve_ref(db, ref)
            except (ValidationError, NotFound):
                continue
    digest = str(dataset.get("digest") or "").strip().lower()
    if len(digest) >= _MIN_DIGEST and re.fullmatch(r"[0-9a-f]+", digest):
        with db.read() as s:
            rows = s.exec(
                select(DatasetVersion.id, Dataset.name, DatasetVersion.version)
                .join(Dataset, DatasetVersion.dataset_id == Dataset.id)
                .where(DatasetVersion.content_hash.startswith(digest))
                .limit(2)
            ).all()
        if len(rows) == 1:  # two datasets holding the same content: ambiguous, not linked
            return datasets.resolve_ref(db, f"{rows[0][1]}@v{rows[0][2]}")
    return None


def _link_dataset(s, run: Run, version: DatasetVersionPublic, *, actor: Actor, how: str) -> None:
    """Record `version` as the run's training data (in the caller's unit of work, audited)."""
    if run.dataset_version_id == version.id:
        return
    if run.status != "running":
        raise Conflict(f"run {run.id} is {run.status}; link its dataset while it runs (before mlflow.end_run)")
    before = run.dataset_version_id
    run.dataset_version_id = int(version.id)
    run.dataset_hash = version.content_hash
    s.add(run)
    audit.record(
        s,
        actor=actor,
        action="run.dataset",
        entity_type="run",
        entity_id=run.id,
        summary=f"run {run.id} trained on {version.ref} (from {how})",
        before={"dataset_version_id": before},
        after={"dataset_version_id": int(version.id), "dataset": version.ref},
    )


def add_outputs(db: Database, *, actor: Actor, run_id: int, models: list) -> None:
    def change(meta):
        meta["outputs"] = list(meta.get("outputs") or []) + [
            {"model_id": str(m.get("model_id", "")), "step": int(m.get("step") or 0)}
            for m in models
            if isinstance(m, dict)
        ]

    _update_meta(
        db,
        actor=actor,
        run_id=run_id,
        change=change,
        summary=f"run {run_id}: {len(models)} model outputs logged from MLflow",
    )


def run_of_model_id(model_id: str) -> int:
    """Logged model ids are m-<run id>-<random hex>: the run is found without a lookup table."""
    parts = (model_id or "").split("-")
    if len(parts) != 3 or parts[0] != "m" or not parts[1].isdigit():
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return int(parts[1])


def create_logged_model(
    db: Database,
    *,
    actor: Actor,
    run_id: int,
    name: str,
    model_type: str,
    params: Mapping[str, str],
    tags: Mapping[str, str],
) -> str:
    model_id = f"m-{int(run_id)}-{secrets.token_hex(8)}"
    now = int(utcnow().timestamp() * 1000)

    def change(meta):
        models = dict(meta.get("models") or {})
        if len(models) >= 100:
            raise ValidationError("a run keeps at most 100 logged models")
        models[model_id] = {
            "name": (name or "model")[:200],
            "model_type": (model_type or "")[:100],
            "status": "LOGGED_MODEL_PENDING",
            "created": now,
            "updated": now,
            "params": {str(k): str(v) for k, v in params.items()},
            "tags": {str(k): str(v) for k, v in tags.items()},
            "format": "",
        }
        meta["models"] = models

    _update_meta(
        db, actor=actor, run_id=run_id, change=change, summary=f"run {run_id}: MLflow logged model {model_id} created"
    )
    return model_id


def set_logged_model_tags(db: Database, *, actor: Actor, model_id: str, tags: Mapping[str, str]) -> None:
    run_id = run_of_model_id(model_id)

    def change(meta):
        m = (meta.get("models") or {}).get(model_id)
        if m is None:
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        m["tags"] = {**m.get("tags", {}), **{str(k): str(v) for k, v in tags.items()}}

    # Tags are set after the run ended (register_model records the versions): any role that may register.
    require(actor, "model.register")
    _update_meta(
        db,
        actor=actor,
        run_id=run_id,
        change=change,
        own=False,
        summary=f"run {run_id}: tags of MLflow logged model {model_id} set",
    )


def model_file_name(model_id: str, path: str) -> str:
    return f"{MODELS_PREFIX}{model_id}/{path}"


def record_file(
    db: Database, *, actor: Actor, run_id: int, name: str, key: str, size: int, media_type: str, kind: str = "file"
) -> None:
    """A file the MLflow artifact proxy stored under `key`: listed with the run (the run page shows it)."""
    with db.unit_of_work() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        art = s.exec(select(RunArtifact).where(RunArtifact.run_id == run.id, RunArtifact.name == name)).first()
        if art is None:
            art = RunArtifact(run_id=run.id, name=name, kind=kind, artifact_key=key)
        art.size_bytes, art.media_type, art.artifact_key = int(size), media_type[:100], key
        s.add(art)
        audit.record(
            s,
            actor=actor,
            action="run.artifact",
            entity_type="run",
            entity_id=run.id,
            summary=f"run {run.id}: {name} stored from MLflow ({size:,} bytes)",
        )


def check_upload(db: Database, *, actor: Actor, run_id: int) -> None:
    """Refuse an upload before its body is read: the caller must own the running run."""
    with db.read() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        if run.status != "running":
            raise ValidationError(f"run {run_id} is {run.status}; files are logged while the run is running")


def _signature_schema(mlmodel: dict) -> list[dict[str, str]] | None:
    """The Hub's input schema from an MLmodel signature (column specs), None when there is none."""
    raw = (mlmodel.get("signature") or {}).get("inputs")
    try:
        cols = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(cols, list) or not all(isinstance(c, dict) and c.get("name") for c in cols):
        return None
    kinds = {
        "double": "number",
        "float": "number",
        "long": "integer",
        "integer": "integer",
        "boolean": "boolean",
        "string": "string",
    }
    return [{"name": str(c["name"]), "type": kinds.get(str(c.get("type")), "string")} for c in cols]


def finalize_logged_model(db: Database, *, actor: Actor, model_id: str, status: str) -> None:
    """LOGGED_MODEL_READY: the logged model's sklearn file becomes the run's model. A skops file must pass
    the exact-type allow-list (refused by name otherwise, nothing changes); a pickle/cloudpickle file is
    kept and becomes the run's model too, but it is never loaded, so deploying it is refused with a
    sentence (ml.persistence.PICKLE_REFUSED)."""
    run_id = run_of_model_id(model_id)
    with db.read() as s:
        run = _run_row(s, run_id)
        _check_owner(run, actor)
        meta = ((run.config or {}).get("mlflow") or {}).get("models") or {}
        if model_id not in meta:
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        files = {
            a.name: a.artifact_key
            for a in s.exec(
                select(RunArtifact).where(RunArtifact.run_id == run.id, RunArtifact.kind == MODEL_FILE_KIND)
            ).all()
        }
    fmt, model_key, schema = "", None, None
    if status == "LOGGED_MODEL_READY":
        mlmodel_key = files.get(model_file_name(model_id, "MLmodel"))
        if mlmodel_key:
            try:
                mlmodel = yaml.safe_load(artifacts.get_bytes(mlmodel_key)) or {}
            except (yaml.YAMLError, FileNotFoundError):
                raise ValidationError(
                    "the logged model's MLmodel file is not valid YAML; log the model again"
                ) from None
            flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
            fmt = str(flavor.get("serialization_format") or "")
            model_key = files.get(model_file_name(model_id, str(flavor.get("pickled_model") or "")))
            schema = _signature_schema(mlmodel)
            if flavor and model_key is None:
                raise ValidationError(f"the logged model has no {flavor.get('pickled_model')!r} file; log it again")
            if fmt == "skops" and model_key:
                experiments.refuse_disallowed_model(
                    db, actor=actor, run_id=run_id, data=artifacts.get_bytes(model_key), what=f"MLflow model {model_id}"
                )
            elif model_key and fmt not in ("pickle", "cloudpickle"):
                raise ValidationError(f"unknown sklearn serialization_format {fmt!r}; use 'skops'")

    def change(m):
        entry = (m.get("models") or {}).get(model_id)
        entry["status"] = status or entry.get("status")
        entry["updated"] = int(utcnow().timestamp() * 1000)
        if fmt:
            entry["format"] = fmt

    _update_meta(
        db,
        actor=actor,
        run_id=run_id,
        change=change,
        summary=f"run {run_id}: MLflow logged model {model_id} is {status}",
    )
    if model_key:
        with db.unit_of_work() as s:
            row = _run_row(s, run_id)
            row.model_artifact_key = model_key
            if schema:
                row.input_schema = schema
            s.add(row)
            audit.record(
                s,
                actor=actor,
                action="run.log_model",
                entity_type="run",
                entity_id=run_id,
                summary=f"run {run_id}: MLflow model {model_id} ({fmt or 'unknown format'}) is the run's "
                "model" + ("; pickle: stored, never loaded or deployed" if fmt != "skops" else ""),
            )


def model_id_of_key(key: str | None) -> str | None:
    """The MLflow logged model id behind a model file key (runs/<run>/mlflow-models/<id>/<file>)."""
    parts = (key or "").split("/")
    if len(parts) >= 4 and parts[2] == MODELS_PREFIX.rstrip("/"):
        return parts[3]
    return None
