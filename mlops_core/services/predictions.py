"""The prediction log: batched writes from the scoring service, late labels, batch scoring.

- `PredictionWriter`: the scoring service puts rows on an in-process queue; a background thread
  writes them in one transaction every FLUSH_SECONDS or MAX_BATCH rows, so no request waits for a
  database commit. `close()` (clean shutdown) writes everything still queued: nothing is lost.
- Labels arrive later by request id (`/feedback`, or a CSV of request_id,label in the UI) and are
  joined to their predictions; unknown ids are reported one by one, the others are kept.
- Batch scoring: an uploaded file or a dataset version scored with a deployment's model in a job, streamed in
  bounded batches (on a Dask cluster when MLOPS_DASK_SCHEDULER is set), logged like API predictions.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

from sqlalchemy import bindparam, func, insert, update
from sqlmodel import col, select

from .. import artifacts, data_io
from ..db import Database, utcnow
from ..errors import NotFound, ValidationError
from ..jobs import queue
from ..ml.scoring import jsonable_scores, positive_index, predict_scored, score_arrow
from ..models.deployments import Prediction, PredictionPublic, ScoredRecordsPublic
from ..serving.schema import InputError, RecordValidator, to_jsonable
from . import audit, deployments, registry
from .auth import Actor, require

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
MAX_BATCH = 2000
MAX_LABELS = 10_000
_TABLE = Prediction.__table__


def log_predictions(db: Database, rows: list[dict[str, Any]]) -> int:
    """Insert prediction rows in one transaction (bulk); returns how many."""
    if not rows:
        return 0
    with db.unit_of_work() as s:
        s.execute(insert(_TABLE), rows)
    return len(rows)


def prediction_row(
    *,
    request_id: str,
    deployment_id: int,
    model_version_id: int | None,
    inputs: dict | None,
    prediction: Any,
    latency_ms: float,
    status: str = "ok",
    source: str = "api",
    error: str = "",
    shadow_model_version_id: int | None = None,
    shadow_prediction: Any = None,
    created_at=None,
    score: float | None = None,
) -> dict[str, Any]:
    """One row for `log_predictions` / `PredictionWriter.put` (all columns, so bulk inserts are uniform).
    `score`: a binary classifier's positive-class probability (see `predict_scored`), else None."""
    return {
        "request_id": request_id,
        "deployment_id": deployment_id,
        "model_version_id": model_version_id,
        "created_at": created_at or utcnow(),
        "source": source,
        "inputs": inputs,
        "prediction": prediction,
        "score": score,
        "shadow_model_version_id": shadow_model_version_id,
        "shadow_prediction": shadow_prediction,
        "latency_ms": float(latency_ms),
        "status": status,
        "error": error[:500],
        "label": None,
        "labelled_at": None,
    }


class PredictionWriter:
    """Batched, in-process writer of prediction rows (one per scoring process)."""

    def __init__(self, db: Database, *, flush_seconds: float = FLUSH_SECONDS, max_batch: int = MAX_BATCH):
        self.db = db
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self.written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
        self._thread.start()

    def put(self, rows: Iterable[dict[str, Any]]) -> None:
        """Queue rows (never blocks on the database)."""
        self._queue.extend(rows)
        if len(self._queue) >= self.max_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the rows stay queued and are retried
                self.failures += 1
                log.exception("writing the prediction log failed; will retry")
                time.sleep(min(5.0, 0.5 * self.failures))

    def flush(self) -> int:
        """Write everything queued now (in batches of max_batch); returns rows written."""
        written = 0
        with self._flush_lock:
            while self._queue:
                batch = []
                while self._queue and len(batch) < self.max_batch:
                    batch.append(self._queue.popleft())
                try:
                    log_predictions(self.db, batch)
                except Exception:
                    # Put them back in order; the next flush retries.
                    self._queue.extendleft(reversed(batch))
                    raise
                written += len(batch)
                self.written += len(batch)
                self.failures = 0
        return written

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and write what is left (clean shutdown loses nothing)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._queue:
            try:
                self.flush()
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    log.error("could not write %d prediction rows before shutdown", len(self._queue))
                    raise
                time.sleep(0.5)


