"""Production monitoring (stage 5): monitors, checks, alerts, and the retraining loop.

A *monitor* watches one deployment. Running it (`run_monitor`, from the scheduler's "monitor"
job, the CLI or the page) produces one *check* per monitor over a window of logged predictions:

- service health from SQL: volume, error rate, latency p50/p95/p99 (index on
  `predictions(deployment_id, created_at)`; percentiles in SQL on Postgres);
- data drift of the window's inputs (and predictions) against the model's training reference,
  with `mlops_core.monitoring.detect_drift` (evidently's preset verdicts, fast);
- performance on the predictions whose late labels have arrived, the use case's model KPIs
  evaluated on it, and label coverage / delay.

Breaches raise *alerts*, deduplicated: while an alert with the same key is not resolved, a
persisting breach only bumps its `occurrences`/`last_seen_at`. New alerts go to the inbox of the
use case's ops and data science members and, when MLOPS_ALERT_WEBHOOK_URL is set, to a webhook
posted by a background job (never by the check itself). Drift or a missed KPI starts the
retraining loop according to the monitor's policy: "propose" makes a proposal ops approve,
"automatic" queues the run at once; either way the run is linked to the alert, and when it has
finished and passes the deployment gates it becomes a deployment request (a challenger awaiting
approval).
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from ..db import Database, utcnow
from ..errors import Conflict, NotFound, ValidationError
from ..models.monitoring import (
    RETRAINING_POLICIES,
    WINDOW_KINDS,
    Alert,
    AlertPublic,
    Monitor,
    MonitorCheck,
    MonitorCheckColumn,
    MonitorCheckPublic,
    MonitorPublic,
    RetrainingProposal,
    RetrainingProposalPublic,
)
from . import audit
from .auth import Actor, require
from .predictions import POSITIVE_LABELS, label_key as _label_key, positive_label as _positive_label

log = logging.getLogger(__name__)

# Fewer labelled predictions than this in a window: metrics are shown but KPIs stay "unknown"
# (a handful of labels says nothing and would only raise noisy alerts).
MIN_LABELLED_FOR_KPIS = 20
# Fewer rows than this in a window: no drift verdict (evidently's tests need some data).
MIN_ROWS_FOR_DRIFT = 10
# A worker whose heartbeat is older than this is considered down.
WORKER_DOWN_AFTER_S = 120
INGEST_FAILURE_LOOKBACK = timedelta(hours=24)
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
KPI_RANK = {"unknown": 0, "met": 1, "warning": 2, "missed": 3}
PAGE_DEPLOYMENT = "/deployment-monitoring"
PAGE_ALERTS = "/alerts"


def _register_counters() -> None:
    from .overview import register_counter

    register_counter("Monitoring", "monitors", lambda s: s.exec(select(func.count()).select_from(Monitor)).one())
    register_counter("Monitoring", "open alerts", lambda s: s.exec(
        select(func.count()).select_from(Alert).where(col(Alert.state) != "resolved")).one())


_register_counters()


# --- small helpers ---------------------------------------------------------------------------

def _pub(model, row):
    return model.model_validate(row, from_attributes=True)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    from datetime import UTC

    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _deployment(s: Session, name: str):
    from ..models.deployments import Deployment

    dep = s.exec(select(Deployment).where(Deployment.name == name)).first()
    if dep is None:
        names = s.exec(select(Deployment.name).order_by(Deployment.name)).all()
        raise NotFound(f"there is no deployment named {name!r}; known deployments: {', '.join(names) or '(none yet)'}")
    return dep


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# --- monitors --------------------------------------------------------------------------------

def _schedule_name(monitor: Monitor) -> str:
    return f"monitor:{monitor.deployment_name}:{monitor.name}"


def _sync_schedule(s: Session, monitor: Monitor) -> None:
    from .. import jobs

    name = _schedule_name(monitor)
    if monitor.enabled and monitor.schedule_seconds:
        jobs.upsert_schedule(s, name=name, kind="monitor", interval_seconds=int(monitor.schedule_seconds),
                             payload={"deployment": monitor.deployment_name, "monitor_id": monitor.id})
    else:
        jobs.delete_schedule(s, name)


def _check_monitor_fields(values: dict[str, Any]) -> None:
    if values["window_kind"] not in WINDOW_KINDS:
        raise ValidationError(f"window kind must be one of {', '.join(WINDOW_KINDS)} (got {values['window_kind']!r})")
    if int(values["window_size"]) < 1:
        raise ValidationError("the window must hold at least 1 prediction or 1 hour")
    if values["schedule_seconds"] is not None and int(values["schedule_seconds"]) < 60:
        raise ValidationError("schedule monitors at most once a minute (schedule_seconds >= 60), or leave it empty")
    if values["retraining_policy"] not in RETRAINING_POLICIES:
        raise ValidationError(
            f"retraining policy must be one of {', '.join(RETRAINING_POLICIES)} (got {values['retraining_policy']!r})")
    if not 0.0 < float(values["drift_share"]) <= 1.0:
        raise ValidationError("drift share must be in (0, 1]: the share of drifted columns that makes the dataset drifted")
    from ..monitoring.drift import SUPPORTED_METHODS

    for column, method in (values["method_overrides"] or {}).items():
        if method not in SUPPORTED_METHODS:
            raise ValidationError(f"drift method {method!r} for column {column!r} is not supported; "
                                  f"use one of {', '.join(SUPPORTED_METHODS)}")
    for column, thr in (values["threshold_overrides"] or {}).items():
        if _finite(thr) is None:
            raise ValidationError(f"the drift threshold of column {column!r} must be a number (got {thr!r})")
    if values["max_error_rate"] is not None and not 0 <= float(values["max_error_rate"]) <= 1:
        raise ValidationError("the error-rate threshold is a share between 0 and 1 (e.g. 0.05 for 5 %)")
    if values["max_latency_p95_ms"] is not None and float(values["max_latency_p95_ms"]) <= 0:
        raise ValidationError("the p95 latency threshold must be a positive number of milliseconds")
    if values["min_label_coverage"] is not None and not 0 <= float(values["min_label_coverage"]) <= 1:
        raise ValidationError("the label-coverage threshold is a share between 0 and 1")


MONITOR_FIELDS = ("window_kind", "window_size", "schedule_seconds", "columns", "method_overrides",
                  "threshold_overrides", "drift_share", "watch_kpis", "max_error_rate", "max_latency_p95_ms",
                  "min_label_coverage", "retraining_policy", "enabled")


def configure_monitor(
    db: Database,
    *,
    actor: Actor,
    deployment_name: str,
    name: str = "default",
    window_kind: str = "last_n",
    window_size: int = 5000,
    schedule_seconds: int | None = 3600,
    columns: list[str] | None = None,
    method_overrides: dict[str, str] | None = None,
    threshold_overrides: dict[str, float] | None = None,
    drift_share: float = 0.5,
    watch_kpis: list[str] | None = None,
    max_error_rate: float | None = 0.05,
    max_latency_p95_ms: float | None = 500.0,
    min_label_coverage: float | None = None,
    retraining_policy: str = "propose",
    enabled: bool = True,
    expected_version: int | None = None,
) -> MonitorPublic:
    """Create or update the monitor `name` of a deployment (and its schedule)."""
    require(actor, "monitor.configure")
    values = dict(window_kind=window_kind, window_size=int(window_size),
                  schedule_seconds=None if not schedule_seconds else int(schedule_seconds),
                  columns=list(columns) if columns else None, method_overrides=dict(method_overrides or {}),
                  threshold_overrides=dict(threshold_overrides or {}),
                  drift_share=float(drift_share), watch_kpis=list(watch_kpis) if watch_kpis else None,
                  max_error_rate=None if max_error_rate is None else float(max_error_rate),
                  max_latency_p95_ms=None if max_latency_p95_ms is None else float(max_latency_p95_ms),
                  min_label_coverage=None if min_label_coverage is None else float(min_label_coverage),
                  retraining_policy=retraining_policy, enabled=bool(enabled))
    _check_monitor_fields(values)
    values["threshold_overrides"] = {k: float(v) for k, v in values["threshold_overrides"].items()}
    name = (name or "default").strip()[:100] or "default"
    with db.unit_of_work() as s:
        dep = _deployment(s, deployment_name)
        row = s.exec(select(Monitor).where(Monitor.deployment_id == dep.id, Monitor.name == name)).first()
        before = None
        if row is None:
            row = Monitor(deployment_id=dep.id, deployment_name=dep.name, use_case_id=dep.use_case_id, name=name,
                          created_by=actor.username)
            action = "monitor.create"
        else:
            if expected_version is not None and row.version != expected_version:
                raise Conflict(f"monitor {name!r} of {dep.name} was changed by someone else meanwhile; "
                               "reload the page and apply your change again")
            before = {f: getattr(row, f) for f in MONITOR_FIELDS}
            row.version += 1
            action = "monitor.update"
        for f, v in values.items():
            setattr(row, f, v)
        row.use_case_id = dep.use_case_id
        row.updated_at = utcnow()
        s.add(row)
        s.flush()
        _sync_schedule(s, row)
        if action == "monitor.create" and dep.use_case_id is not None:
            from . import usecases

            usecases.note_stage_reached(s, actor=actor, use_case_id=dep.use_case_id, status="monitored",
                                        note=f"first monitor on {dep.name}")
        audit.record(s, actor=actor, action=action, entity_type="monitor", entity_id=row.id,
                     summary=f"monitor {name!r} of deployment {dep.name}: {window_kind} {window_size}, "
                             f"policy {retraining_policy}", before=before, after=values)
        return _pub(MonitorPublic, row)


def list_monitors(db: Database, *, deployment_name: str | None = None) -> list[MonitorPublic]:
    with db.read() as s:
        q = select(Monitor).order_by(Monitor.deployment_name, Monitor.name)
        if deployment_name:
            q = q.where(Monitor.deployment_name == deployment_name)
        return [_pub(MonitorPublic, r) for r in s.exec(q).all()]


def _ensure_default_monitor(db: Database, deployment_name: str) -> None:
    """A deployment without a monitor gets the default one the first time it is checked."""
    with db.read() as s:
        dep = _deployment(s, deployment_name)
        if s.exec(select(Monitor.id).where(Monitor.deployment_id == dep.id)).first() is not None:
            return
    try:
        configure_monitor(db, actor=Actor.system(), deployment_name=deployment_name)
    except Conflict:
        pass  # created meanwhile by another process


# --- windows: health, labels, frames ---------------------------------------------------------

@dataclass
class Window:
    start: datetime | None
    end: datetime


def window_bounds(s: Session, *, deployment_id: int, kind: str, size: int, as_of: datetime) -> Window:
    """The time span of the window ending at `as_of`: the last `size` predictions or hours."""
    from ..models.deployments import Prediction

    if kind == "last_hours":
        return Window(start=as_of - timedelta(hours=int(size)), end=as_of)
    nth = s.exec(
        select(Prediction.created_at)
        .where(Prediction.deployment_id == deployment_id, Prediction.created_at <= as_of)
        .order_by(col(Prediction.created_at).desc()).offset(int(size) - 1).limit(1)
    ).first()
    return Window(start=_aware(nth), end=as_of)


def _window_conds(deployment_id: int, window: Window):
    from ..models.deployments import Prediction

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
    import orjson

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
    per-row cost of SQLAlchemy's result objects would dominate the whole health check."""
    import numpy as np

    to_db = conn.dialect.type_descriptor(sa.DateTime()).bind_processor(conn.dialect) or (lambda v: v)
    sql = "SELECT latency_ms FROM predictions WHERE deployment_id = ? AND created_at <= ?"
    params: list[Any] = [deployment_id, to_db(window.end)]
    if window.start is not None:
        sql += " AND created_at >= ?"
        params.append(to_db(window.start))
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=len(rows))


