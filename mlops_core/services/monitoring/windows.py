"""The window of logged predictions a check looks at, read straight from SQL.

Health figures (volume, error rate, latency percentiles), labelled rows, the window's inputs as a
DataFrame, and the training reference they are compared with. Reads only: no writes, no alerts.
Everything is aggregated in SQL or streamed through Core/the driver's cursor into numpy: on a million
rows the per-row cost of ORM objects would dominate the check.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from ... import artifacts
from ...db import Database
from ...errors import ValidationError
from ...models.deployments import Prediction
from ...models.experiments import ModelVersion
from ...models.monitoring import HealthFiguresPublic
from ...monitoring.figures import finite, prediction_value
from .. import datasets, registry
from .._common import aware, get_or_404

log = logging.getLogger(__name__)


@dataclass
class Window:
    """A span of logged predictions: from `start` (None: since the first) to `end`, both included."""

    start: datetime | None
    end: datetime


def window_bounds(s: Session, *, deployment_id: int, kind: str, size: int, as_of: datetime) -> Window:
    """The time span of the window ending at `as_of`: the last `size` predictions or hours."""
    if kind == "last_hours":
        return Window(start=as_of - timedelta(hours=int(size)), end=as_of)
    nth = s.exec(
        select(Prediction.created_at)
        .where(Prediction.deployment_id == deployment_id, Prediction.created_at <= as_of)
        .order_by(col(Prediction.created_at).desc())
        .offset(int(size) - 1)
        .limit(1)
    ).first()
    return Window(start=aware(nth), end=as_of)


def _window_conds(deployment_id: int, window: Window):
    conds = [Prediction.deployment_id == deployment_id, Prediction.created_at <= window.end]
    if window.start is not None:
        conds.append(Prediction.created_at >= window.start)
    return conds


# Stands for a logged JSON text that cannot be decoded (see _loads_many).
UNREADABLE = object()


def _loads_many(texts: list[str | None], empty: str = "null") -> tuple[list[Any], int]:
    """Decode many JSON texts at once (one parse of a joined array is much faster than one per row).

    Returns (values, number unreadable). A text orjson refuses (a lone surrogate such as "\\ud800", logged
    before the API refused them, or any damage) becomes UNREADABLE instead of failing the whole batch: one
    bad row once stopped every later check of its deployment. Callers skip those rows and say so."""
    joined = "[" + ",".join(t if t is not None else empty for t in texts) + "]"
    try:
        return orjson.loads(joined), 0
    except orjson.JSONDecodeError:
        pass
    out: list[Any] = []
    bad = 0
    for t in texts:
        try:
            out.append(orjson.loads(t if t is not None else empty))
        except orjson.JSONDecodeError:
            out.append(UNREADABLE)
            bad += 1
    if bad:
        log.warning("%d logged prediction row(s) are not valid JSON and were skipped", bad)
    return out, bad


def _sqlite_latencies(conn, deployment_id: int, window: Window):
    """The window's latencies as a numpy array, read with the driver's cursor: for a million rows the
    per-row cost of SQLAlchemy's result objects would dominate the whole health check. Fetched in chunks
    into one float array (8 bytes a row): 10 million rows as Python tuples would take about a gigabyte."""
    to_db = conn.dialect.type_descriptor(sa.DateTime()).bind_processor(conn.dialect) or (lambda v: v)
    sql = "SELECT latency_ms FROM predictions WHERE deployment_id = ? AND created_at <= ?"
    params: list[Any] = [deployment_id, to_db(window.end)]
    if window.start is not None:
        sql += " AND created_at >= ?"
        params.append(to_db(window.start))
    cur = conn.connection.driver_connection.cursor()
    chunks: list[np.ndarray] = []
    try:
        cur.execute(sql, params)
        while rows := cur.fetchmany(262_144):
            chunks.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=len(rows)))
    finally:
        cur.close()
    return np.concatenate(chunks) if chunks else np.empty(0)


# A request refused as the client's mistake: its logged error starts "4xx: " (as dashboards.CLIENT_ERROR).
CLIENT_ERROR = "4__:%"


def health_figures(s: Session, *, deployment_id: int, window: Window) -> HealthFiguresPublic:
    """Volume, error rate (server-side failures only; 4xx client errors counted apart) and latency
    percentiles of one window.

    Postgres aggregates everything in SQL (percentile_cont). SQLite has no percentile function: it
    streams the two small columns of the window (status flag, latency) through Core — not the ORM —
    into numpy, which interpolates percentiles the same way as percentile_cont.
    """
    conds = _window_conds(deployment_id, window)
    conn = s.connection()
    first, last = conn.execute(
        select(func.min(Prediction.created_at), func.max(Prediction.created_at)).where(*conds)
    ).one()
    postgres = conn.dialect.name == "postgresql"
    # The scoring service logs a refused request with its HTTP status first ("401: ..."): 4xx is the client's
    # mistake, so the error rate (and its alert) counts only the service's failures; 4xx are counted apart.
    is_client = sa.and_(Prediction.status != "ok", Prediction.error.like(CLIENT_ERROR))
    figures = [
        func.count(),
        func.sum(sa.case((sa.and_(Prediction.status != "ok", sa.not_(is_client)), 1), else_=0)),
        func.avg(Prediction.latency_ms),
        func.sum(sa.case((is_client, 1), else_=0)),
    ]
    if postgres:  # percentiles in SQL; SQLite has no percentile_cont, so they are computed below
        figures += [sa.func.percentile_cont(q).within_group(Prediction.latency_ms) for q in (0.5, 0.95, 0.99)]
    row = conn.execute(select(*figures).where(*conds)).one()
    n, n_err, mean_lat, n_client = int(row[0] or 0), int(row[1] or 0), finite(row[2]), int(row[3] or 0)
    p50 = p95 = p99 = None
    if postgres:
        p50, p95, p99 = finite(row[4]), finite(row[5]), finite(row[6])
    elif n:
        lat = _sqlite_latencies(conn, deployment_id, window)
        p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
    first, last = aware(first), aware(last)
    span_h = ((last - first).total_seconds() / 3600.0) if (first and last and last > first) else None
    return HealthFiguresPublic(
        **{
            "volume": n,
            "errors": n_err,
            "error_rate": (n_err / n) if n else None,
            "client_errors": n_client,
            "client_error_rate": (n_client / n) if n else None,
            "latency_mean_ms": mean_lat,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "first_at": first.isoformat() if first else None,
            "last_at": last.isoformat() if last else None,
            "per_hour": (n / span_h) if span_h else None,
        }
    )


def _delay_seconds(dialect: str):
    if dialect == "postgresql":
        return sa.func.extract("epoch", Prediction.labelled_at - Prediction.created_at)
    return (sa.func.julianday(Prediction.labelled_at) - sa.func.julianday(Prediction.created_at)) * 86400.0


def _labelled_rows(s: Session, deployment_id: int, window: Window) -> tuple[int, list[tuple[Any, Any, float]], int]:
    """(number of ok predictions in the window, [(prediction, label, delay seconds)] of those whose label
    had arrived by the end of the window, number of labelled rows skipped as unreadable JSON).
    JSON comes back as text and is decoded in one go. A prediction
    logged with a score (a binary classifier's positive-class probability) comes as
    {"prediction": value, "score": probability}, which `performance_metrics` turns into roc_auc."""
    conds = _window_conds(deployment_id, window) + [Prediction.status == "ok"]
    conn = s.connection()
    n_ok = int(conn.execute(select(func.count()).select_from(Prediction).where(*conds)).scalar() or 0)
    rows = conn.execute(
        select(
            sa.cast(Prediction.prediction, sa.Text),
            sa.cast(Prediction.label, sa.Text),
            _delay_seconds(conn.dialect.name),
            Prediction.score,
        ).where(*conds, col(Prediction.labelled_at).is_not(None), Prediction.labelled_at <= window.end)
    ).all()
    if not rows:
        return n_ok, [], 0
    preds, bad_p = _loads_many([r[0] for r in rows])
    labels, bad_l = _loads_many([r[1] for r in rows])
    out = [
        (p if r[3] is None else {"prediction": p, "score": r[3]}, lab, float(r[2] or 0.0))
        for p, lab, r in zip(preds, labels, rows)
        if lab is not None and p is not UNREADABLE and lab is not UNREADABLE
    ]
    skipped = sum(1 for p, lab in zip(preds, labels) if p is UNREADABLE or lab is UNREADABLE) if bad_p or bad_l else 0
    return n_ok, out, skipped


def load_window_frame(s: Session, *, deployment_id: int, window: Window, columns: list[str] | None = None):
    """The window's logged inputs (ok rows) as a DataFrame, plus a "__prediction__" column.

    The JSON text is read without per-row decoding and parsed in one go: on 100k rows this is
    several times faster than letting the driver decode each row. Rows whose JSON cannot be decoded are
    left out; their number is in ``frame.attrs["unreadable_rows"]``.
    """
    conds = _window_conds(deployment_id, window) + [Prediction.status == "ok"]
    rows = (
        s.connection()
        .execute(select(sa.cast(Prediction.inputs, sa.Text), sa.cast(Prediction.prediction, sa.Text)).where(*conds))
        .all()
    )
    if not rows:
        return pd.DataFrame(columns=(columns or []) + ["__prediction__"])
    inputs, bad_i = _loads_many([r[0] for r in rows], empty="{}")
    preds, bad_p = _loads_many([r[1] for r in rows])
    skipped = 0
    if bad_i or bad_p:
        keep = [i is not UNREADABLE and p is not UNREADABLE and isinstance(i, dict) for i, p in zip(inputs, preds)]
        skipped = keep.count(False)
        inputs = [i for i, k in zip(inputs, keep) if k]
        preds = [p for p, k in zip(preds, keep) if k]
    frame = pd.DataFrame.from_records(inputs, columns=columns)
    frame["__prediction__"] = [prediction_value(p) for p in preds]
    frame.attrs["unreadable_rows"] = skipped
    return frame


_REFERENCE_CACHE: dict[tuple[str, str, int, int], Any] = {}


def reference_frame(db: Database, *, model_version_id: int):
    """(training frame restricted to the model's inputs, reference predictions or None, dataset version id).

    Cached per process: dataset versions and model versions are immutable.
    """
    with db.read() as s:
        mv = get_or_404(s, ModelVersion, model_version_id, "model version")
        dataset_version_id = mv.dataset_version_id
        schema = list(mv.input_schema or [])
    # Ids repeat across workspaces (databases) served by one process: key by database and store too.
    key = (db.url, artifacts.store_id(), model_version_id, dataset_version_id or 0)
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    if dataset_version_id is None:
        raise ValidationError(
            f"model version {model_version_id} has no training dataset version, so there is "
            "nothing to compare live inputs with; register models from runs on a dataset version"
        )
    frame = datasets.load_frame(db, dataset_version_id)
    names = [c["name"] for c in schema if c.get("name") in frame.columns] or [c for c in frame.columns]
    ref = frame[names].reset_index(drop=True)
    ref_pred = None
    try:
        model = registry.load_model(db, model_version_id)
        sample = ref if len(ref) <= 50_000 else ref.sample(50_000, random_state=0)
        ref_pred = list(model.predict(sample))
    except Exception as exc:  # noqa: BLE001 - prediction drift is optional; data drift still runs
        log.warning("no reference predictions for model version %s: %s", model_version_id, exc)
    out = (ref, ref_pred, dataset_version_id)
    if len(_REFERENCE_CACHE) > 16:
        _REFERENCE_CACHE.clear()
    _REFERENCE_CACHE[key] = out
    return out


def align(current, reference):
    """Give the window's columns the reference's dtypes (JSON loses them: 3.0 arrives as 3)."""
    cur = current.copy()
    for c in reference.columns:
        if c not in cur.columns:
            cur[c] = pd.Series(
                [None] * len(cur), dtype=reference[c].dtype if reference[c].dtype.kind in "fO" else object
            )
            continue
        rd = reference[c].dtype
        if cur[c].dtype == rd and rd.kind != "O":
            continue
        try:
            if rd.kind == "f":
                cur[c] = pd.to_numeric(cur[c], errors="coerce").astype(rd)
            elif rd.kind in "iu":
                num = pd.to_numeric(cur[c], errors="coerce")
                cur[c] = num.astype(rd) if num.notna().all() else num.astype(float)
            elif rd.kind == "b":
                if cur[c].notna().all():
                    cur[c] = cur[c].astype(bool)
            elif rd.kind == "O" or str(rd) in ("string", "category"):
                if cur[c].dtype.kind != "O":
                    cur[c] = cur[c].astype(object).where(cur[c].notna(), None)
                if str(rd) == "category":
                    cur[c] = cur[c].astype("category")
        except (TypeError, ValueError):
            pass
    return cur[list(reference.columns)]


# --- Monitoring at scale (issue 16, point 4): reference sketches and a window read once, in batches ---------


@dataclass
class ReferenceSketches:
    """A model version's reference summarised once: its inputs, its predictions (None without a model)."""

    inputs: Any  # monitoring.sketches.FrameSketch
    prediction: Any  # FrameSketch of one column "prediction", or None
    dataset_version_id: int
    n_rows: int


def _sketch_key(model_version_id: int, dataset_version_id: int) -> str:
    """Where a model version's reference sketches are stored; another sketch format is another file."""
    from ...monitoring.sketches import SKETCH_FORMAT

    return f"monitoring/reference-sketches/mv{model_version_id}-dv{dataset_version_id}-f{SKETCH_FORMAT}.json"


_SKETCH_CACHE: dict[tuple[str, str, str], ReferenceSketches] = {}


def _prediction_reference(ref_pred: list | None):
    """The reference predictions as kinds.DriftCheck compares them: numeric as they are, else as text."""
    from ...monitoring.sketches import FrameSketch

    if ref_pred is None:
        return None
    ref_s = pd.Series(ref_pred)
    if ref_s.dtype.kind not in "fiub":
        ref_s = ref_s.astype(str).astype(object)
    return FrameSketch.reference(pd.DataFrame({"prediction": ref_s}))


def reference_sketches(db: Database, *, model_version_id: int) -> ReferenceSketches:
    """The model version's reference sketches: computed once from its training data (and the model's
    predictions on it) and stored as a JSON artifact; later checks, in any process, read that file."""
    from ...monitoring.sketches import FrameSketch

    with db.read() as s:
        mv = get_or_404(s, ModelVersion, model_version_id, "model version")
        dataset_version_id = mv.dataset_version_id
    if dataset_version_id is None:
        raise ValidationError(
            f"model version {model_version_id} has no training dataset version, so there is "
            "nothing to compare live inputs with; register models from runs on a dataset version"
        )
    key = _sketch_key(model_version_id, dataset_version_id)
    cache_key = (db.url, artifacts.store_id(), key)
    if cache_key in _SKETCH_CACHE:
        return _SKETCH_CACHE[cache_key]
    stored = None
    if artifacts.exists(key):
        try:
            data = orjson.loads(artifacts.get_bytes(key))
            stored = ReferenceSketches(
                inputs=FrameSketch.from_dict(data["inputs"]),
                prediction=None if data.get("prediction") is None else FrameSketch.from_dict(data["prediction"]),
                dataset_version_id=int(data["dataset_version_id"]),
                n_rows=int(data["n_rows"]),
            )
        except (ValueError, KeyError, TypeError) as exc:  # damaged or of an older format: computed again
            log.warning("reference sketches %s unreadable (%s); computing them again", key, exc)
    if stored is None:
        ref, ref_pred, dv = reference_frame(db, model_version_id=model_version_id)
        stored = ReferenceSketches(
            inputs=FrameSketch.reference(ref),
            prediction=_prediction_reference(ref_pred),
            dataset_version_id=dv,
            n_rows=len(ref),
        )
        artifacts.put_bytes(
            key,
            orjson.dumps(
                {
                    "inputs": stored.inputs.to_dict(),
                    "prediction": None if stored.prediction is None else stored.prediction.to_dict(),
                    "dataset_version_id": dv,
                    "n_rows": stored.n_rows,
                }
            ),
        )
    if len(_SKETCH_CACHE) > 16:
        _SKETCH_CACHE.clear()
    _SKETCH_CACHE[cache_key] = stored
    return stored


@dataclass
class WindowSketches:
    inputs: Any  # FrameSketch of the window's aligned inputs
    prediction: Any  # FrameSketch of its predictions, None without reference predictions
    n_rows: int  # readable ok rows
    unreadable_rows: int
    prediction_note: str = ""  # why prediction drift cannot be computed from sketches ("" when it can)


def _window_ids(s: Session, deployment_id: int, window: Window) -> tuple[int, int] | None:
    """(first id - 1, last id) of the window's rows, or None when it is empty (from the (deployment,
    time) index alone: the status is filtered by the batch queries)."""
    conds = _window_conds(deployment_id, window)
    lo, hi = s.connection().execute(select(func.min(Prediction.id), func.max(Prediction.id)).where(*conds)).one()
    return None if lo is None else (int(lo) - 1, int(hi))


def _iter_window_batches(
    s: Session, deployment_id: int, window: Window, batch_rows: int, predictions: bool, lock: threading.Lock
):
    """The window's ok rows in id order, in batches of consecutive ids (`batch_rows` ids each, so at most
    that many rows), each as (count, inputs as newline-delimited JSON, predictions as one JSON array or
    None, after id, last id). The database joins each batch's texts itself (group_concat / string_agg), so
    no Python object is made per row; each query is a primary-key range scan (a rowid range on SQLite), so
    none of them re-reads the rows before it, whatever the planner thinks of the (deployment, time) index."""
    bounds = _window_ids(s, deployment_id, window)
    if bounds is None:
        return
    after, last = bounds
    conn = s.connection()
    postgres = conn.dialect.name == "postgresql"
    where = "id > :after AND id <= :upto AND deployment_id = :dep AND status = 'ok' AND created_at <= :end"
    if window.start is not None:
        where += " AND created_at >= :start"
    if postgres:
        # Only the id range may pick the index: freshly bulk-loaded (not yet analysed) tables made the planner
        # AND the whole (deployment, time) and status indexes for every batch (2 s a batch on 2M rows).
        where = where.replace("deployment_id = :dep", "deployment_id + 0 = :dep")
        where = where.replace("status = 'ok'", "status || '' = 'ok'")
        where = where.replace("created_at ", "created_at + interval '0 second' ")
        inner = f"SELECT id, inputs::text AS i, prediction::text AS p FROM predictions WHERE {where}"  # noqa: S608 - constant fragments, values bound
        agg = "count(*), max(id), string_agg(coalesce(i, '{}'), E'\\n' ORDER BY id)"
        if predictions:
            agg += ", '[' || string_agg(coalesce(p, 'null'), ',' ORDER BY id) || ']'"
    else:  # NOT INDEXED: a rowid range scan, never the (deployment, time) index plus a sort per batch
        inner = f"SELECT id, inputs AS i, prediction AS p FROM predictions NOT INDEXED WHERE {where}"  # noqa: S608 - constant fragments, values bound
        agg = "count(*), max(id), group_concat(coalesce(i, '{}'), char(10))"
        if predictions:
            agg += ", '[' || group_concat(coalesce(p, 'null'), ',') || ']'"
    sql = sa.text(f"SELECT {agg} FROM ({inner}) AS b")  # noqa: S608 - constant fragments, values bound
    to_db = conn.dialect.type_descriptor(sa.DateTime()).bind_processor(conn.dialect) or (lambda v: v)
    params: dict[str, Any] = {"dep": deployment_id, "end": to_db(window.end)}
    if window.start is not None:
        params["start"] = to_db(window.start)
    while after < last:
        upto = min(after + int(batch_rows), last)
        with lock:
            row = conn.execute(sql, {**params, "after": after, "upto": upto}).one()
        if int(row[0] or 0):
            yield int(row[0]), row[2], (row[3] if predictions else None), after, upto
        after = upto


def _prefetched(batches):
    """Iterate `batches` one step ahead on a helper thread: the database builds the next batch (sqlite3 and
    psycopg release the GIL) while this thread parses the current one. At most two batches in memory."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="window-read") as pool:
        pending = pool.submit(next, batches, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield item


def _batch_texts(s: Session, deployment_id: int, window: Window, after: int, upto: int) -> tuple[list, list]:
    """One batch's rows one by one (inputs, prediction JSON texts): the fallback when the batch cannot be
    parsed at once (a value of another type than the reference's, or JSON that cannot be decoded)."""
    conds = _window_conds(deployment_id, window) + [
        Prediction.status == "ok",
        Prediction.id > after,
        Prediction.id <= upto,
    ]
    rows = (
        s.connection()
        .execute(
            select(sa.cast(Prediction.inputs, sa.Text), sa.cast(Prediction.prediction, sa.Text))
            .where(*conds)
            .order_by(Prediction.id)
        )
        .all()
    )
    return [r[0] for r in rows], [r[1] for r in rows]


def _prediction_batch(preds: list[Any], ref_dtype: str) -> pd.DataFrame | None:
    """One batch of predictions as kinds.DriftCheck casts them; None when a numeric reference meets
    non-numeric predictions (the exact path then compares both as text: not done from sketches)."""
    cur_s = pd.Series([prediction_value(p) for p in preds])
    if ref_dtype.startswith(("float", "int", "uint")) or ref_dtype == "bool":
        if cur_s.notna().any() and not pd.api.types.is_numeric_dtype(cur_s):
            return None
        cur_s = cur_s.astype(ref_dtype if cur_s.notna().all() else float)
    else:
        cur_s = cur_s.astype(str).astype(object)
    return pd.DataFrame({"prediction": cur_s})


def window_sketches(
    s: Session, *, deployment_id: int, window: Window, reference: ReferenceSketches, batch_rows: int
) -> WindowSketches:
    """Read the window once, in batches, into sketches on the reference's edges and categories.

    A batch's inputs are parsed by pyarrow's JSON reader typed as the reference (no Python object per
    row); a batch it refuses (a value of another type, JSON that cannot be decoded) is decoded row by row
    and aligned to the reference's dtypes exactly as `load_window_frame` + `align` treat the whole window.
    Unreadable rows are left out and counted. Memory is bounded by the batch, not by the window."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    from ...monitoring.sketches import arrow_schema, frame_sketch_from_arrow

    ref_in = reference.inputs
    columns = list(ref_in.columns)
    like = ref_in.empty_frame()
    parse = pa_json.ParseOptions(explicit_schema=arrow_schema(ref_in), unexpected_field_behavior="ignore")
    acc_in = ref_in.empty_like()
    ref_pred = reference.prediction
    acc_pred = ref_pred.empty_like() if ref_pred is not None else None
    pred_dtype = ref_pred.dtypes["prediction"] if ref_pred is not None else ""
    note = ""
    n_rows = unreadable = 0
    lock = threading.Lock()  # the session's connection: one query at a time (the read-ahead or a fallback)
    batches = _iter_window_batches(s, deployment_id, window, batch_rows, acc_pred is not None, lock)
    for count, joined, preds_json, after, upto in _prefetched(batches):
        data = joined.encode()
        block = max(1 << 20, len(data) // 2 + 1)  # two blocks: parsed on two threads
        batch_sketch, preds = None, None
        try:
            table = pa_json.read_json(pa.py_buffer(data), pa_json.ReadOptions(block_size=block), parse)
            if table.num_rows == count:
                batch_sketch = frame_sketch_from_arrow(ref_in, table)
                if preds_json is not None:
                    preds = orjson.loads(preds_json)
        except (pa.ArrowInvalid, orjson.JSONDecodeError):
            batch_sketch = None
        del data, joined
        if batch_sketch is None or (preds_json is not None and preds is None):
            with lock:
                texts_in, texts_pred = _batch_texts(s, deployment_id, window, after, upto)
            inputs, bad_i = _loads_many(texts_in, empty="{}")
            preds, bad_p = _loads_many(texts_pred)
            if bad_i or bad_p or not all(isinstance(i, dict) for i in inputs):
                keep = [
                    i is not UNREADABLE and p is not UNREADABLE and isinstance(i, dict) for i, p in zip(inputs, preds)
                ]
                unreadable += keep.count(False)
                inputs = [i for i, k in zip(inputs, keep) if k]
                preds = [p for p, k in zip(preds, keep) if k]
            if not inputs:
                continue
            count = len(inputs)
            batch_sketch = ref_in.from_batch(align(pd.DataFrame.from_records(inputs, columns=columns), like))
        n_rows += count
        acc_in = acc_in.merge(batch_sketch)
        if acc_pred is not None:
            pb = _prediction_batch(preds, pred_dtype)
            if pb is None:
                acc_pred, note = None, "predictions are not numeric like the reference's: prediction drift skipped"
            else:
                acc_pred = acc_pred.merge(ref_pred.from_batch(pb))
    return WindowSketches(
        inputs=acc_in, prediction=acc_pred, n_rows=n_rows, unreadable_rows=unreadable, prediction_note=note
    )