# --- labels --------------------------------------------------------------------------------------


@dataclass
class LabelResult:
    """What became of a batch of labels: accepted ids, unknown ids, and entries that were malformed."""

    accepted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": len(self.accepted), "unknown_request_ids": self.unknown, "invalid": self.invalid}


def _clean_labels(labels: Any) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(labels, list):
        raise ValidationError('`labels` must be a list: {"labels": [{"request_id": "...", "label": ...}, ...]}')
    if not labels:
        raise ValidationError("`labels` is empty; send at least one {\"request_id\": ..., \"label\": ...}")
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS:,} labels per call; split the list")
    good: dict[str, Any] = {}
    invalid: list[str] = []
    for i, item in enumerate(labels):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            invalid.append(f"entry {i}: needs request_id and label")
            continue
        rid, label = item["request_id"], item["label"]
        if not isinstance(rid, str) or not rid or len(rid) > 64:
            invalid.append(f"entry {i}: request_id must be the text returned by /predict")
            continue
        if isinstance(label, (dict, list)):
            invalid.append(f"entry {i} ({rid}): label must be a single value")
            continue
        if isinstance(label, float) and label != label:
            invalid.append(f"entry {i} ({rid}): label is NaN")
            continue
        good[rid] = label
    return good, invalid


def apply_labels(db: Database, *, deployment_id: int, labels: Any) -> LabelResult:
    """Join ground-truth labels to logged predictions of one deployment, by request id.
    Unknown ids are reported per id; the others are kept (one transaction)."""
    good, invalid = _clean_labels(labels)
    result = LabelResult(invalid=invalid)
    if not good:
        return result
    ids = list(good)
    with db.unit_of_work() as s:
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(
                s.exec(
                    select(Prediction.request_id).where(
                        Prediction.deployment_id == deployment_id, col(Prediction.request_id).in_(chunk)
                    )
                ).all()
            )
        now = utcnow()
        params = [{"rid": rid, "dep": deployment_id, "lab": good[rid], "at": now} for rid in ids if rid in known]
        if params:
            stmt = (
                update(_TABLE)
                .where(_TABLE.c.request_id == bindparam("rid"), _TABLE.c.deployment_id == bindparam("dep"))
                .values(label=bindparam("lab"), labelled_at=bindparam("at"))
            )
            s.connection().execute(stmt, params)
        result.accepted = [rid for rid in ids if rid in known]
        result.unknown = [rid for rid in ids if rid not in known]
    return result


def label_predictions(db: Database, *, actor: Actor, deployment_name: str, labels: Any) -> LabelResult:
    """Labels entered by a person (UI); audited."""
    require(actor, "prediction.label")
    d = deployments.get_by_name(db, deployment_name)
    result = apply_labels(db, deployment_id=d.id, labels=labels)
    with db.unit_of_work() as s:
        audit.record(
            s,
            actor=actor,
            action="prediction.label",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"labelled {len(result.accepted)} predictions of {d.name} "
            f"({len(result.unknown)} unknown ids, {len(result.invalid)} invalid)",
            after={"accepted": len(result.accepted), "unknown": result.unknown[:20]},
        )
    return result