def health_figures(s: Session, *, deployment_id: int, window: Window) -> dict[str, Any]:
    """Volume, error rate and latency percentiles of one window.

    Postgres aggregates everything in SQL (percentile_cont). SQLite has no percentile function: it
    streams the two small columns of the window (status flag, latency) through Core — not the ORM —
    into numpy, which interpolates percentiles the same way as percentile_cont.
    """
    import numpy as np

    from ..models.deployments import Prediction

    conds = _window_conds(deployment_id, window)
    conn = s.connection()
    first, last = conn.execute(select(func.min(Prediction.created_at), func.max(Prediction.created_at))
                               .where(*conds)).one()
    if conn.dialect.name == "postgresql":
        n, n_err, mean_lat, p50, p95, p99 = conn.execute(select(
            func.count(), func.sum(sa.case((Prediction.status != "ok", 1), else_=0)), func.avg(Prediction.latency_ms),
            *[sa.func.percentile_cont(q).within_group(Prediction.latency_ms) for q in (0.5, 0.95, 0.99)])
            .where(*conds)).one()
        n, n_err = int(n or 0), int(n_err or 0)
        p50, p95, p99, mean_lat = _finite(p50), _finite(p95), _finite(p99), _finite(mean_lat)
    else:
        n, n_err, mean_lat = conn.execute(select(
            func.count(), func.sum(sa.case((Prediction.status != "ok", 1), else_=0)), func.avg(Prediction.latency_ms))
            .where(*conds)).one()
        n, n_err, mean_lat = int(n or 0), int(n_err or 0), _finite(mean_lat)
        p50 = p95 = p99 = None
        if n:
            lat = _sqlite_latencies(conn, deployment_id, window)
            p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
    first, last = _aware(first), _aware(last)
    span_h = ((last - first).total_seconds() / 3600.0) if (first and last and last > first) else None
    return {
        "volume": n,
        "errors": n_err,
        "error_rate": (n_err / n) if n else None,
        "latency_mean_ms": mean_lat,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "first_at": first.isoformat() if first else None,
        "last_at": last.isoformat() if last else None,
        "per_hour": (n / span_h) if span_h else None,
    }


def _delay_seconds(dialect: str):
    from ..models.deployments import Prediction

    if dialect == "postgresql":
        return sa.func.extract("epoch", Prediction.labelled_at - Prediction.created_at)
    return (sa.func.julianday(Prediction.labelled_at) - sa.func.julianday(Prediction.created_at)) * 86400.0


def _labelled_rows(s: Session, deployment_id: int,
                   window: Window) -> tuple[int, list[tuple[Any, Any, float]], int]:
    """(number of ok predictions in the window, [(prediction, label, delay seconds)] of those whose label
    had arrived by the end of the window, number of labelled rows skipped as unreadable JSON).
    JSON comes back as text and is decoded in one go. A prediction
    logged with a score (a binary classifier's positive-class probability) comes as
    {"prediction": value, "score": probability}, which `performance_metrics` turns into roc_auc."""
    from ..models.deployments import Prediction

    conds = _window_conds(deployment_id, window) + [Prediction.status == "ok"]
    conn = s.connection()
    n_ok = int(conn.execute(select(func.count()).select_from(Prediction).where(*conds)).scalar() or 0)
    rows = conn.execute(select(sa.cast(Prediction.prediction, sa.Text), sa.cast(Prediction.label, sa.Text),
                               _delay_seconds(conn.dialect.name), Prediction.score)
                        .where(*conds, col(Prediction.labelled_at).is_not(None),
                               Prediction.labelled_at <= window.end)).all()
    if not rows:
        return n_ok, [], 0
    preds, bad_p = _loads_many([r[0] for r in rows])
    labels, bad_l = _loads_many([r[1] for r in rows])
    out = [(p if r[3] is None else {"prediction": p, "score": r[3]}, lab, float(r[2] or 0.0))
           for p, lab, r in zip(preds, labels, rows)
           if lab is not None and p is not UNREADABLE and lab is not UNREADABLE]
    skipped = sum(1 for p, lab in zip(preds, labels) if p is UNREADABLE or lab is UNREADABLE) if bad_p or bad_l else 0
    return n_ok, out, skipped


def label_figures(n_ok: int, labelled: list[tuple[Any, Any, float]]) -> dict[str, Any]:
    import numpy as np

    n_lab = len(labelled)
    delays = np.array([d for *_, d in labelled], dtype=float)
    return {
        "n_predictions": n_ok,
        "n_labelled": n_lab,
        "n_unlabelled": max(0, n_ok - n_lab),
        "coverage": (n_lab / n_ok) if n_ok else None,
        "delay_p50_s": float(np.median(delays)) if n_lab else None,
        "delay_p95_s": float(np.percentile(delays, 95)) if n_lab else None,
        "delay_max_s": float(delays.max()) if n_lab else None,
    }


def _prediction_value(p: Any) -> Any:
    """The served value of a logged prediction (a scalar, or a dict holding it)."""
    if isinstance(p, dict):
        for key in ("prediction", "label", "value", "class"):
            if key in p:
                return p[key]
        return None
    if isinstance(p, list) and len(p) == 1:
        return p[0]
    return p


# The positive class: the rule (`_positive_label`) is shared with the logged score (predictions.positive_index).
_POSITIVE = POSITIVE_LABELS


