"""The prediction log: batched writes from the scoring service, late labels, batch scoring.

- `PredictionWriter`: the scoring service puts rows on an in-process queue; a background thread
  writes them in one transaction every FLUSH_SECONDS or MAX_BATCH rows, so no request waits for a
  database commit. `close()` (clean shutdown) writes everything still queued: nothing is lost.
- Labels arrive later by request id (`/feedback`, or a CSV of request_id,label in the UI) and are
  joined to their predictions; unknown ids are reported one by one, the others are kept.
- Batch scoring: a file scored with a deployment's model in a job, logged like API predictions.
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
from typing import Any, Iterable

from sqlalchemy import bindparam, func, insert, update
from sqlmodel import col, select

from .. import artifacts
from ..data_io import to_safe_csv
from ..db import Database, utcnow
from ..errors import DomainError, ValidationError
from ..jobs import queue
from ..ml.scoring import jsonable_scores, positive_index, predict_scored
from ..models.deployments import Prediction, PredictionPublic, ScoredRecordsPublic
from ..serving.schema import InputError, RecordValidator, to_jsonable
from . import audit, deployments
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


def submit_batch_scoring(db: Database, *, actor: Actor, deployment_name: str, filename: str, data: bytes) -> int:
    """Store an uploaded CSV/Parquet file and enqueue a job that scores it (pages never score inline).
    Returns the job id; the job's result names the artifact with the scored file."""
    require(actor, "batch.score")

    d = deployments.get_by_name(db, deployment_name)
    if d.model_version_id is None:
        raise ValidationError(f"{deployment_name} serves no model version yet; deploy one first")
    name = (filename or "upload.csv").lower()
    if not name.endswith((".csv", ".parquet")):
        raise ValidationError("upload a .csv or .parquet file")
    if not data:
        raise ValidationError("the uploaded file is empty")
    key = f"batch_scoring/{uuid.uuid4().hex}/input{'.parquet' if name.endswith('.parquet') else '.csv'}"
    artifacts.put_bytes(key, data)
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
            after={"job_id": job_id, "bytes": len(data)},
        )
    return job_id


def read_upload(data: bytes, filename: str):
    import pandas as pd  # pandas only where a file is read, not at import

    try:
        if filename.lower().endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a file we cannot parse is the user's to fix
        raise ValidationError(f"cannot read {filename}: {exc}") from None


def batch_score_job(ctx) -> dict[str, Any]:
    """Job handler "batch_score": read the stored upload, score it, store the scored CSV."""

    p = ctx.payload
    ctx.progress(0.02, "reading the file")
    frame = read_upload(artifacts.get_bytes(p["input_key"]), p.get("filename", "input.csv"))
    try:
        result = score_frame(
            ctx.db, deployment_name=p["deployment"], frame=frame, progress=lambda f, m: ctx.progress(0.05 + 0.9 * f, m)
        )
    except DomainError:
        raise

    # A downloaded CSV must not run formulas in a spreadsheet: cells and column names (the input's own) alike.
    out_key = p["input_key"].rsplit("/", 1)[0] + "/scored.csv"
    artifacts.put_bytes(out_key, to_safe_csv(result))
    ctx.progress(1.0, f"scored {len(result):,} rows")
    return {"rows": len(result), "output_key": out_key, "deployment": p["deployment"]}