_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def _parse_label(text: str) -> Any:
    text = text.strip()
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_labels_csv(data: bytes) -> list[dict[str, Any]]:
    """A CSV with the columns request_id,label -> label entries (numbers parsed as numbers)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("the label file is not UTF-8 text; save it as a UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if "request_id" not in fields or "label" not in fields:
        raise ValidationError(
            f"the label file needs the columns request_id and label (it has: {', '.join(fields) or 'none'})"
        )
    reader.fieldnames = fields
    out = []
    for row in reader:
        rid = (row.get("request_id") or "").strip()
        label = row.get("label")
        if not rid and not (label or "").strip():
            continue
        out.append({"request_id": rid, "label": _parse_label(label or "")})
    if not out:
        raise ValidationError("the label file has no rows")
    return out


def upload_labels_csv(db: Database, *, actor: Actor, deployment_name: str, data: bytes) -> LabelResult:
    return label_predictions(db, actor=actor, deployment_name=deployment_name, labels=parse_labels_csv(data))


# --- reads ---------------------------------------------------------------------------------------


def recent_predictions(db: Database, *, deployment_name: str, limit: int = 50) -> list[PredictionPublic]:
    d = deployments.get_by_name(db, deployment_name)
    with db.read() as s:
        rows = s.exec(
            select(Prediction).where(Prediction.deployment_id == d.id).order_by(col(Prediction.id).desc()).limit(limit)
        ).all()
        return [PredictionPublic.model_validate(r, from_attributes=True) for r in rows]


def count_predictions(db: Database, *, deployment_id: int | None = None, status: str | None = None) -> int:

    with db.read() as s:
        q = select(func.count()).select_from(Prediction)
        if deployment_id is not None:
            q = q.where(Prediction.deployment_id == deployment_id)
        if status:
            q = q.where(Prediction.status == status)
        return int(s.exec(q).one())


# --- scoring (UI "try it" and batch) ------------------------------------------------------------


def _served_model(db: Database, deployment_name: str):

    d = deployments.get_by_name(db, deployment_name)
    if d.model_version_id is None:
        raise ValidationError(f"{deployment_name} serves no model version yet; deploy one first")
    mv = deployments._model_version(db, d.model_version_id)
    model = deployments.load_model(db, d.model_version_id)
    return d, model, RecordValidator(mv.get("input_schema") or [])


def _decision(db: Database, d, model) -> tuple[int | None, float | None]:
    """(positive index, decision threshold) as the scoring service uses them: the ML canvas's positive
    class and the served model version's stored threshold (issue 20)."""
    from . import canvas
    from . import value as value_service

    positive = positive_index(model, canvas.problem_settings(db, d.use_case_id)[1])
    threshold = value_service.threshold_for(db, d.model_version_id) if d.model_version_id is not None else None
    return positive, threshold


def score_records(
    db: Database, *, actor: Actor, deployment_name: str, records: list[dict[str, Any]]
) -> ScoredRecordsPublic:
    """Score records from the UI ("try it"), logged like API predictions (source "ui")."""
    require(actor, "batch.score")

    d, model, validator = _served_model(db, deployment_name)
    try:
        validator.check(records)
    except InputError as exc:
        raise ValidationError(str(exc)) from None
    t0 = time.perf_counter()
    positive, threshold = _decision(db, d, model)
    raw, raw_scores = predict_scored(model, validator.to_frame(records), positive, threshold)
    preds = to_jsonable(raw)
    scores = jsonable_scores(raw_scores, len(preds))
    latency = (time.perf_counter() - t0) * 1000
    rid = uuid.uuid4().hex
    ids = [rid] if len(records) == 1 else [f"{rid}.{i}" for i in range(len(records))]
    log_predictions(
        db,
        [
            prediction_row(
                request_id=i,
                deployment_id=d.id,
                model_version_id=d.model_version_id,
                inputs=r,
                prediction=p,
                latency_ms=latency / len(records),
                source="ui",
                score=sc,
            )
            for i, r, p, sc in zip(ids, records, preds, scores)
        ],
    )
    return ScoredRecordsPublic(
        predictions=preds,
        model_version_id=d.model_version_id,
        request_id=rid,
        scores=scores if raw_scores is not None else None,
    )