def performance_metrics(task: str, labelled: list[tuple[Any, Any, float]]) -> dict[str, float]:
    """The model's metrics on labelled predictions (names as in mlops_core.kpi.KNOWN_METRICS)."""
    if not labelled:
        return {}
    import numpy as np

    y_pred = [_prediction_value(p) for p, _, _ in labelled]
    y_true = [lab for _, lab, _ in labelled]
    keep = [i for i, (a, b) in enumerate(zip(y_pred, y_true)) if a is not None and b is not None]
    y_pred = [y_pred[i] for i in keep]
    y_true = [y_true[i] for i in keep]
    if not y_true:
        return {}
    if task == "regression":
        t = np.asarray(y_true, dtype=float)
        p = np.asarray(y_pred, dtype=float)
        # plain numpy: importing scikit-learn would cost more than the whole check
        out = {"rmse": float(np.sqrt(np.mean((t - p) ** 2))), "mae": float(np.mean(np.abs(t - p)))}
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        if len(t) > 1 and ss_tot > 0:
            out["r2"] = 1.0 - float(np.sum((t - p) ** 2)) / ss_tot
        nz = t != 0
        if nz.any():
            out["mape"] = float(np.mean(np.abs((t[nz] - p[nz]) / t[nz])))
        return out
    # classification: compare as strings so 1 / "1" / True line up the same way everywhere
    norm = _label_key

    try:
        # numbers and booleans (the usual case): compare numerically, no per-value Python work
        tn_ = np.asarray(y_true, dtype=float)
        pn_ = np.asarray(y_pred, dtype=float)
        if np.isnan(tn_).any() or np.isnan(pn_).any() or (tn_ != np.round(tn_)).any() or (pn_ != np.round(pn_)).any():
            raise ValueError("not integral")
        t = tn_.astype(np.int64).astype(str).astype(object)
        p = pn_.astype(np.int64).astype(str).astype(object)
    except (TypeError, ValueError):
        t = np.array([norm(v) for v in y_true], dtype=object)
        p = np.array([norm(v) for v in y_pred], dtype=object)
    classes = sorted(set(t.tolist()) | set(p.tolist()))
    out: dict[str, float] = {"accuracy": float(np.mean(t == p))}
    if len(classes) <= 2:
        # binary: counts with numpy (sklearn's input validation costs more than the arithmetic here)
        pos = _positive_label(classes)  # the class whose probability the logged score is
        tp = float(np.sum((t == pos) & (p == pos)))
        fp = float(np.sum((t != pos) & (p == pos)))
        fn = float(np.sum((t == pos) & (p != pos)))
        tn = float(np.sum((t != pos) & (p != pos)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out["precision"] = precision
        out["recall"] = recall
        out["f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        tnr = tn / (tn + fp) if tn + fp else None
        out["balanced_accuracy"] = (recall + tnr) / 2 if (tnr is not None and tp + fn) else out["accuracy"]
        raw = [labelled[i][0] for i in keep]
        scores = [x.get("probability", x.get("proba", x.get("score"))) if isinstance(x, dict) else None for x in raw]
        # roc_auc only when every labelled prediction carries a score and both classes were observed
        if all(isinstance(sc, (int, float)) and not isinstance(sc, bool) and math.isfinite(sc) for sc in scores) \
                and len(set(t.tolist())) == 2:
            out["roc_auc"] = _roc_auc((t == pos), np.asarray(scores, dtype=float))
    else:
        from sklearn import metrics as skm

        tl, pl = t.tolist(), p.tolist()
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(tl, pl))
        out["precision"] = float(skm.precision_score(tl, pl, average="macro", zero_division=0))
        out["recall"] = float(skm.recall_score(tl, pl, average="macro", zero_division=0))
        out["f1"] = float(skm.f1_score(tl, pl, average="macro", zero_division=0))
    return out


def _roc_auc(positive, scores) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties (= sklearn's roc_auc_score)."""
    import numpy as np
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = int(len(positive) - n_pos)
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def load_window_frame(s: Session, *, deployment_id: int, window: Window, columns: list[str] | None = None):
    """The window's logged inputs (ok rows) as a DataFrame, plus a "__prediction__" column.

    The JSON text is read without per-row decoding and parsed in one go: on 100k rows this is
    several times faster than letting the driver decode each row. Rows whose JSON cannot be decoded are
    left out; their number is in ``frame.attrs["unreadable_rows"]``.
    """
    import pandas as pd

    from ..models.deployments import Prediction

    conds = _window_conds(deployment_id, window) + [Prediction.status == "ok"]
    rows = s.connection().execute(select(sa.cast(Prediction.inputs, sa.Text), sa.cast(Prediction.prediction, sa.Text))
                                  .where(*conds)).all()
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
    frame["__prediction__"] = [_prediction_value(p) for p in preds]
    frame.attrs["unreadable_rows"] = skipped
    return frame


# --- reference data (training set of the served model) ---------------------------------------

_REFERENCE_CACHE: dict[tuple[str, str, int, int], Any] = {}


def _model_version_row(s: Session, model_version_id: int):
    from ..models.experiments import ModelVersion

    mv = s.get(ModelVersion, model_version_id)
    if mv is None:
        raise NotFound(f"model version {model_version_id} does not exist")
    return mv


def reference_frame(db: Database, *, model_version_id: int):
    """(training frame restricted to the model's inputs, reference predictions or None, dataset version id).

    Cached per process: dataset versions and model versions are immutable.
    """
    with db.read() as s:
        mv = _model_version_row(s, model_version_id)
        dataset_version_id = mv.dataset_version_id
        schema = list(mv.input_schema or [])
    from .. import artifacts

    # Ids repeat across workspaces (databases) served by one process: key by database and store too.
    key = (db.url, artifacts.store_id(), model_version_id, dataset_version_id or 0)
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    if dataset_version_id is None:
        raise ValidationError(f"model version {model_version_id} has no training dataset version, so there is "
                              "nothing to compare live inputs with; register models from runs on a dataset version")
    from . import datasets

    frame = datasets.load_frame(db, dataset_version_id)
    names = [c["name"] for c in schema if c.get("name") in frame.columns] or [c for c in frame.columns]
    ref = frame[names].reset_index(drop=True)
    ref_pred = None
    try:
        from . import registry

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


def _align(current, reference):
    """Give the window's columns the reference's dtypes (JSON loses them: 3.0 arrives as 3)."""
    import pandas as pd

    cur = current.copy()
    for c in reference.columns:
        if c not in cur.columns:
            cur[c] = pd.Series([None] * len(cur), dtype=reference[c].dtype if reference[c].dtype.kind in "fO" else object)
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


# --- alerts ----------------------------------------------------------------------------------

@dataclass
class Breach:
    kind: str
    severity: str
    key: str
    title: str
    detail: str
    evidence: dict[str, Any]
    link: str
    deployment_id: int | None = None
    deployment_name: str | None = None
    use_case_id: int | None = None
    monitor_id: int | None = None
    check_id: int | None = None


def _raise_alert(s: Session, b: Breach) -> tuple[Alert, bool]:
    """Insert the alert, or bump the live one with the same key. Returns (alert, created)."""
    now = utcnow()
    existing = s.exec(select(Alert).where(Alert.open_key == b.key)).first()
    if existing is None:
        alert = Alert(kind=b.kind, severity=b.severity, state="open", title=b.title[:300], detail=b.detail[:4000],
                      deployment_id=b.deployment_id, deployment_name=b.deployment_name, use_case_id=b.use_case_id,
                      monitor_id=b.monitor_id, check_id=b.check_id, dedupe_key=b.key, open_key=b.key,
                      evidence=b.evidence, evidence_link=b.link[:500], created_at=now, last_seen_at=now)
        try:
            with s.begin_nested():
                s.add(alert)
                s.flush()
            return alert, True
        except IntegrityError:
            # Another check opened the same alert a moment ago: it is the same breach.
            existing = s.exec(select(Alert).where(Alert.open_key == b.key)).one()
    existing.occurrences += 1
    existing.last_seen_at = now
    if SEVERITY_RANK.get(b.severity, 0) > SEVERITY_RANK.get(existing.severity, 0):
        existing.severity = b.severity
    existing.evidence = {**(existing.evidence or {}), "latest_check_id": b.check_id, "latest": b.evidence}
    s.add(existing)
    return existing, False


def _notify_alert(s: Session, alert: Alert, members: list[str]) -> None:
    from . import collab

    title = f"[{alert.severity}] {alert.title}"
    if members:
        collab.notify(s, usernames=members, kind="alert", title=title, entity_type="alert", entity_id=alert.id,
                      from_username="system")
    else:
        # No team on the use case (or a workspace-wide alert): every ops person is told.
        collab.notify(s, roles=("ops",), kind="alert", title=title, entity_type="alert", entity_id=alert.id,
                      from_username="system")


def _queue_webhook(s: Session, alert: Alert) -> None:
    from .. import jobs
    from ..config import get_settings

    if not get_settings().alert_webhook_url:
        return
    alert.webhook_status = "pending"
    s.add(alert)
    jobs.enqueue(s, kind="alert_webhook", payload={"alert_id": alert.id}, max_attempts=4,
                 dedupe_key=f"alert_webhook:{alert.id}")


def webhook_body(alert: AlertPublic, base_url: str = "") -> dict[str, Any]:
    """A Slack-compatible message (the `text` fallback plus one mrkdwn section)."""
    link = f"{base_url.rstrip('/')}{alert.evidence_link}" if alert.evidence_link else ""
    where = f" on `{alert.deployment_name}`" if alert.deployment_name else ""
    text = f"[{alert.severity.upper()}] {alert.title}{where}"
    body = f"*{text}*\n{alert.detail}" + (f"\n<{link}|Evidence>" if link else "")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}}]}


def deliver_webhook(db: Database, *, alert_id: int, url: str | None = None, tries: int = 3,
                    backoff_s: float = 0.5, timeout_s: float = 5.0) -> bool:
    """POST the alert to the webhook, retrying with exponential back-off. Runs in a worker job.

    Returns True when delivered; raises RuntimeError after the last try (so the job queue retries
    the whole delivery later, with its own back-off)."""
    import httpx

    from ..config import get_settings

    url = url or get_settings().alert_webhook_url
    if not url:
        return False
    with db.read() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        alert = _pub(AlertPublic, row)
    body = webhook_body(alert)
    error = ""
    for attempt in range(1, tries + 1):
        try:
            r = httpx.post(url, json=body, timeout=timeout_s)
            ok = 200 <= r.status_code < 300
            error = "" if ok else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        with db.unit_of_work() as s:
            row = s.get(Alert, alert_id)
            row.webhook_attempts += 1
            row.webhook_status = "sent" if ok else ("failed" if attempt == tries else "pending")
            row.webhook_error = error
            s.add(row)
        if ok:
            return True
        if attempt < tries:
            time.sleep(backoff_s * (2 ** (attempt - 1)))
    raise RuntimeError(f"webhook for alert {alert_id} failed after {tries} tries: {error}")


def list_alerts(db: Database, *, state: str | None = None, states: Iterable[str] | None = None,
                kind: str | None = None, deployment_name: str | None = None, severity: str | None = None,
                use_case_id: int | None = None, limit: int = 200, offset: int = 0) -> list[AlertPublic]:
    """Newest first; filters applied in SQL."""
    with db.read() as s:
        q = select(Alert)
        if state:
            q = q.where(Alert.state == state)
        if states:
            q = q.where(col(Alert.state).in_(list(states)))
        if kind:
            q = q.where(Alert.kind == kind)
        if severity:
            q = q.where(Alert.severity == severity)
        if deployment_name:
            q = q.where(Alert.deployment_name == deployment_name)
        if use_case_id is not None:
            q = q.where(Alert.use_case_id == use_case_id)
        rows = s.exec(q.order_by(col(Alert.id).desc()).offset(offset).limit(max(1, min(limit, 1000)))).all()
        return [_pub(AlertPublic, r) for r in rows]


def alert_deployment_names(db: Database) -> list[str]:
    """Every deployment that has raised an alert, for filters (one DISTINCT query, not the alerts)."""
    with db.read() as s:
        rows = s.exec(select(Alert.deployment_name).where(col(Alert.deployment_name).is_not(None))
                      .distinct()).all()
    return sorted(r for r in rows if r)


def get_alert(db: Database, alert_id: int) -> AlertPublic:
    with db.read() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist; it may have been removed — reload the alerts page")
        return _pub(AlertPublic, row)


