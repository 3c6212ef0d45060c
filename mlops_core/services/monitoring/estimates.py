"""Estimated KPIs (before labels arrive) and segments of a check (issue 17).

The estimators are pure (`mlops_core.monitoring.estimation`); here they get their data:
- the *reference*: the model's test split (rebuilt from the run's config: same seed, share and
  stratification as training), scored by the model, with its labels. CBPE calibrates on it; DLE trains its
  loss model on it. Cached per process (model and dataset versions are immutable).
- the *window*: the logged predictions of the check's window with their score, label (if it had arrived by
  the window's end) and, when needed, inputs.

Two check kinds (registered in `kinds.CHECKS`):
- `EstimatedKpiCheck`: estimates over the window, the watched KPIs judged on them ("estimated met/missed"),
  and an alert on an estimated miss when the monitor asks for it (`alert_on_estimated`) and the labels are
  too few for a realized verdict;
- `SegmentCheck`: per segment of the monitor's `segments` columns: volume, drift of the score, realized
  and estimated KPIs, worst first; a segment below a KPI raises its own alert.
Both write one `MonitorCheckEstimate` row per check (`store`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import col, select

from ... import artifacts, kpi as kpi_rules
from ...config import get_settings
from ...db import Database
from ...errors import ValidationError
from ...models.deployments import Prediction
from ...models.deployments import Deployment
from ...models.estimates import CheckEstimatePublic, EstimatedKpiPublic, MonitorCheckEstimate
from ...models.experiments import ModelVersion, Run
from ...models.monitoring import MonitorCheck
from ...monitoring.estimation import CBPE, DLE, EstimationResult, EstimationUnavailable, unavailable
from ...monitoring.figures import performance_metrics, prediction_value
from .. import usecases
from .._common import deployment_by_name, get_or_404
from .alerts import Breach
from .kinds import MIN_LABELLED_FOR_KPIS, CheckKind
from .windows import UNREADABLE, _loads_many, _window_conds

log = logging.getLogger(__name__)


def finite_number(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


ESTIMABLE = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("mae", "rmse"),
}
KPI_RANK = {"unknown": 0, "met": 1, "warning": 2, "missed": 3}
MISSING = "(missing)"
MAX_REFERENCE_ROWS = 50_000


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a check figure, stored as a dict or a pydantic model."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


# --- reference ---------------------------------------------------------------------------------

_REF_CACHE: dict[tuple, dict[str, Any]] = {}


def reference(db: Database, model_version_id: int) -> dict[str, Any]:
    """{"task", "cbpe" | "dle" | None, "reason", "frame", "scores", "labels", "predictions"} of the model's
    test split (the labelled reference the estimators learn from). Never raises: `reason` says what is missing."""
    key = (db.url, artifacts.store_id(), model_version_id)
    if key in _REF_CACHE:
        return _REF_CACHE[key]
    out: dict[str, Any] = {"task": "", "estimator": None, "reason": "", "frame": None}
    try:
        out.update(_build_reference(db, model_version_id))
    except (EstimationUnavailable, ValidationError) as exc:
        out["reason"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - an estimate is optional; drift and realized KPIs still run
        log.warning("no estimation reference for model version %s: %s", model_version_id, exc)
        out["reason"] = f"the reference could not be prepared: {exc}"[:500]
    if len(_REF_CACHE) > 16:
        _REF_CACHE.clear()
    _REF_CACHE[key] = out
    return out


def _build_reference(db: Database, model_version_id: int) -> dict[str, Any]:
    import pandas as pd

    from ...ml import training
    from ...ml.scoring import label_key, positive_index, positive_label, predict_scored
    from .. import datasets, registry

    with db.read() as s:
        mv = get_or_404(s, ModelVersion, model_version_id, "model version")
        run = s.get(Run, mv.run_id)
        task, target, dv = mv.task or "", mv.target or "", mv.dataset_version_id
        cfg = dict(run.config or {}) if run is not None else {}
        schema = [c.get("name") for c in (mv.input_schema or []) if c.get("name")]
    if task not in ESTIMABLE:
        raise EstimationUnavailable(
            f"the model's task is {task or 'not recorded'}: only classifiers and regressors are estimated"
        )
    if dv is None or not target:
        raise EstimationUnavailable(
            "the model version has no training dataset or target, so there is no labelled reference"
        )
    frame = datasets.load_frame(db, dv)
    if target not in frame.columns:
        raise EstimationUnavailable(f"the target {target!r} is not in the training dataset")
    features = [c for c in (cfg.get("features") or schema) if c in frame.columns]
    data = frame[frame[target].notna()]
    X = training.prepare_features(data[features])
    y = data[target]
    if task == "classification" and (y.dtype == object or pd.api.types.is_bool_dtype(y)):
        y = y.astype(str)
    split = "all training rows (the run kept no holdout: the scores may be over-confident)"
    if cfg.get("split", "holdout") == "holdout" and cfg.get("test_size"):
        from sklearn.model_selection import train_test_split

        try:
            _, X, _, y = train_test_split(
                X,
                y,
                test_size=float(cfg["test_size"]),
                random_state=int(cfg.get("seed", 0)),
                stratify=y if task == "classification" else None,
            )
            split = "the model's test split"
        except ValueError as exc:
            log.info("test split not rebuilt: %s", exc)
    if len(X) > MAX_REFERENCE_ROWS:
        X = X.sample(MAX_REFERENCE_ROWS, random_state=0)
        y = y.loc[X.index]
    model = registry.load_model(db, model_version_id)
    raw = data.loc[X.index, features].reset_index(drop=True)
    out: dict[str, Any] = {"task": task, "frame": raw, "basis": split}
    if task == "classification":
        pos = positive_index(model)
        preds, scores = predict_scored(model, X, pos)
        out["predictions"] = [label_key(v) for v in preds]
        out["labels"] = [label_key(v) for v in y]
        if scores is None:
            raise EstimationUnavailable(
                "the model gives no probability for a positive class (a multiclass model or one without "
                "predict_proba): no scores are logged, so performance cannot be estimated"
            )
        out["scores"] = np.asarray(scores, dtype=float)
        classes = [label_key(c) for c in model.classes_]
        out["positive"] = positive_label(classes)
        out["estimator"] = CBPE.fit(out["scores"], out["labels"], classes=classes, positive=out["positive"])
    else:
        preds = np.asarray(model.predict(X), dtype=float)
        out["predictions"] = preds
        out["labels"] = np.asarray(y, dtype=float)
        out["estimator"] = DLE.fit(raw, preds, out["labels"])
    return out


# --- window ------------------------------------------------------------------------------------


def window_rows(db: Database, *, deployment_id: int, window, inputs: bool, columns: list[str] = ()) -> dict[str, Any]:
    """The window's ok predictions as arrays: predictions (and their label keys), scores (NaN: none), labels
    (None: not yet arrived by the window's end) and the logged inputs as a DataFrame: every input when
    `inputs`, else only `columns` (read with the database's JSON functions, without decoding whole records)."""
    import pandas as pd

    from ...monitoring.estimation import label_keys

    labelled = sa.case((col(Prediction.labelled_at) <= window.end, sa.cast(Prediction.label, sa.Text)), else_=None)
    cols = [sa.cast(Prediction.prediction, sa.Text), Prediction.score, labelled]
    if inputs:
        cols.append(sa.cast(Prediction.inputs, sa.Text))
    else:
        cols += [Prediction.inputs[c].as_string() for c in columns]
    conds = _window_conds(deployment_id, window) + [Prediction.status == "ok"]
    with db.read() as s:
        result = s.connection().execute(select(*cols).where(*conds))
        try:
            # the driver's rows as they are (text, floats): SQLAlchemy's per-row processing would cost more
            # than the whole estimate on a 100k-row window
            rows = result.cursor.fetchall() if result.cursor is not None else result.all()
        finally:
            result.close()
    preds, _ = _loads_many([r[0] for r in rows])
    labels, _ = _loads_many([r[2] for r in rows])
    if inputs:
        raw, _ = _loads_many([r[3] for r in rows], empty="{}")
        frame = pd.DataFrame.from_records([x if isinstance(x, dict) else {} for x in raw])
    else:
        frame = pd.DataFrame({c: [r[3 + k] for r in rows] for k, c in enumerate(columns)}, index=range(len(rows)))
    values = [None if p is UNREADABLE else prediction_value(p) for p in preds]
    return {
        "predictions": values,
        "keys": label_keys(values) if values else np.array([], dtype=object),
        "raw_predictions": preds,
        "scores": np.array([np.nan if r[1] is None else float(r[1]) for r in rows], dtype=float),
        "labels": [None if lab is UNREADABLE else lab for lab in labels],
        "frame": frame,
    }


def _estimate(ref: dict[str, Any], win: dict[str, Any], idx=None) -> EstimationResult:
    """The estimator's result over the window (or the rows `idx` of it)."""
    task = ref.get("task") or ""
    metrics = ESTIMABLE.get(task, ())
    est = ref.get("estimator")
    if est is None:
        return unavailable(
            "cbpe" if task == "classification" else "dle", ref.get("reason") or "no estimate", 0, metrics
        )
    preds = win["predictions"] if idx is None else [win["predictions"][i] for i in idx]
    if task == "classification":
        scores = win["scores"] if idx is None else win["scores"][idx]
        if len(scores) and np.isnan(scores).all():
            return unavailable(
                "cbpe", "no scores were logged in the window, so performance cannot be estimated", 0, metrics
            )
        keys = win["keys"] if idx is None else win["keys"][idx]
        return est.estimate(scores, predictions=keys, metrics=metrics, keyed=True)
    frame = win["frame"] if idx is None else win["frame"].iloc[idx]
    return est.estimate(frame, preds, metrics=metrics)


def _kpi_verdicts(db: Database, monitor, result: EstimationResult, realized: dict[str, Any], n_labelled: int):
    """The watched model KPIs judged on the estimates (and the realized value when there are enough labels)."""
    out = []
    if monitor.use_case_id is None:
        return out
    for k in usecases.model_kpis(db, monitor.use_case_id):
        if monitor.watch_kpis and k.name not in monitor.watch_kpis:
            continue
        e = result.get(k.metric)
        real = realized.get(k.metric)
        out.append(
            {
                "kpi_id": k.id,
                "name": k.name,
                "metric": k.metric,
                "direction": k.direction,
                "target": k.target,
                "warning": k.warning,
                "value": e.value,
                "lower": e.lower,
                "upper": e.upper,
                "reason": e.reason,
                "status": kpi_rules.evaluate(k.direction, k.target, k.warning, e.value),
                "realized": real,
                "realized_status": kpi_rules.evaluate(k.direction, k.target, k.warning, real)
                if n_labelled >= MIN_LABELLED_FOR_KPIS
                else "unknown",
                "n_labelled": n_labelled,
            }
        )
    return out


def _worst(statuses) -> str:
    worst = "unknown"
    for st in statuses:
        if KPI_RANK.get(st, 0) > KPI_RANK.get(worst, 0):
            worst = st
    return worst


# --- segments ----------------------------------------------------------------------------------


def _bin_label(edges: list[float], i: int) -> str:
    if i == 0:
        return f"< {edges[0]:g}"
    if i == len(edges):
        return f">= {edges[-1]:g}"
    return f"{edges[i - 1]:g} to < {edges[i]:g}"


def segment_values(series, bins: list[float] | None) -> np.ndarray:
    """Each row's segment label: the value as text (categorical) or its bin; "(missing)" when absent."""
    import pandas as pd

    s = pd.Series(series).reset_index(drop=True)
    if bins:
        edges = sorted(float(b) for b in bins)
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        idx = np.searchsorted(edges, num, side="right")
        labels = np.array([_bin_label(edges, i) for i in range(len(edges) + 1)], dtype=object)
        out = labels[np.minimum(idx, len(edges))]
        out[np.isnan(num)] = MISSING
        return out
    missing = s.isna().to_numpy()
    out = s.astype(str).to_numpy(dtype=object)
    out[missing] = MISSING
    return out


def validate_segments(segments: Any) -> dict[str, list[float] | None]:
    """{column: None (categorical) | sorted bin edges (numeric)}; ValidationError says what is wrong."""
    if not segments:
        return {}
    if not isinstance(segments, dict):
        raise ValidationError(
            'segments are {column: null} or {column: [edges]}, e.g. {"region": null, "age": [30, 50]}'
        )
    out: dict[str, list[float] | None] = {}
    for name, bins in segments.items():
        if not str(name).strip():
            raise ValidationError("a segment column needs a name")
        if bins in (None, [], ""):
            out[str(name)] = None
            continue
        try:
            edges = sorted(float(b) for b in bins)
        except (TypeError, ValueError):
            raise ValidationError(f"the bins of segment column {name!r} must be numbers (got {bins!r})") from None
        if any(not math.isfinite(e) for e in edges) or len(set(edges)) != len(edges):
            raise ValidationError(f"the bins of segment column {name!r} must be distinct finite numbers")
        out[str(name)] = edges
    return out


def _score_drift(ref_scores, cur_scores) -> float | None:
    """Kolmogorov-Smirnov distance between the reference's and the segment's scores (None without scores)."""
    a = np.asarray(ref_scores, dtype=float)
    b = np.asarray(cur_scores, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def compute_segments(db: Database, monitor, ref: dict[str, Any], win: dict[str, Any]) -> list[dict[str, Any]]:
    """Per segment: volume, score drift, realized and estimated KPIs; worst first."""
    segs = validate_segments(getattr(monitor, "segments", None))
    if not segs:
        return []
    min_rows = get_settings().segment_min_rows
    task = ref.get("task") or ""
    kpis = []
    if monitor.use_case_id is not None:
        kpis = [
            k
            for k in usecases.model_kpis(db, monitor.use_case_id)
            if not monitor.watch_kpis or k.name in monitor.watch_kpis
        ]
    frame = win["frame"]
    ref_frame = ref.get("frame")
    labelled_idx = np.array([lab is not None for lab in win["labels"]], dtype=bool)
    out = []
    for column, bins in segs.items():
        values = segment_values(frame[column] if column in frame.columns else [None] * len(frame), bins)
        ref_values = None
        if ref_frame is not None and column in ref_frame.columns and ref.get("scores") is not None:
            ref_values = segment_values(ref_frame[column], bins)
        for value in sorted(set(values.tolist())):
            idx = np.flatnonzero(values == value)
            row: dict[str, Any] = {"column": column, "segment": value, "volume": int(len(idx))}
            lab_idx = idx[labelled_idx[idx]]
            row["n_labelled"] = int(len(lab_idx))
            if len(idx) < min_rows:
                row.update(status="too few", kpis=[], drift=None, worst="unknown")
                row["note"] = f"only {len(idx)} rows in the window (fewer than {min_rows}): too few to judge"
                out.append(row)
                continue
            row["status"] = "ok"
            if ref_values is not None:
                row["drift"] = _score_drift(ref["scores"][ref_values == value], win["scores"][idx])
            else:
                row["drift"] = None
            labelled = [(win["raw_predictions"][i], win["labels"][i], 0.0) for i in lab_idx]
            realized = performance_metrics(task, labelled) if labelled else {}
            result = _estimate(ref, win, idx)
            row["kpis"] = []
            for k in kpis:
                e = result.get(k.metric)
                real = realized.get(k.metric)
                use_real = len(lab_idx) >= MIN_LABELLED_FOR_KPIS and real is not None
                value_used = real if use_real else e.value
                row["kpis"].append(
                    {
                        "name": k.name,
                        "metric": k.metric,
                        "direction": k.direction,
                        "target": k.target,
                        "realized": real,
                        "estimated": e.value,
                        "lower": e.lower,
                        "upper": e.upper,
                        "basis": "realized" if use_real else "estimated",
                        "value": value_used,
                        "status": kpi_rules.evaluate(k.direction, k.target, k.warning, value_used),
                    }
                )
            row["worst"] = _worst(k["status"] for k in row["kpis"])
            out.append(row)

    def gap(r):
        gaps = [
            (k["target"] - k["value"]) if k["direction"] == ">=" else (k["value"] - k["target"])
            for k in r.get("kpis") or []
            if k["value"] is not None
        ]
        return max(gaps) if gaps else -math.inf

    out.sort(key=lambda r: (r["status"] == "too few", -KPI_RANK.get(r["worst"], 0), -gap(r), r["column"], r["segment"]))
    return out


# --- importance x drift -------------------------------------------------------------------------

P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
_IMPORTANCE_CACHE: dict[tuple, dict[str, float]] = {}


def drift_intensity(method: str, score: float | None, threshold: float) -> float | None:
    """How far a column's drift statistic is past its threshold, on one scale for every method: 1 at the
    threshold, above 1 when drifted (p-value tests: threshold / p; distances: distance / threshold), capped at 10."""
    if score is None or threshold is None or threshold <= 0:
        return None
    if method in P_VALUE_METHODS:
        return float(min(10.0, threshold / max(score, 1e-12)))
    return float(min(10.0, max(0.0, score) / threshold))


def model_importance(db: Database, model_version_id: int) -> dict[str, float]:
    """{input column: permutation importance on the test split} of the model version's run ({} if none)."""
    key = (db.url, artifacts.store_id(), model_version_id)
    if key in _IMPORTANCE_CACHE:
        return _IMPORTANCE_CACHE[key]
    from .. import experiments

    out: dict[str, float] = {}
    try:
        with db.read() as s:
            mv = s.get(ModelVersion, model_version_id)
            run_id = mv.run_id if mv is not None else None
        plots = experiments.plot_data(db, run_id) if run_id is not None else None
        if plots is not None:
            out = {p.feature: float(p.importance) for p in plots.permutation_importance}
    except Exception as exc:  # noqa: BLE001 - ranking is a nicety; drift itself is stored anyway
        log.info("no permutation importance for model version %s: %s", model_version_id, exc)
    if len(_IMPORTANCE_CACHE) > 64:
        _IMPORTANCE_CACHE.clear()
    _IMPORTANCE_CACHE[key] = out
    return out


def drift_ranking(drift: Any, importance: dict[str, float]) -> list[dict[str, Any]]:
    """The drift check's columns ranked by importance x drift intensity (drift in a feature that matters
    first); columns without an importance rank by drift alone, after those with one."""
    columns = _get(drift, "columns", {}) or {}
    rows = []
    for name, c in columns.items():
        intensity = drift_intensity(_get(c, "method", ""), _get(c, "score"), _get(c, "threshold"))
        imp = importance.get(name)
        rows.append(
            {
                "column": name,
                "method": _get(c, "method", ""),
                "score": _get(c, "score"),
                "drifted": bool(_get(c, "drifted", False)),
                "intensity": intensity,
                "importance": imp,
                "rank_score": None if imp is None or intensity is None else max(0.0, imp) * intensity,
            }
        )
    rows.sort(key=lambda r: (r["rank_score"] is None, -(r["rank_score"] or 0.0), -(r["intensity"] or 0.0), r["column"]))
    return rows


# --- check kinds -------------------------------------------------------------------------------


class EstimatedKpiCheck(CheckKind):
    """KPIs estimated without labels (CBPE / DLE) over the window; alerts on an estimated miss if asked."""

    kind = "kpi_estimated_missed"
    fields = ("alert_on_estimated", "segments", "drift_min_importance")

    def validate(self, values: dict[str, Any]) -> None:
        values["segments"] = validate_segments(values.get("segments"))
        need = values.get("drift_min_importance")
        if need is not None and not (finite_number(need) and float(need) >= 0):
            raise ValidationError(
                "the importance x drift a drift alert needs is a number >= 0 (e.g. 0.05), or empty for any drift"
            )

    def measure(self, db: Database, monitor, dep, figures: dict[str, Any]) -> None:
        figures["estimation"] = None
        figures["estimated_kpis"] = []
        figures["segments"] = []
        figures["drift_ranking"] = []
        if _get(figures["health"], "volume", 0) == 0 or dep.model_version_id is None:
            return
        if figures.get("drift"):
            figures["drift_ranking"] = drift_ranking(figures["drift"], model_importance(db, dep.model_version_id))
        ref = reference(db, dep.model_version_id)
        if ref.get("estimator") is None and not getattr(monitor, "segments", None):
            # nothing to estimate with: say why without reading the window again
            task = ref.get("task") or ""
            figures["estimation"] = unavailable(
                "dle" if task == "regression" else "cbpe",
                ref.get("reason") or "no estimate",
                0,
                ESTIMABLE.get(task, ()),
            )
            return
        segs = validate_segments(getattr(monitor, "segments", None))
        win = window_rows(
            db,
            deployment_id=dep.id,
            window=figures["window"],
            inputs=ref.get("task") == "regression",
            columns=list(segs),
        )
        if not win["predictions"]:
            return
        result = _estimate(ref, win)
        figures["estimation"] = result
        perf = figures["performance"]
        figures["estimated_kpis"] = _kpi_verdicts(
            db, monitor, result, dict(_get(perf, "metrics", {}) or {}), int(_get(perf, "n_labelled", 0) or 0)
        )
        try:
            figures["segments"] = compute_segments(db, monitor, ref, win)
        except Exception as exc:  # noqa: BLE001 - a segment failure must not stop the check
            log.warning("segments of %s failed: %s", dep.name, exc)
            figures["segments"] = [{"status": "failed", "note": f"segments could not be computed: {exc}"[:500]}]

    def breaches(self, monitor, dep, check, figures, base):
        if not getattr(monitor, "alert_on_estimated", False):
            return []
        return [
            Breach(
                kind="kpi_estimated_missed",
                severity="warning",
                key=f"kpi_estimated_missed:{dep.id}:{k['name']}",
                title=f"KPI estimated missed on {dep.name}: {k['name']} ≈ {k['value']:.3f} "
                f"(band {k['lower']:.3f}-{k['upper']:.3f}, target {k['direction']} {k['target']:g})",
                detail=f"{k['metric']} estimated from the scores of {check.n_rows:,} predictions (labels: "
                f"{k['n_labelled']:,}, too few for a realized verdict) is {k['value']:.4f}; the use case needs "
                f"{k['direction']} {k['target']:g}. This is an estimate: confirm when labels arrive.",
                evidence={"check_id": check.id, "kpi": k, "estimated": True},
                **base,
            )
            for k in figures.get("estimated_kpis") or []
            if k["status"] == "missed" and k["realized_status"] == "unknown" and k["value"] is not None
        ]

    def store(self, s, check: MonitorCheck, figures: dict[str, Any]) -> None:
        result: EstimationResult | None = figures.get("estimation")
        kpis = figures.get("estimated_kpis") or []
        if result is None and not figures.get("segments") and not figures.get("drift_ranking"):
            return
        s.add(
            MonitorCheckEstimate(
                check_id=check.id,
                deployment_id=check.deployment_id,
                monitor_id=check.monitor_id,
                method=result.method if result else "",
                reason=(result.reason if result else "")[:1000],
                n=result.n if result else 0,
                estimates={k: e.to_dict() for k, e in result.estimates.items()} if result else {},
                kpis=kpis,
                kpi_status=_worst(k["status"] for k in kpis),
                segments=figures.get("segments") or [],
                drift_ranking=figures.get("drift_ranking") or [],
            )
        )


class SegmentCheck(CheckKind):
    """A segment below a KPI (realized, or estimated when the monitor alerts on estimates) raises its alert."""

    kind = "segment_kpi_missed"

    def breaches(self, monitor, dep, check, figures, base):
        out = []
        for seg in figures.get("segments") or []:
            if seg.get("status") != "ok":
                continue
            for k in seg.get("kpis") or []:
                if k["status"] != "missed" or k["value"] is None:
                    continue
                if k["basis"] == "estimated" and not getattr(monitor, "alert_on_estimated", False):
                    continue
                est = " (estimated)" if k["basis"] == "estimated" else ""
                sentence = f"{k['metric']} for {seg['column']}={seg['segment']} is {k['value']:.2f}{est}, target {k['target']:g}"
                out.append(
                    Breach(
                        kind="segment_kpi_missed",
                        severity="warning",
                        key=f"segment_kpi_missed:{dep.id}:{seg['column']}={seg['segment']}:{k['name']}",
                        title=f"{dep.name}: {sentence}",
                        detail=f"{sentence} over {seg['volume']:,} predictions ({seg['n_labelled']:,} labelled) "
                        f"in the window; KPI {k['name']} needs {k['direction']} {k['target']:g}.",
                        evidence={
                            "check_id": check.id,
                            "segment": {kk: seg[kk] for kk in ("column", "segment", "volume")},
                            "kpi": k,
                        },
                        **base,
                    )
                )
        return out


# --- reads -------------------------------------------------------------------------------------


def list_estimates(db: Database, *, deployment_name: str, limit: int = 200) -> list[CheckEstimatePublic]:
    """The estimates of a deployment's latest checks, oldest first, with each check's realized metrics."""
    with db.read() as s:
        dep = deployment_by_name(s, deployment_name)
        rows = s.exec(
            select(MonitorCheckEstimate, MonitorCheck)
            .join(MonitorCheck, MonitorCheck.id == MonitorCheckEstimate.check_id)
            .where(MonitorCheckEstimate.deployment_id == dep.id)
            .order_by(col(MonitorCheck.started_at).desc(), col(MonitorCheck.id).desc())
            .limit(limit)
        ).all()
        out = []
        for est, check in reversed(rows):
            perf = check.performance or {}
            out.append(
                CheckEstimatePublic(
                    check_id=est.check_id,
                    deployment_id=est.deployment_id,
                    monitor_id=est.monitor_id,
                    started_at=check.started_at,
                    window_end=check.window_end,
                    n_labelled=int(perf.get("n_labelled") or 0),
                    realized=dict(perf.get("metrics") or {}),
                    method=est.method,
                    reason=est.reason,
                    n=est.n,
                    estimates=est.estimates or {},
                    kpis=est.kpis or [],
                    kpi_status=est.kpi_status,
                    segments=est.segments or [],
                    drift_ranking=est.drift_ranking or [],
                )
            )
        return out


def _latest_estimates(s, deployment_ids: list[int]) -> dict[int, MonitorCheckEstimate]:
    """The latest check estimate of each deployment (one query)."""
    if not deployment_ids:
        return {}
    latest = (
        select(sa.func.max(MonitorCheckEstimate.id))
        .where(col(MonitorCheckEstimate.deployment_id).in_(deployment_ids))
        .group_by(MonitorCheckEstimate.deployment_id)
    )
    rows = s.exec(select(MonitorCheckEstimate).where(col(MonitorCheckEstimate.id).in_(latest))).all()
    return {r.deployment_id: r for r in rows}


def estimated_kpi_status(db: Database, *, deployment_id: int) -> str | None:
    """The latest check's estimated KPI verdict of a deployment (None when none was estimated)."""
    with db.read() as s:
        row = _latest_estimates(s, [deployment_id]).get(deployment_id)
        if row is None or not row.kpis:
            return None
        return row.kpi_status


def estimated_kpis_many(db: Database, *, use_case_ids: list[int]) -> dict[int, list[EstimatedKpiPublic]]:
    """Per use case, its deployed models' KPIs as estimated by their latest check where labels were too few
    for a realized verdict (the portfolio cards' "estimated" lights); two queries for the whole page."""
    out: dict[int, list[EstimatedKpiPublic]] = {uid: [] for uid in use_case_ids}
    if not use_case_ids:
        return out
    with db.read() as s:
        deps = s.exec(
            select(Deployment)
            .where(col(Deployment.use_case_id).in_(use_case_ids), col(Deployment.model_version_id).is_not(None))
            .order_by(col(Deployment.name))
        ).all()
        latest = _latest_estimates(s, [d.id for d in deps])
        for d in deps:
            est = latest.get(d.id)
            for k in (est.kpis if est is not None else None) or []:
                if k.get("value") is None or k.get("status") not in ("met", "warning", "missed"):
                    continue
                if k.get("realized_status") not in (None, "unknown"):
                    continue  # enough labels: the realized light speaks
                out[d.use_case_id].append(
                    EstimatedKpiPublic(
                        use_case_id=d.use_case_id,
                        deployment_name=d.name,
                        kpi_name=k["name"],
                        metric=k["metric"],
                        value=float(k["value"]),
                        status=k["status"],
                        n_labelled=int(k.get("n_labelled") or 0),
                    )
                )
    return out