def score_frame(db: Database, *, deployment_name: str, frame, progress=None, chunk_rows: int = 5000):
    """Score a DataFrame with the deployment's model; every row is logged (source "batch").
    Returns the frame with `request_id` and `prediction` columns added (and `score`, the positive-class
    probability, for a binary classifier)."""
    import numpy as np  # numpy/pandas only where records are scored or files read, not at import

    d, model, validator = _served_model(db, deployment_name)
    try:
        X = validator.frame_to_model_input(frame)
    except InputError as exc:
        raise ValidationError(str(exc)) from None
    batch_id = uuid.uuid4().hex
    positive, threshold = _decision(db, d, model)
    preds: list[Any] = []
    scores: list[float | None] = []
    ids: list[str] = []
    n = len(X)
    raw = frame[validator.names]
    for start in range(0, max(n, 1), chunk_rows):
        part = X.iloc[start : start + chunk_rows]
        if part.empty:
            break
        t0 = time.perf_counter()
        raw_out, raw_scores = predict_scored(model, part, positive, threshold)
        out = to_jsonable(raw_out)
        out_scores = jsonable_scores(raw_scores, len(out))
        per_row = (time.perf_counter() - t0) * 1000 / len(part)
        rows = []
        inputs = raw.iloc[start : start + chunk_rows].replace({np.nan: None}).to_dict(orient="records")
        for i, (rec, p, sc) in enumerate(zip(inputs, out, out_scores)):
            rid = f"{batch_id}.{start + i}"
            ids.append(rid)
            rows.append(
                prediction_row(
                    request_id=rid,
                    deployment_id=d.id,
                    model_version_id=d.model_version_id,
                    inputs=_jsonable_record(rec),
                    prediction=p,
                    latency_ms=per_row,
                    source="batch",
                    score=sc,
                )
            )
        log_predictions(db, rows)
        preds.extend(out)
        scores.extend(out_scores)
        if progress is not None:
            progress(min(1.0, (start + len(part)) / n), f"scored {start + len(part):,} of {n:,} rows")
    result = frame.copy()
    result["request_id"] = ids
    result["prediction"] = preds
    if positive is not None:
        result["score" if "score" not in result.columns else "prediction_score"] = scores
    return result