def acknowledge_alert(db: Database, *, actor: Actor, alert_id: int, note: str = "") -> AlertPublic:
    """Someone is on it. Only an open alert can be acknowledged."""
    require(actor, "alert.ack")
    with db.unit_of_work() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if row.state != "open":
            raise Conflict(f"alert {alert_id} is already {row.state} (by {row.acknowledged_by or row.resolved_by}); "
                           "reload to see its current state")
        row.state = "acknowledged"
        row.acknowledged_by = actor.username
        row.acknowledged_at = utcnow()
        row.ack_note = (note or "").strip()[:2000]
        s.add(row)
        audit.record(s, actor=actor, action="alert.acknowledge", entity_type="alert", entity_id=row.id,
                     summary=f"acknowledged {row.kind} alert: {row.title}", before={"state": "open"},
                     after={"state": "acknowledged", "note": row.ack_note})
        return _pub(AlertPublic, row)


def resolve_alert(db: Database, *, actor: Actor, alert_id: int, note: str) -> AlertPublic:
    """Close an alert with a note saying what was done; a later breach opens a new alert."""
    require(actor, "alert.ack")
    note = (note or "").strip()
    if not note:
        raise ValidationError("say in a note what was done about the alert before resolving it")
    with db.unit_of_work() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if row.state == "resolved":
            raise Conflict(f"alert {alert_id} was already resolved by {row.resolved_by}")
        before = {"state": row.state}
        row.state = "resolved"
        row.open_key = None
        row.resolved_by = actor.username
        row.resolved_at = utcnow()
        row.resolve_note = note[:2000]
        s.add(row)
        audit.record(s, actor=actor, action="alert.resolve", entity_type="alert", entity_id=row.id,
                     summary=f"resolved {row.kind} alert: {row.title}", before=before,
                     after={"state": "resolved", "note": row.resolve_note})
        return _pub(AlertPublic, row)


# --- system alerts (workers, scheduler, ingestion) -------------------------------------------

def _system_breaches(s: Session, now: datetime) -> list[Breach]:
    out: list[Breach] = []
    try:
        from ..models.jobs import Job, Lease, Worker
    except ImportError:  # pragma: no cover - jobs stage absent
        return out
    for w in s.exec(select(Worker).where(Worker.status == "running")).all():
        age = (now - _aware(w.heartbeat_at)).total_seconds()
        if age > WORKER_DOWN_AFTER_S:
            out.append(Breach(kind="worker_down", severity="critical", key=f"worker_down:{w.name}",
                              title=f"Worker {w.name} is down",
                              detail=f"no heartbeat from worker {w.name} on {w.hostname or 'its host'} for "
                                     f"{age / 60:.0f} min; jobs it held will be retried by another worker. "
                                     "Restart it (`python -m mlops_core worker`).",
                              evidence={"worker": w.name, "heartbeat_at": _aware(w.heartbeat_at).isoformat(),
                                        "seconds_since": round(age)}, link="/infrastructure"))
    lease = s.get(Lease, "scheduler")
    if lease is not None and _aware(lease.expires_at) < now - timedelta(seconds=WORKER_DOWN_AFTER_S):
        age = (now - _aware(lease.expires_at)).total_seconds()
        out.append(Breach(kind="scheduler_down", severity="critical", key="scheduler_down",
                          title="The scheduler is down",
                          detail=f"the scheduler lease (last held by {lease.holder}) expired {age / 60:.0f} min ago: "
                                 "scheduled monitors and ingestion are not firing. Start a worker with "
                                 "MLOPS_SCHEDULER=true.",
                          evidence={"holder": lease.holder, "expired_at": _aware(lease.expires_at).isoformat()},
                          link="/infrastructure"))
    since = now - INGEST_FAILURE_LOOKBACK
    failed = s.exec(select(Job).where(Job.kind == "ingest", Job.status == "failed", col(Job.finished_at) >= since)
                    .order_by(col(Job.id).desc()).limit(20)).all()
    for j in failed:
        src = (j.payload or {}).get("source_name") or (j.payload or {}).get("dataset") or (j.payload or {}).get(
            "source_id", "")
        out.append(Breach(kind="ingestion_failed", severity="warning", key=f"ingestion_failed:job:{j.id}",
                          title=f"Ingestion failed{f' for {src}' if src else ''} (job {j.id})",
                          detail=((j.error or "").strip().splitlines() or ["no error recorded"])[-1][:1000],
                          evidence={"job_id": j.id, "payload": j.payload}, link="/infrastructure"))
    return out


# --- one check -------------------------------------------------------------------------------

def _kpi_checks(db: Database, monitor: Monitor, metrics: dict[str, float], n_labelled: int) -> list[dict[str, Any]]:
    if monitor.use_case_id is None:
        return []
    from . import usecases

    out = []
    for c in usecases.evaluate_metrics(db, monitor.use_case_id, metrics):
        if monitor.watch_kpis and c.kpi.name not in monitor.watch_kpis:
            continue
        status = c.status if n_labelled >= MIN_LABELLED_FOR_KPIS else "unknown"
        out.append({"kpi_id": c.kpi.id, "name": c.kpi.name, "metric": c.kpi.metric, "direction": c.kpi.direction,
                    "target": c.kpi.target, "warning": c.kpi.warning, "value": c.value, "status": status})
    return out


def _compute_check(db: Database, monitor: Monitor, dep, as_of: datetime) -> dict[str, Any]:
    """Everything one check measures (no writes)."""
    from ..monitoring import detect_drift

    out: dict[str, Any] = {"status": "ok", "error": "", "unreadable_rows": 0, "unreadable_labelled_rows": 0}
    with db.read() as s:
        window = window_bounds(s, deployment_id=dep.id, kind=monitor.window_kind, size=monitor.window_size, as_of=as_of)
        out["window"] = window
        out["health"] = health_figures(s, deployment_id=dep.id, window=window)
        n_ok, labelled, out["unreadable_labelled_rows"] = _labelled_rows(s, dep.id, window)
        task = ""
        if dep.model_version_id is not None:
            task = _model_version_row(s, dep.model_version_id).task or ""
    out["labels"] = label_figures(n_ok, labelled)
    metrics = performance_metrics(task, labelled)
    out["performance"] = {"task": task, "metrics": metrics, "n_labelled": len(labelled)}
    out["kpis"] = _kpi_checks(db, monitor, metrics, len(labelled))
    out["drift"] = None
    if out["health"]["volume"] == 0:
        out["status"] = "no_data"
        return out
    if dep.model_version_id is None:
        out["status"] = "failed"
        out["error"] = f"deployment {dep.name} serves no model version yet, so there is no training reference"
        return out
    try:
        ref, ref_pred, ref_version = reference_frame(db, model_version_id=dep.model_version_id)
    except Exception as exc:  # noqa: BLE001 - a check without reference still stores health and performance
        out["status"] = "failed"
        out["error"] = f"could not load the training reference: {exc}"[:2000]
        return out
    out["reference_dataset_version_id"] = ref_version
    out["n_reference_rows"] = len(ref)
    with db.read() as s:
        cur = load_window_frame(s, deployment_id=dep.id, window=window, columns=list(ref.columns))
    out["unreadable_rows"] = cur.attrs.get("unreadable_rows", 0)
    if len(cur) < MIN_ROWS_FOR_DRIFT:
        out["status"] = "ok"
        out["drift_note"] = f"only {len(cur)} rows in the window: at least {MIN_ROWS_FOR_DRIFT} are needed for drift"
        return out
    current = _align(cur.drop(columns="__prediction__"), ref)
    columns = [c for c in (monitor.columns or list(ref.columns)) if c in ref.columns]
    methods = {k: v for k, v in (monitor.method_overrides or {}).items() if k in columns}
    thresholds = {k: float(v) for k, v in (monitor.threshold_overrides or {}).items() if k in columns}
    try:
        result = detect_drift(ref, current, columns=columns, stattest_overrides=methods or None,
                              threshold_overrides=thresholds or None, drift_share=monitor.drift_share)
    except ValueError as exc:
        out["status"] = "failed"
        out["error"] = f"drift could not be computed: {exc}"[:2000]
        return out
    drift = result.to_dict()
    drift["prediction"] = None
    if ref_pred is not None:
        import pandas as pd

        ref_s = pd.Series(ref_pred)
        cur_s = pd.Series(list(cur["__prediction__"]))
        if ref_s.dtype.kind in "fiub" and pd.api.types.is_numeric_dtype(cur_s):
            cur_s = cur_s.astype(ref_s.dtype if cur_s.notna().all() else float)
        else:
            ref_s, cur_s = ref_s.astype(str).astype(object), cur_s.astype(str).astype(object)
        try:
            pr = detect_drift(pd.DataFrame({"prediction": ref_s}), pd.DataFrame({"prediction": cur_s}))
            drift["prediction"] = pr.columns["prediction"].to_dict() if "prediction" in pr.columns else None
        except (ValueError, TypeError) as exc:
            log.info("prediction drift skipped: %s", exc)
    out["drift"] = drift
    return out


def _breaches_for_check(monitor: Monitor, dep, check: MonitorCheck, figures: dict[str, Any]) -> list[Breach]:
    link = f"{PAGE_DEPLOYMENT}?deployment={dep.name}&check={check.id}"
    base = dict(deployment_id=dep.id, deployment_name=dep.name, use_case_id=dep.use_case_id, monitor_id=monitor.id,
                check_id=check.id, link=link)
    out: list[Breach] = []
    drift = figures.get("drift")
    if drift and drift.get("dataset_drifted"):
        cols = [c for c, v in drift["columns"].items() if v["drifted"]]
        out.append(Breach(kind="drift", severity="warning", key=f"drift:{dep.id}:{monitor.id}",
                          title=f"Data drift on {dep.name}: {len(cols)} of {drift['number_of_columns']} columns drifted",
                          detail=f"drifted columns: {', '.join(cols)} (share {drift['drift_share']:.0%} >= "
                                 f"{drift['drift_share_threshold']:.0%}) over {check.n_rows:,} predictions "
                                 f"against the training data.",
                          evidence={"check_id": check.id, "drifted_columns": cols,
                                    "drift_share": drift["drift_share"]}, **base))
    for k in figures.get("kpis") or []:
        if k["status"] == "missed":
            out.append(Breach(kind="kpi_missed", severity="critical", key=f"kpi_missed:{dep.id}:{k['name']}",
                              title=f"KPI missed on {dep.name}: {k['name']} = {k['value']:.3f} "
                                    f"(target {k['direction']} {k['target']:g})",
                              detail=f"{k['metric']} on {figures['performance']['n_labelled']:,} labelled predictions "
                                     f"is {k['value']:.4f}; the use case needs {k['direction']} {k['target']:g}.",
                              evidence={"check_id": check.id, "kpi": k}, **base))
    h = figures["health"]
    if monitor.max_error_rate is not None and h["error_rate"] is not None and h["error_rate"] > monitor.max_error_rate:
        out.append(Breach(kind="error_rate", severity="critical", key=f"error_rate:{dep.id}",
                          title=f"Error rate on {dep.name} is {h['error_rate']:.1%} (limit {monitor.max_error_rate:.1%})",
                          detail=f"{h['errors']:,} of {h['volume']:,} requests in the window failed.",
                          evidence={"check_id": check.id, "health": h}, **base))
    if (monitor.max_latency_p95_ms is not None and h["latency_p95_ms"] is not None
            and h["latency_p95_ms"] > monitor.max_latency_p95_ms):
        out.append(Breach(kind="latency", severity="warning", key=f"latency:{dep.id}",
                          title=f"p95 latency on {dep.name} is {h['latency_p95_ms']:.0f} ms "
                                f"(limit {monitor.max_latency_p95_ms:.0f} ms)",
                          detail=f"p50 {h['latency_p50_ms']:.0f} ms, p95 {h['latency_p95_ms']:.0f} ms, "
                                 f"p99 {h['latency_p99_ms']:.0f} ms over {h['volume']:,} requests.",
                          evidence={"check_id": check.id, "health": h}, **base))
    lab = figures["labels"]
    if (monitor.min_label_coverage is not None and lab["coverage"] is not None
            and lab["coverage"] < monitor.min_label_coverage):
        out.append(Breach(kind="label_coverage", severity="info", key=f"label_coverage:{dep.id}",
                          title=f"Label coverage on {dep.name} is {lab['coverage']:.0%} "
                                f"(expected at least {monitor.min_label_coverage:.0%})",
                          detail=f"{lab['n_unlabelled']:,} predictions in the window have no label yet; "
                                 "performance figures rest on the labelled ones only.",
                          evidence={"check_id": check.id, "labels": lab}, **base))
    return out


def _worst_kpi(kpis: list[dict[str, Any]]) -> str:
    worst = "unknown"
    for k in kpis:
        if KPI_RANK.get(k["status"], 0) > KPI_RANK.get(worst, 0):
            worst = k["status"]
    return worst


def _unreadable_note(figures: dict[str, Any]) -> str:
    """What the check left out because the logged JSON could not be decoded ("" when nothing)."""
    parts = []
    if figures.get("unreadable_rows"):
        parts.append(f"{figures['unreadable_rows']:,} logged prediction(s) in the window could not be decoded "
                     "(not valid JSON) and were left out of drift")
    if figures.get("unreadable_labelled_rows"):
        parts.append(f"{figures['unreadable_labelled_rows']:,} labelled prediction(s) could not be decoded and "
                     "were left out of performance")
    return "; ".join(parts)