def _jsonable_record(rec: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in rec.items():
        item = getattr(v, "item", None)
        out[str(k)] = item() if item is not None and not isinstance(v, (str, bytes)) else v
    return out


def _check_upload(name: str, size: int) -> None:
    if not name.endswith((".csv", ".parquet")):
        raise ValidationError("upload a .csv or .parquet file")
    if not size:
        raise ValidationError("the uploaded file is empty")


def _check_parquet_upload(source: Any, filename: str) -> None:
    """A Parquet upload's footer against the dataset limits (issue 12), before any row is read or a job queued."""
    import pyarrow as pa  # pyarrow only where a file is read
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(
            f"{filename} could not be read as Parquet ({str(exc).splitlines()[0]}); export it again"
        ) from None
    data_io.check_parquet_footer(pf)


def submit_batch_scoring(
    db: Database, *, actor: Actor, deployment_name: str, filename: str, data: bytes | IO[bytes]
) -> int:
    """Store an uploaded CSV/Parquet file and enqueue a job that scores it (pages never score inline).
    `data`: the bytes, or a file object (copied to the store in chunks). The upload limits apply here: the size
    (MLOPS_MAX_UPLOAD_MB) and a Parquet footer's rows, columns and expanded size (MLOPS_MAX_DATASET_*), so a
    file that claims 2 billion rows is refused before a job is queued. Returns the job id; the job's result names
    the artifacts with the scored file (CSV `output_key`, Parquet `parquet_key`)."""
    require(actor, "batch.score")

    d = deployments.get_by_name(db, deployment_name)
    if d.model_version_id is None:
        raise ValidationError(f"{deployment_name} serves no model version yet; deploy one first")
    name = (filename or "upload.csv").lower()
    is_parquet = name.endswith(".parquet")
    key = f"batch_scoring/{uuid.uuid4().hex}/input{'.parquet' if is_parquet else '.csv'}"
    if isinstance(data, (bytes, bytearray)):
        _check_upload(name, len(data))
        limit = data_io.max_upload_bytes()
        if len(data) > limit:
            raise data_io._too_big(len(data), limit)
        if is_parquet:
            _check_parquet_upload(io.BytesIO(data), filename)
        artifacts.put_bytes(key, bytes(data))
        size = len(data)
    else:
        _check_upload(name, 1)
        staged = data_io.stage_upload(data, filename)  # refused as soon as it passes the size limit
        try:
            size = staged.stat().st_size
            _check_upload(name, size)
            if is_parquet:
                _check_parquet_upload(staged, filename)
            artifacts.put_file(key, staged)
        finally:
            staged.unlink(missing_ok=True)
    with db.unit_of_work() as s:
        job_id = queue.enqueue(
            s,
            kind="batch_score",
            payload={"deployment": deployment_name, "input_key": key, "filename": filename, "actor": actor.username},
        )
        audit.record(
            s,
            actor=actor,
            action="batch.score",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"batch scoring of {filename} on {deployment_name} queued (job {job_id})",
            after={"job_id": job_id, "bytes": size},
        )
    return job_id


def submit_dataset_scoring(db: Database, *, actor: Actor, deployment_name: str, dataset_ref: str | int) -> int:
    """Enqueue a job that scores a registered dataset version (`customers@v3`, or its id) with a deployment's
    model, streamed from its stored Parquet file like an upload. Returns the job id."""
    require(actor, "batch.score")
    from . import datasets

    d = deployments.get_by_name(db, deployment_name)
    if d.model_version_id is None:
        raise ValidationError(f"{deployment_name} serves no model version yet; deploy one first")
    v = (
        datasets.get_version(db, int(dataset_ref))
        if isinstance(dataset_ref, int) or str(dataset_ref).isdigit()
        else datasets.resolve_ref(db, str(dataset_ref))
    )
    out_dir = f"batch_scoring/{uuid.uuid4().hex}"
    with db.unit_of_work() as s:
        job_id = queue.enqueue(
            s,
            kind="batch_score",
            payload={
                "deployment": deployment_name,
                "dataset_version_id": v.id,
                "output_dir": out_dir,
                "filename": v.ref,
                "actor": actor.username,
            },
        )
        audit.record(
            s,
            actor=actor,
            action="batch.score",
            entity_type="deployment",
            entity_id=d.id,
            summary=f"batch scoring of {v.ref} ({v.n_rows:,} rows) on {deployment_name} queued (job {job_id})",
            after={"job_id": job_id, "dataset_version_id": v.id},
        )
    return job_id


def read_upload(data: bytes, filename: str):
    """A whole uploaded file as a DataFrame (small files only: batch scoring streams, see `batch_score_job`)."""
    import pandas as pd  # pandas only where a file is read, not at import

    try:
        if filename.lower().endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a file we cannot parse is the user's to fix
        raise ValidationError(f"cannot read {filename}: {exc}") from None


# --- streamed batch scoring (issue 16, point 2) --------------------------------------------------------
#
# The job never holds the file: an upload is first streamed into canonical Parquet (data_io.convert_file: the
# row, column and size limits apply while reading) and stored beside it; a dataset version already is one. The
# Parquet file is then read in batches of MLOPS_STREAM_BATCH_ROWS rows; each batch is scored, logged (prediction
# log, in chunks of LOG_CHUNK rows) and appended to the scored Parquet (one row group per batch) and CSV files,
# which enter the artifact store whole at the end. With MLOPS_DASK_SCHEDULER set the row-group partitions are
# scored on the Dask cluster (ml/dask_exec.map_partitions) and written here in file order, the same way.

LOG_CHUNK = 5000
_RESERVED = ("request_id", "prediction")


def _numeric_problem(validator: RecordValidator, name: str, column, first_row: int) -> str | None:
    """The validator's own words for a column the model needs as numbers, with the row numbered in the file."""
    try:
        one = RecordValidator([{"name": name, "type": "number"}], max_string_length=validator.max_string_length)
        one.frame_to_model_input(column.to_pandas().to_frame(name))
    except InputError as exc:
        return re.sub(r"in row (\d+)", lambda m: f"in row {first_row + int(m.group(1)) + 1:,} of the file", str(exc))
    return None


def _precheck(pf, validator: RecordValidator, batch_rows: int, progress) -> None:
    """Refuse the file before any row is scored or logged: missing model columns (from the schema), and values
    the model cannot take in the columns it needs as numbers (only those columns are read; integer and boolean
    columns need no pass). The same refusals as whole-file scoring, so nothing is half logged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = pf.schema_arrow
    missing = [n for n in validator.names if n not in schema.names]
    if missing:
        raise ValidationError(
            f"missing columns: {', '.join(missing)}; the model was trained on: {validator.trained_on}"
        )
    check = [
        n
        for n in validator.names
        if validator.types[n] in ("number", "integer")
        and not (pa.types.is_integer(schema.field(n).type) or pa.types.is_boolean(schema.field(n).type))
    ]
    if not check:
        return
    progress(0.0, f"checking {', '.join(check)} before scoring")
    first = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=check, use_threads=False):
        for name in check:
            column = batch.column(name)
            if pa.types.is_floating(column.type):
                if pc.any(pc.is_inf(column)).as_py():
                    raise ValidationError(f"column `{name}` contains infinite values; remove or blank them")
            elif problem := _numeric_problem(validator, name, column, first):
                raise ValidationError(problem)
        first += batch.num_rows


def _input_records(batch) -> list[dict[str, Any]]:
    """The model's input columns of a batch as JSON-ready records (NaN and nulls -> None; dates as text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in batch.columns:
        t = column.type
        if pa.types.is_floating(t) and column.null_count < len(column):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, t), column)
        elif pa.types.is_temporal(t):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist()