def _run_one(db: Database, monitor: Monitor, dep, *, as_of: datetime, triggered_by: str,
             members: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    started = utcnow()
    figures = _compute_check(db, monitor, dep, as_of)
    w: Window = figures["window"]
    drift = figures.get("drift")
    h = figures["health"]
    lab = figures["labels"]
    skipped_note = _unreadable_note(figures)
    if skipped_note:
        # Stored with the check (health, performance) and shown in its error line even when it is "ok".
        h = {**h, "unreadable_rows": figures["unreadable_rows"]}
        figures["performance"]["unreadable_rows"] = figures["unreadable_labelled_rows"]
        figures["error"] = "; ".join(x for x in (figures["error"], skipped_note) if x)[:2000]
    health_breach = ((monitor.max_error_rate is not None and h["error_rate"] is not None
                      and h["error_rate"] > monitor.max_error_rate)
                     or (monitor.max_latency_p95_ms is not None and h["latency_p95_ms"] is not None
                         and h["latency_p95_ms"] > monitor.max_latency_p95_ms))
    created, repeated, retrain_alerts = [], [], []
    with db.unit_of_work() as s:
        check = MonitorCheck(
            monitor_id=monitor.id, deployment_id=dep.id, model_version_id=dep.model_version_id,
            reference_dataset_version_id=figures.get("reference_dataset_version_id"), started_at=started,
            triggered_by=triggered_by, status=figures["status"], error=figures["error"], window_start=w.start,
            window_end=w.end, n_rows=h["volume"], n_reference_rows=figures.get("n_reference_rows", 0),
            dataset_drifted=None if not drift else drift["dataset_drifted"],
            drift_share=None if not drift else drift["drift_share"],
            n_drifted_columns=None if not drift else drift["number_of_drifted_columns"],
            n_columns=None if not drift else drift["number_of_columns"],
            prediction_drifted=None if not drift or not drift.get("prediction") else drift["prediction"]["drifted"],
            drift=drift or ({"note": figures["drift_note"]} if figures.get("drift_note") else {}),
            performance=figures["performance"], kpis=figures["kpis"], kpi_status=_worst_kpi(figures["kpis"]),
            health=h, health_status="unknown" if not h["volume"] else ("breach" if health_breach else "ok"),
            label_coverage=lab["coverage"], n_unlabelled=lab["n_unlabelled"], label_delay_p50_s=lab["delay_p50_s"],
            label_delay_max_s=lab["delay_max_s"],
        )
        s.add(check)
        s.flush()
        for name, c in (drift or {}).get("columns", {}).items():
            s.add(MonitorCheckColumn(check_id=check.id, column=name, column_type=c.get("column_type", ""),
                                     method=c["method"], score=c["score"], threshold=c["threshold"],
                                     drifted=c["drifted"]))
        if drift and drift.get("prediction"):
            c = drift["prediction"]
            s.add(MonitorCheckColumn(check_id=check.id, column="(prediction)", column_type=c.get("column_type", ""),
                                     method=c["method"], score=c["score"], threshold=c["threshold"],
                                     drifted=c["drifted"]))
        for b in _breaches_for_check(monitor, dep, check, figures):
            alert, is_new = _raise_alert(s, b)
            if is_new:
                created.append(alert.id)
                _notify_alert(s, alert, members)
                _queue_webhook(s, alert)
                if b.kind in ("drift", "kpi_missed") and monitor.retraining_policy != "off":
                    retrain_alerts.append(alert.id)
            else:
                repeated.append(alert.id)
        check.finished_at = utcnow()
        check.duration_ms = (time.perf_counter() - t0) * 1000
        s.add(check)
        audit.record(s, actor=Actor.system() if triggered_by == "system" else Actor(None, triggered_by, "ops"),
                     action="monitor.check", entity_type="deployment", entity_id=dep.id,
                     summary=f"checked {dep.name} ({monitor.name}): {check.status}, {check.n_rows:,} predictions, "
                             f"drift {'yes' if check.dataset_drifted else 'no'}, KPIs {check.kpi_status}, "
                             f"{len(created)} new alert(s)" + (f"; {skipped_note}" if skipped_note else ""),
                     after={"check_id": check.id, "alerts": created})
        check_id = check.id
    proposals = []
    for alert_id in retrain_alerts[:1]:  # one retraining per check is plenty
        p = _propose_retraining(db, monitor=monitor, dep=dep, alert_id=alert_id)
        if p is not None:
            proposals.append(p)
    return {
        "monitor": monitor.name, "monitor_id": monitor.id, "check_id": check_id, "status": figures["status"],
        "error": figures["error"], "n_rows": h["volume"],
        "window_start": w.start.isoformat() if w.start else None, "window_end": w.end.isoformat(),
        "dataset_drifted": None if not drift else drift["dataset_drifted"],
        "drift_share": None if not drift else drift["drift_share"],
        "drifted_columns": [] if not drift else [c for c, v in drift["columns"].items() if v["drifted"]],
        "kpi_status": _worst_kpi(figures["kpis"]), "kpis": {k["name"]: k["status"] for k in figures["kpis"]},
        "metrics": figures["performance"]["metrics"], "health": h, "labels": lab,
        "alerts_opened": created, "alerts_repeated": repeated,
        "proposals": [p["id"] for p in proposals], "runs_queued": [p["run_id"] for p in proposals if p["run_id"]],
        "skipped_rows": figures["unreadable_rows"], "skipped_labelled_rows": figures["unreadable_labelled_rows"],
        "duration_ms": round((time.perf_counter() - t0) * 1000, 1),
    }


def run_monitor(db: Database, *, deployment_name: str, actor: Actor | None = None, as_of: datetime | None = None,
                monitor_id: int | None = None) -> dict[str, Any]:
    """Run the deployment's enabled monitors now (or only `monitor_id`); returns a JSON-safe summary.

    `actor` None means the scheduler (system). `as_of` replays a check as of an earlier moment (demo, tests).
    A run that fails raises a "monitoring_down" alert of its own (kept open, deduplicated, while runs keep
    failing) and re-raises; the next run that succeeds resolves it. Every caller — the scheduled job, the
    CLI, "Run a check now" — goes through here, so none of them can fail silently.
    """
    if actor is not None:
        require(actor, "monitor.run")
    with db.read() as s:
        _deployment(s, deployment_name)  # an unknown name is the caller's mistake, not monitoring being down
    try:
        summary = _run_monitor(db, deployment_name=deployment_name, actor=actor, as_of=as_of, monitor_id=monitor_id)
    except Exception as exc:
        try:
            _monitoring_down(db, deployment_name, exc)
        except Exception:  # noqa: BLE001 - the database may be what failed; the job's own error still says why
            log.exception("could not record that monitoring of %s failed", deployment_name)
        raise
    if summary["checks"]:
        _monitoring_back(db, deployment_name)
    return summary


def _monitoring_down_key(deployment_name: str) -> str:
    return f"monitoring_down:{deployment_name}"


def _monitoring_down(db: Database, deployment_name: str, exc: BaseException) -> None:
    """Open (or bump) the alert saying the deployment is no longer monitored, with the failure's reason."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    reason = f"{type(exc).__name__}: {reason}"[:300]
    now = utcnow()
    with db.read() as s:
        use_case_id = _deployment(s, deployment_name).use_case_id
    members: list[str] = []
    if use_case_id is not None:
        from . import usecases

        members = usecases.member_usernames(db, use_case_id, roles=("ops", "data_scientist"))
    with db.unit_of_work() as s:
        dep = _deployment(s, deployment_name)
        existing = s.exec(select(Alert).where(Alert.open_key == _monitoring_down_key(deployment_name))).first()
        since = _aware(existing.created_at) if existing is not None else now
        last_ok = s.exec(select(func.max(MonitorCheck.started_at))
                         .where(MonitorCheck.deployment_id == dep.id)).one()
        b = Breach(kind="monitoring_down", severity="critical", key=_monitoring_down_key(deployment_name),
                   title=f"Monitoring is not running for {deployment_name} since {since:%Y-%m-%d %H:%M} UTC: {reason}",
                   detail=f"checks of {deployment_name} fail, so drift, KPIs and health are not being watched. "
                          f"Last error: {reason}. Last stored check: "
                          f"{_aware(last_ok).isoformat() if last_ok else 'none'}. Fix the cause and run "
                          f"`python -m mlops_core monitor run --deployment {deployment_name}`; this alert resolves "
                          "itself at the next check that succeeds.",
                   evidence={"error": reason, "failed_at": now.isoformat(),
                             "last_check_at": _aware(last_ok).isoformat() if last_ok else None},
                   link=f"{PAGE_DEPLOYMENT}?deployment={deployment_name}", deployment_id=dep.id,
                   deployment_name=deployment_name, use_case_id=dep.use_case_id)
        alert, is_new = _raise_alert(s, b)
        if is_new:
            _notify_alert(s, alert, members)
            _queue_webhook(s, alert)
            audit.record(s, actor=Actor.system(), action="alert.open", entity_type="alert", entity_id=alert.id,
                         summary=f"monitoring of {deployment_name} failed: {reason}")


def _monitoring_back(db: Database, deployment_name: str) -> None:
    """Resolve the "monitoring_down" alert of the deployment, if one is open: a check succeeded again."""
    key = _monitoring_down_key(deployment_name)
    with db.read() as s:
        if s.exec(select(Alert.id).where(Alert.open_key == key)).first() is None:
            return  # the usual case: nothing to resolve, no write
    with db.unit_of_work() as s:
        row = s.exec(select(Alert).where(Alert.open_key == key)).first()
        if row is None:
            return
        before = {"state": row.state}
        row.state = "resolved"
        row.open_key = None
        row.resolved_by = "system"
        row.resolved_at = utcnow()
        row.resolve_note = f"a check of {deployment_name} succeeded again at {row.resolved_at:%Y-%m-%d %H:%M} UTC"
        s.add(row)
        audit.record(s, actor=Actor.system(), action="alert.resolve", entity_type="alert", entity_id=row.id,
                     summary=f"resolved {row.kind} alert: {row.title}", before=before,
                     after={"state": "resolved", "note": row.resolve_note})


def _run_monitor(db: Database, *, deployment_name: str, actor: Actor | None, as_of: datetime | None,
                 monitor_id: int | None) -> dict[str, Any]:
    as_of = as_of or utcnow()
    _ensure_default_monitor(db, deployment_name)
    advance_retraining(db)
    with db.read() as s:
        dep = _deployment(s, deployment_name)
        q = select(Monitor).where(Monitor.deployment_id == dep.id)
        if monitor_id is not None:
            q = q.where(Monitor.id == monitor_id)
        else:
            q = q.where(col(Monitor.enabled).is_(True))
        monitors = s.exec(q.order_by(Monitor.id)).all()
        s.expunge_all()
    members: list[str] = []
    if dep.use_case_id is not None:
        from . import usecases

        members = usecases.member_usernames(db, dep.use_case_id, roles=("ops", "data_scientist"))
    who = "system" if actor is None else actor.username
    checks = [_run_one(db, m, dep, as_of=as_of, triggered_by=who, members=members) for m in monitors]
    system = check_system_health(db, now=as_of)
    return {
        "deployment": dep.name,
        "model_version_id": dep.model_version_id,
        "as_of": as_of.isoformat(),
        "checks": checks,
        "alerts_opened": [a for c in checks for a in c["alerts_opened"]] + system["alerts_opened"],
        "alerts_repeated": [a for c in checks for a in c["alerts_repeated"]] + system["alerts_repeated"],
        "proposals": [p for c in checks for p in c["proposals"]],
        "runs_queued": [r for c in checks for r in c["runs_queued"]],
    }


def check_system_health(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """Alerts for workers or the scheduler being down and for failed ingestion jobs."""
    now = now or utcnow()
    created, repeated = [], []
    with db.unit_of_work() as s:
        for b in _system_breaches(s, now):
            alert, is_new = _raise_alert(s, b)
            if is_new:
                created.append(alert.id)
                _notify_alert(s, alert, [])
                _queue_webhook(s, alert)
            else:
                repeated.append(alert.id)
    return {"alerts_opened": created, "alerts_repeated": repeated}


# --- checks, for the pages -------------------------------------------------------------------

def list_checks(db: Database, *, deployment_name: str, limit: int = 200) -> list[MonitorCheckPublic]:
    """The latest checks of a deployment, oldest first (for charts)."""
    with db.read() as s:
        dep = _deployment(s, deployment_name)
        rows = s.exec(select(MonitorCheck).where(MonitorCheck.deployment_id == dep.id)
                      .order_by(col(MonitorCheck.started_at).desc(), col(MonitorCheck.id).desc()).limit(limit)).all()
        return [_pub(MonitorCheckPublic, r) for r in reversed(rows)]


def get_check(db: Database, check_id: int) -> MonitorCheckPublic:
    with db.read() as s:
        row = s.get(MonitorCheck, check_id)
        if row is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        return _pub(MonitorCheckPublic, row)


def drift_history(db: Database, *, deployment_name: str, limit: int = 200) -> list[dict[str, Any]]:
    """Per-column drift of the latest checks, straight from the stored scores (nothing recomputed)."""
    with db.read() as s:
        dep = _deployment(s, deployment_name)
        ids = s.exec(select(MonitorCheck.id).where(MonitorCheck.deployment_id == dep.id)
                     .order_by(col(MonitorCheck.started_at).desc()).limit(limit)).all()
        if not ids:
            return []
        rows = s.exec(select(MonitorCheck.id, MonitorCheck.window_end, MonitorCheckColumn.column,
                             MonitorCheckColumn.method, MonitorCheckColumn.score, MonitorCheckColumn.threshold,
                             MonitorCheckColumn.drifted)
                      .join(MonitorCheckColumn, col(MonitorCheckColumn.check_id) == MonitorCheck.id)
                      .where(col(MonitorCheck.id).in_(ids)).order_by(MonitorCheck.window_end)).all()
        return [{"check_id": r[0], "at": _aware(r[1]), "column": r[2], "method": r[3], "score": r[4],
                 "threshold": r[5], "drifted": bool(r[6])} for r in rows]


@dataclass
class DeploymentStatus:
    """One row of the monitoring overview (traffic lights)."""

    deployment: str
    environment: str
    model_version_id: int | None
    last_check_at: datetime | None
    drift: str      # green | amber | red | grey
    kpis: str
    health: str
    open_alerts: int
    n_rows: int
    drift_share: float | None
    kpi_status: str
    error_rate: float | None
    latency_p95_ms: float | None


def overview(db: Database) -> list[DeploymentStatus]:
    """Every deployment with its latest check and open alerts, in a handful of SQL queries."""
    from ..models.deployments import Deployment

    with db.read() as s:
        deps = s.exec(select(Deployment).order_by(Deployment.name)).all()
        latest_ids = s.exec(select(func.max(MonitorCheck.id)).group_by(MonitorCheck.deployment_id)).all()
        latest = {c.deployment_id: c for c in s.exec(select(MonitorCheck).where(col(MonitorCheck.id).in_(
            [i for i in latest_ids if i is not None]))).all()} if latest_ids else {}
        open_counts = dict(s.exec(select(Alert.deployment_id, func.count()).where(col(Alert.state) != "resolved")
                                  .group_by(Alert.deployment_id)).all())
        out = []
        for d in deps:
            c = latest.get(d.id)
            if c is None:
                drift = kpis = health = "grey"
            else:
                drift = "grey" if c.dataset_drifted is None else ("red" if c.dataset_drifted else (
                    "amber" if (c.n_drifted_columns or 0) > 0 else "green"))
                kpis = {"met": "green", "warning": "amber", "missed": "red"}.get(c.kpi_status, "grey")
                health = {"ok": "green", "breach": "red"}.get(c.health_status, "grey")
            out.append(DeploymentStatus(
                deployment=d.name, environment=d.environment, model_version_id=d.model_version_id,
                last_check_at=_aware(c.started_at) if c else None, drift=drift, kpis=kpis, health=health,
                open_alerts=int(open_counts.get(d.id, 0)), n_rows=c.n_rows if c else 0,
                drift_share=c.drift_share if c else None, kpi_status=c.kpi_status if c else "unknown",
                error_rate=(c.health or {}).get("error_rate") if c else None,
                latency_p95_ms=(c.health or {}).get("latency_p95_ms") if c else None))
        return out


def live_health(db: Database, *, deployment_name: str, hours: int = 24, buckets: int = 24) -> list[dict[str, Any]]:
    """Volume, error rate and p95 latency per time bucket over the last `hours` (the live chart).

    The bucket of each prediction is computed in SQL from its timestamp. Postgres then groups and takes the
    percentile in SQL (a few dozen rows come back); SQLite, which has no percentile function, streams
    (bucket, error flag, latency) through Core into numpy — no ORM rows, no datetime parsing per row."""
    import numpy as np

    from ..models.deployments import Prediction

    end = utcnow()
    start = end - timedelta(hours=hours)
    width_s = hours * 3600.0 / buckets
    with db.read() as s:
        dep = _deployment(s, deployment_name)
        conn = s.connection()
        if conn.dialect.name == "postgresql":
            conds = (Prediction.deployment_id == dep.id, Prediction.created_at >= start)
            is_err = sa.case((Prediction.status != "ok", 1), else_=0)
            # timestamps are stored as UTC without a zone: epoch of the nominal value = UTC epoch
            bucket = sa.func.floor((sa.extract("epoch", Prediction.created_at) - start.timestamp()) / width_s)
            rows = conn.execute(select(bucket, func.count(), func.sum(is_err),
                                       sa.func.percentile_cont(0.95).within_group(Prediction.latency_ms))
                                .where(*conds).group_by(bucket)).all()
            out = _empty_buckets(start, width_s, buckets)
            for b, n, n_err, p95 in rows:
                o = out[min(buckets - 1, max(0, int(b)))]
                o["volume"] += int(n)
                o["errors"] += int(n_err or 0)
                p = _finite(p95)  # (two groups share a bucket only when clamped at the edges: keep the worse)
                if p is not None:
                    o["latency_p95_ms"] = p if o["latency_p95_ms"] is None else max(o["latency_p95_ms"], p)
        else:
            # julianday() of the stored UTC text (2440587.5 is the Julian day of the Unix epoch); read with the
            # driver's cursor, as _sqlite_latencies does: SQLAlchemy's per-row result objects would dominate.
            to_db = conn.dialect.type_descriptor(sa.DateTime()).bind_processor(conn.dialect) or (lambda v: v)
            cur = conn.connection.driver_connection.cursor()
            try:
                cur.execute("SELECT CAST(((julianday(created_at) - 2440587.5) * 86400.0 - ?) / ? AS INTEGER), "
                            "status != 'ok', latency_ms FROM predictions WHERE deployment_id = ? AND created_at >= ?",
                            [start.timestamp(), width_s, dep.id, to_db(start)])
                rows = cur.fetchall()
            finally:
                cur.close()
            out = _empty_buckets(start, width_s, buckets)
            if rows:
                arr = np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=3 * len(rows)).reshape(-1, 3)
                b = np.clip(arr[:, 0].astype(np.int64), 0, buckets - 1)
                volume = np.bincount(b, minlength=buckets)
                errors = np.bincount(b, weights=arr[:, 1], minlength=buckets)
                order = np.lexsort((arr[:, 2], b))
                lat_sorted, b_sorted = arr[order, 2], b[order]
                bounds = np.searchsorted(b_sorted, np.arange(buckets + 1))
                for i in range(buckets):
                    out[i]["volume"] = int(volume[i])
                    out[i]["errors"] = int(errors[i])
                    if bounds[i + 1] > bounds[i]:
                        out[i]["latency_p95_ms"] = float(np.percentile(lat_sorted[bounds[i]:bounds[i + 1]], 95))
    for o in out:
        o["error_rate"] = o["errors"] / o["volume"] if o["volume"] else None
    return out


def _empty_buckets(start: datetime, width_s: float, buckets: int) -> list[dict[str, Any]]:
    return [{"start": start + timedelta(seconds=i * width_s), "volume": 0, "errors": 0, "latency_p95_ms": None}
            for i in range(buckets)]


# --- evidently report (rendered on demand, stored once) --------------------------------------

def request_report(db: Database, *, actor: Actor, check_id: int) -> dict[str, Any]:
    """Ask the worker to render the evidently report of a check. Returns {"report_key"} when it exists
    already, else {"job_id"} of the render job (deduplicated: two clicks render once)."""
    from .. import jobs

    require(actor, "audit.read")  # everyone may read reports
    with db.unit_of_work() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        if check.report_key:
            return {"report_key": check.report_key, "job_id": None}
        if check.status != "ok" or not check.drift or "columns" not in check.drift:
            raise ValidationError(f"check {check_id} has no drift result to report on ({check.status}"
                                  f"{': ' + check.error if check.error else ''})")
        job_id = jobs.enqueue(s, kind="monitor_report", payload={"check_id": check_id}, max_attempts=2,
                              dedupe_key=f"monitor_report:{check_id}")
        return {"report_key": None, "job_id": job_id}


def render_report(db: Database, *, check_id: int) -> str:
    """Render and store the evidently HTML report of a check (the "monitor_report" job). Idempotent."""
    from .. import artifacts
    from ..monitoring.evidently_report import render_drift_report_html

    with db.read() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        if check.report_key:
            return check.report_key
        monitor = s.get(Monitor, check.monitor_id)
        s.expunge_all()
    ref, _, _ = reference_frame(db, model_version_id=check.model_version_id)
    window = Window(start=_aware(check.window_start), end=_aware(check.window_end))
    with db.read() as s:
        cur = load_window_frame(s, deployment_id=check.deployment_id, window=window, columns=list(ref.columns))
    current = _align(cur.drop(columns="__prediction__"), ref)
    columns = [c for c in (monitor.columns or list(ref.columns)) if c in ref.columns]
    html = render_drift_report_html(ref, current, columns=columns, drift_share=monitor.drift_share)
    key = f"monitoring/reports/check-{check_id}.html"
    artifacts.put_bytes(key, html.encode("utf-8"))
    with db.unit_of_work() as s:
        row = s.get(MonitorCheck, check_id)
        row.report_key = key
        s.add(row)
    return key


def report_html(db: Database, *, check_id: int) -> str | None:
    """The stored report of a check, or None when it was not rendered yet. Its inlined data is escaped
    again on the way out, so a report stored before that escaping existed cannot run a logged value."""
    from .. import artifacts
    from ..monitoring.evidently_report import escape_report_data

    with db.read() as s:
        check = s.get(MonitorCheck, check_id)
        if check is None:
            raise NotFound(f"monitor check {check_id} does not exist")
        key = check.report_key
    if not key:
        return None
    return escape_report_data(artifacts.get_bytes(key).decode("utf-8"))[0]


# --- retraining loop -------------------------------------------------------------------------

def _champion_plan(db: Database, dep) -> dict[str, Any]:
    """The champion's run config and the newest trainable version of its dataset."""
    from ..models.experiments import Run

    if dep.model_version_id is None:
        raise ValidationError(f"deployment {dep.name} serves no model, so there is nothing to retrain")
    with db.read() as s:
        mv = _model_version_row(s, dep.model_version_id)
        run = s.get(Run, mv.run_id)
        if run is None:
            raise ValidationError(f"the run behind model version {mv.id} is gone; retrain from the experiments page")
        config = dict(run.config or {})
        base_dataset = run.dataset_version_id or mv.dataset_version_id
        plan = {"champion_model_version_id": mv.id, "base_run_id": run.id, "config": config,
                "use_case_id": dep.use_case_id or run.use_case_id}
    if not config:
        raise ValidationError(f"run {plan['base_run_id']} (the champion's) was logged from code and has no UI config "
                              "to re-run; retrain it from your notebook or CI")
    dataset_version_id = base_dataset
    if base_dataset is not None:
        from . import datasets

        base = datasets.get_version(db, base_dataset)
        newest = datasets.latest_trainable_version(db, base.dataset_id)
        if newest is not None:
            dataset_version_id = newest.id
    plan["dataset_version_id"] = dataset_version_id
    return plan


def _propose_retraining(db: Database, *, monitor: Monitor, dep, alert_id: int) -> dict[str, Any] | None:
    try:
        plan = _champion_plan(db, dep)
    except Exception as exc:  # noqa: BLE001 - the alert stands; the proposal explains why it cannot retrain
        plan = {"error": str(exc)}
    with db.unit_of_work() as s:
        alert = s.get(Alert, alert_id)
        p = RetrainingProposal(
            alert_id=alert_id, deployment_id=dep.id, deployment_name=dep.name, use_case_id=dep.use_case_id,
            policy=monitor.retraining_policy, state="proposed" if "error" not in plan else "failed",
            champion_model_version_id=plan.get("champion_model_version_id"), base_run_id=plan.get("base_run_id"),
            dataset_version_id=plan.get("dataset_version_id"), config=plan.get("config") or {},
            reason=f"{alert.kind}: {alert.title}"[:1000], note=plan.get("error", "")[:2000])
        s.add(p)
        s.flush()
        audit.record(s, actor=Actor.system(), action="retraining.propose", entity_type="retraining_proposal",
                     entity_id=p.id, summary=f"proposed retraining {dep.name} because of alert {alert_id}",
                     after={"alert_id": alert_id, "policy": p.policy, "dataset_version_id": p.dataset_version_id})
        if p.state == "proposed" and monitor.retraining_policy == "propose":
            from . import collab

            collab.notify(s, roles=("ops",), kind="retraining", title=f"Retraining proposed for {dep.name}",
                          entity_type="retraining_proposal", entity_id=p.id, from_username="system")
        pid = p.id
    if monitor.retraining_policy == "automatic" and "error" not in plan:
        return _start_retraining(db, proposal_id=pid, decided_by="system (automatic policy)")
    return {"id": pid, "run_id": None}


def _start_retraining(db: Database, *, proposal_id: int, decided_by: str, note: str = "") -> dict[str, Any]:
    from . import experiments

    with db.read() as s:
        p = s.get(RetrainingProposal, proposal_id)
        s.expunge(p)
    try:
        # The run is started on behalf of the decision (ops may decide, only data science may start
        # runs by hand), so it is started as the system and linked to the alert that caused it.
        run = experiments.start_run(db, actor=Actor.system(), use_case_id=p.use_case_id,
                                    dataset_version_id=p.dataset_version_id, config=dict(p.config),
                                    triggered_by_alert_id=p.alert_id)
        run_id, state, err = run.id, "training", ""
    except Exception as exc:  # noqa: BLE001 - recorded on the proposal, shown on the alerts page
        run_id, state, err = None, "failed", f"could not start the run: {exc}"
    with db.unit_of_work() as s:
        row = s.get(RetrainingProposal, proposal_id)
        row.run_id = run_id
        row.state = state
        row.decided_by = row.decided_by or decided_by
        row.decided_at = row.decided_at or utcnow()
        row.note = "; ".join(x for x in (note, err) if x)[:2000]
        s.add(row)
        audit.record(s, actor=Actor.system(), action="retraining.start", entity_type="retraining_proposal",
                     entity_id=proposal_id, summary=f"retraining run {run_id} for {row.deployment_name} "
                     f"(alert {row.alert_id}): {state}", after={"run_id": run_id, "state": state, "error": err})
    return {"id": proposal_id, "run_id": run_id}


def decide_proposal(db: Database, *, actor: Actor, proposal_id: int, approve: bool, note: str = "") -> RetrainingProposalPublic:
    """Approve (queue the retraining run) or reject a proposal."""
    require(actor, "retraining.decide")
    note = (note or "").strip()
    with db.unit_of_work() as s:
        p = s.get(RetrainingProposal, proposal_id)
        if p is None:
            raise NotFound(f"retraining proposal {proposal_id} does not exist")
        if p.state != "proposed":
            raise Conflict(f"retraining proposal {proposal_id} is already {p.state}"
                           f"{' (by ' + p.decided_by + ')' if p.decided_by else ''}; reload the page")
        if not approve and not note:
            raise ValidationError("say in a note why the retraining is rejected")
        p.state = "approved" if approve else "rejected"
        p.decided_by = actor.username
        p.decided_at = utcnow()
        p.note = note[:2000]
        s.add(p)
        audit.record(s, actor=actor, action="retraining.approve" if approve else "retraining.reject",
                     entity_type="retraining_proposal", entity_id=p.id,
                     summary=f"{'approved' if approve else 'rejected'} retraining of {p.deployment_name} "
                             f"(alert {p.alert_id})", before={"state": "proposed"}, after={"state": p.state, "note": note})
    if approve:
        _start_retraining(db, proposal_id=proposal_id, decided_by=actor.username, note=note)
    return get_proposal(db, proposal_id)


def get_proposal(db: Database, proposal_id: int) -> RetrainingProposalPublic:
    with db.read() as s:
        p = s.get(RetrainingProposal, proposal_id)
        if p is None:
            raise NotFound(f"retraining proposal {proposal_id} does not exist")
        return _pub(RetrainingProposalPublic, p)


def list_proposals(db: Database, *, states: Iterable[str] | None = None, alert_id: int | None = None,
                   limit: int = 200) -> list[RetrainingProposalPublic]:
    with db.read() as s:
        q = select(RetrainingProposal)
        if states:
            q = q.where(col(RetrainingProposal.state).in_(list(states)))
        if alert_id is not None:
            q = q.where(RetrainingProposal.alert_id == alert_id)
        rows = s.exec(q.order_by(col(RetrainingProposal.id).desc()).limit(limit)).all()
        return [_pub(RetrainingProposalPublic, r) for r in rows]


def advance_retraining(db: Database) -> list[int]:
    """Move retraining runs on: a finished run is registered and requested for deployment on the
    alerting endpoint; when its gates pass it is a challenger awaiting ops' approval."""
    from ..models.experiments import Run

    moved = []
    with db.read() as s:
        rows = s.exec(select(RetrainingProposal.id, RetrainingProposal.run_id)
                      .where(RetrainingProposal.state == "training")).all()
        runs = {r.id: r.status for r in s.exec(select(Run).where(col(Run.id).in_([x[1] for x in rows if x[1]]))).all()} \
            if rows else {}
    for pid, run_id in rows:
        status = runs.get(run_id)
        if status in ("failed", "cancelled"):
            _set_proposal(db, pid, state="failed", note=f"retraining run {run_id} {status}")
            moved.append(pid)
        elif status == "finished":
            try:
                _promote_retrained(db, pid, run_id)
            except Exception as exc:  # noqa: BLE001 - shown on the proposal; the loop goes on
                _set_proposal(db, pid, state="finished", note=f"run {run_id} finished but could not be "
                              f"requested for deployment: {exc}"[:2000])
            moved.append(pid)
    return moved


def _set_proposal(db: Database, pid: int, **values) -> None:
    with db.unit_of_work() as s:
        row = s.get(RetrainingProposal, pid)
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)


def _promote_retrained(db: Database, pid: int, run_id: int) -> None:
    from ..models.experiments import ModelVersion, RegisteredModel
    from . import deployments, registry

    with db.read() as s:
        p = s.get(RetrainingProposal, pid)
        champion = s.get(ModelVersion, p.champion_model_version_id) if p.champion_model_version_id else None
        model_name = s.get(RegisteredModel, champion.model_id).name if champion else f"{p.deployment_name}-model"
        dep_name = p.deployment_name
        from ..models.deployments import Deployment

        env = s.exec(select(Deployment.environment).where(Deployment.id == p.deployment_id)).one()
    system = Actor.system()
    mv = registry.register_model(db, actor=system, run_id=run_id, name=model_name)
    req = deployments.request_deployment(db, actor=system, model_version_id=mv.id, deployment_name=dep_name,
                                         environment=env)
    # The business sign-off is requested with the deployment request itself: pending, it is part of the
    # approval the challenger now awaits, not a reason to drop it.
    failed = [g.gate for g in getattr(req, "gates", []) if g.status == "failed" and "signoff" not in g.gate]
    gates = {"request_id": req.id, "failed": failed,
             "gates": [{"gate": g.gate, "status": g.status} for g in getattr(req, "gates", [])]}
    state = "challenger" if not failed else "finished"
    note = (f"passes the deployment gates: a challenger awaiting sign-off and approval (request {req.id})" if not failed
            else f"did not pass the gates: {', '.join(failed)}")
    _set_proposal(db, pid, state=state, model_version_id=mv.id, gate_summary=gates, note=note)