class _ScoredSink:
    """Where scored batches go, in file order: the prediction log, a Parquet file and a CSV file (local paths)."""

    def __init__(self, db: Database, *, deployment, validator: RecordValidator, positive, parquet_path, csv_path):
        self.db = db
        self.deployment = deployment
        self.validator = validator
        self.with_score = positive is not None
        self.batch_id = uuid.uuid4().hex
        self.parquet_path, self.csv_path = parquet_path, csv_path
        self._parquet = None
        self._csv = None
        self._schema = None
        self.rows = 0
        self.batches = 0

    def _table(self, batch, ids: list[str], preds: list[Any], scores: list[float | None]):
        import pyarrow as pa

        score_name = "prediction_score" if "score" in batch.schema.names else "score"
        keep = [n for n in batch.schema.names if n not in _RESERVED and n != (score_name if self.with_score else "")]
        arrays = [batch.column(n) for n in keep] + [pa.array(ids, pa.string())]
        names = [*keep, "request_id", "prediction"]
        prediction_type = self._schema.field("prediction").type if self._schema is not None else None
        arrays.append(pa.array(preds, type=prediction_type))
        if self.with_score:
            arrays.append(pa.array(scores, pa.float64()))
            names.append(score_name)
        table = pa.Table.from_arrays(arrays, names=names)
        if self._schema is None:
            self._schema = table.schema
        return table.cast(self._schema)

    def write(self, batch, first_row: int, raw_preds, raw_scores, seconds: float) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = batch.num_rows
        if n == 0:
            return
        if first_row != self.rows:
            raise RuntimeError(f"batch scoring wrote rows out of order (row {first_row}, expected {self.rows})")
        preds = to_jsonable(raw_preds)
        scores = jsonable_scores(raw_scores, n)
        ids = [f"{self.batch_id}.{first_row + i}" for i in range(n)]
        per_row = seconds * 1000 / n
        d = self.deployment
        inputs = batch.select(self.validator.names)
        for start in range(0, n, LOG_CHUNK):
            records = _input_records(inputs.slice(start, LOG_CHUNK))
            log_predictions(
                self.db,
                [
                    prediction_row(
                        request_id=ids[start + i],
                        deployment_id=d.id,
                        model_version_id=d.model_version_id,
                        inputs=rec,
                        prediction=preds[start + i],
                        latency_ms=per_row,
                        source="batch",
                        score=scores[start + i],
                    )
                    for i, rec in enumerate(records)
                ],
            )
        table = self._table(batch, ids, preds, scores)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.parquet_path, table.schema, compression="zstd")
            self._csv = open(self.csv_path, "wb")  # noqa: SIM115 - closed in close()
        self._parquet.write_table(table)
        # Integers with gaps stay integers in the CSV (1, not 1.0), whichever batch the gaps fall in.
        frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get)
        self._csv.write(data_io.to_safe_csv(frame, header=self.batches == 0))
        self.rows += n
        self.batches += 1

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._csv.close()
            self._parquet = self._csv = None

    def abort(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - the files are discarded anyway
            pass


def _worker_location(key: str) -> str:
    """Where a Dask worker reads an artifact: the same path in a shared artifact folder, or the store's URL."""
    root = artifacts.root()
    return str(root / key) if isinstance(root, Path) else f"{str(root).rstrip('/')}/{key}"


def _score_locally(pf, sink: _ScoredSink, model, validator, positive, threshold, batch_rows: int, progress, ctx):
    done, total = 0, max(1, pf.metadata.num_rows)
    for batch in pf.iter_batches(batch_size=batch_rows, use_threads=False):
        ctx.check_cancelled()
        t0 = time.perf_counter()
        preds, scores = score_arrow(
            model, batch.select(validator.names), validator.frame_to_model_input, positive, threshold
        )
        sink.write(batch, done, preds, scores, time.perf_counter() - t0)
        done += batch.num_rows
        progress(done / total, f"scored {done:,} of {total:,} rows (batch {sink.batches})")
    return {"executor": "local"}


def _score_on_dask(
    address: str, pf, data_key: str, mv, sink: _ScoredSink, validator, positive, threshold, batch_rows, progress, ctx
):
    import hashlib

    from ..ml import dask_exec

    md = pf.metadata
    parts = dask_exec.plan_partitions([md.row_group(i).num_rows for i in range(md.num_row_groups)], batch_rows)
    task = dask_exec.ScoringTask(
        data_location=_worker_location(data_key),
        model_location=_worker_location(mv.artifact_key),
        model_sha256=hashlib.sha256(artifacts.get_bytes(mv.artifact_key)).hexdigest(),
        columns=tuple(validator.names),
        to_model_input=validator.frame_to_model_input,
        positive=positive,
        threshold=threshold,
        batch_rows=batch_rows,
    )
    run = dask_exec.ClusterRun(scheduler=address, n_workers=0)
    total = max(1, md.num_rows)
    progress(0.0, f"connecting to the Dask scheduler at {address}")
    for res in dask_exec.map_partitions(
        address, task, parts, on_done=lambda k, n: None, check_cancelled=ctx.check_cancelled, run=run
    ):
        part = parts[res["index"]]
        preds, scores, offset = res["predictions"], res["scores"], 0
        # The scored rows are written here, partition after partition: read the partition's rows again.
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=list(part.row_groups), use_threads=False):
            k = batch.num_rows
            sink.write(
                batch,
                part.first_row + offset,
                preds[offset : offset + k],
                None if scores is None else scores[offset : offset + k],
                res["seconds"] * k / max(1, part.n_rows),
            )
            offset += k
        progress(
            sink.rows / total,
            f"scored {sink.rows:,} of {total:,} rows on Dask ({part.index + 1} of {len(parts)} partitions)",
        )
    return {
        "executor": "dask",
        "dask_scheduler": run.scheduler,
        "dask_workers": run.n_workers,
        "dask_workers_lost": run.workers_lost,
        "partitions": len(parts),
    }


def _canonical_input(p: dict[str, Any], progress) -> str:
    """An upload streamed into canonical Parquet (limits checked while reading), stored beside it; its key."""
    src = artifacts.path(p["input_key"])
    if not src.exists():
        raise NotFound(f"the uploaded file is missing from the artifact store ({p['input_key']})")
    converted = data_io.convert_file(src, p.get("filename", "input.csv"), progress=progress)
    key = p["input_key"].rsplit("/", 1)[0] + "/canonical.parquet"
    try:
        artifacts.put_file(key, converted.path)
    finally:
        converted.path.unlink(missing_ok=True)
    return key


def batch_score_job(ctx) -> dict[str, Any]:
    """Job handler "batch_score": stream an upload or a dataset version through the deployment's model, batch by
    batch, writing the scored Parquet and CSV and the prediction log as it goes (memory bounded by the batch)."""
    import pyarrow.parquet as pq  # pyarrow only where a file is read

    from ..config import get_settings
    from . import datasets

    p = ctx.payload
    db = ctx.db
    settings = get_settings()
    batch_rows = max(1, int(settings.stream_batch_rows))
    d, model, validator = _served_model(db, p["deployment"])
    positive, threshold = _decision(db, d, model)
    if p.get("dataset_version_id"):
        v = datasets.get_version(db, int(p["dataset_version_id"]))
        data_key, out_dir = v.artifact_key, p["output_dir"]
    else:
        ctx.progress(0.01, "reading the file")
        data_key = _canonical_input(p, lambda f, m: ctx.progress(0.01 + 0.09 * f, m))
        out_dir = p["input_key"].rsplit("/", 1)[0]
    path = artifacts.path(data_key)
    if not path.exists():
        raise NotFound(f"the data to score is missing from the artifact store ({data_key})")
    pf = pq.ParquetFile(path)
    data_io.check_parquet_footer(pf)  # a stored version is held to today's limits too
    _precheck(pf, validator, batch_rows, lambda f, m: ctx.progress(0.1, m))

    def progress(fraction: float, message: str) -> None:
        ctx.progress(0.12 + 0.86 * min(1.0, fraction), message)

    out_key, parquet_key = f"{out_dir}/scored.csv", f"{out_dir}/scored.parquet"
    started = time.perf_counter()
    with artifacts.open_for_write(parquet_key) as parquet_tmp, artifacts.open_for_write(out_key) as csv_tmp:
        sink = _ScoredSink(
            db, deployment=d, validator=validator, positive=positive, parquet_path=parquet_tmp, csv_path=csv_tmp
        )
        try:
            if settings.dask_scheduler:
                where = _score_on_dask(
                    settings.dask_scheduler,
                    pf,
                    data_key,
                    registry.get_model_version(db, d.model_version_id),
                    sink,
                    validator,
                    positive,
                    threshold,
                    batch_rows,
                    progress,
                    ctx,
                )
            else:
                where = _score_locally(pf, sink, model, validator, positive, threshold, batch_rows, progress, ctx)
        except InputError as exc:
            sink.abort()
            raise ValidationError(str(exc)) from None
        except BaseException:
            sink.abort()
            raise
        sink.close()
    seconds = time.perf_counter() - started
    ctx.progress(1.0, f"scored {sink.rows:,} rows in {sink.batches:,} batches")
    return {
        "rows": sink.rows,
        "output_key": out_key,
        "parquet_key": parquet_key,
        "deployment": p["deployment"],
        "source": p.get("filename", ""),
        "batches": sink.batches,
        "batch_rows": batch_rows,
        "seconds": round(seconds, 3),
        **where,
    }