# --- job handlers (listed in mlops_core/jobs/handlers.py) --------------------------------------

def monitor_job(ctx) -> dict[str, Any]:
    """Kind "monitor": payload {"deployment": name, "monitor_id"?: id}; fired by the monitor's schedule."""
    name = ctx.payload.get("deployment")
    if not name:
        raise ValidationError("a monitor job needs the deployment name in its payload")
    ctx.progress(0.05, f"checking {name}")
    summary = run_monitor(ctx.db, deployment_name=name, monitor_id=ctx.payload.get("monitor_id"))
    ctx.progress(1.0, f"{len(summary['alerts_opened'])} new alert(s)")
    return summary


def webhook_job(ctx) -> dict[str, Any]:
    """Kind "alert_webhook": payload {"alert_id"}; posts the alert, retrying with back-off."""
    sent = deliver_webhook(ctx.db, alert_id=int(ctx.payload["alert_id"]))
    return {"sent": sent}


def report_job(ctx) -> dict[str, Any]:
    """Kind "monitor_report": payload {"check_id"}; renders and stores the evidently report."""
    ctx.progress(0.1, "rendering the evidently report")
    key = render_report(ctx.db, check_id=int(ctx.payload["check_id"]))
    return {"report_key": key}


# --- for the pages: queue a run, infrastructure ------------------------------------------------

def enqueue_monitor_run(db: Database, *, actor: Actor, deployment_name: str) -> int:
    """Queue a check of the deployment now (the page never runs it on its request thread)."""
    from .. import jobs

    require(actor, "monitor.run")
    with db.unit_of_work() as s:
        dep = _deployment(s, deployment_name)
        job_id = jobs.enqueue(s, kind="monitor", payload={"deployment": dep.name, "requested_by": actor.username})
        audit.record(s, actor=actor, action="monitor.run", entity_type="deployment", entity_id=dep.id,
                     summary=f"asked for a check of {dep.name} now (job {job_id})")
        return job_id


@dataclass
class Infrastructure:
    workers: list[Any]
    scheduler_holder: str | None
    scheduler_expires_at: datetime | None
    scheduler_alive: bool
    job_counts: dict[str, int]
    failed_jobs: list[Any]
    this_process: dict[str, float]


def infrastructure_status(db: Database) -> Infrastructure:
    """Worker processes (with the CPU/memory their heartbeats report), the scheduler lease, and the queue."""
    import os

    import psutil

    from .. import jobs
    from ..models.jobs import Lease

    workers = jobs.list_workers(db, include_stopped=True, limit=50)
    with db.read() as s:
        lease = s.get(Lease, "scheduler")
        holder, expires = (lease.holder, _aware(lease.expires_at)) if lease else (None, None)
    from ..jobs import queue

    counts = queue.count_jobs_by_status(db)
    failed = jobs.list_jobs(db, status="failed", limit=20)
    proc = psutil.Process(os.getpid())
    return Infrastructure(
        workers=workers, scheduler_holder=holder, scheduler_expires_at=expires,
        scheduler_alive=bool(expires and expires > utcnow()), job_counts=counts, failed_jobs=failed,
        this_process={"cpu_percent": psutil.cpu_percent(interval=None), "rss_mb": proc.memory_info().rss / 2**20,
                      "memory_percent": psutil.virtual_memory().percent, "cpus": psutil.cpu_count() or 1})
