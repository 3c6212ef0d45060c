"""Estimated KPIs for the large workspace (issue 17), like the small demo's checks carry them.

The large workspace's checks are bulk rows (`large._monitoring`), not replayed through `run_monitor`, so
their estimates are computed here from each deployment's own logged predictions, with the same pure
estimator (CBPE) and the same segment code (`estimates.compute_segments`) the checks use:
- the labelled *reference* of a deployment is its labelled predictions of the first days (before any
  drift), as a test split would be for a trained model; CBPE calibrates its scores on them;
- each check's window (the day before it) is estimated from its scores, judged against the use case's
  model KPIs (estimated met/missed next to the realized verdict when enough labels had arrived by the
  window's end), and split by region, worst segment first.
The checks' realized performance and KPI verdicts are rewritten from the same windows (they were cloned
from one template), so the chart's realized line is the deployment's own.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import bindparam, select, update

from .. import kpi as kpi_rules
from ..db import Database
from ..models.deployments import Deployment, Prediction
from ..models.estimates import MonitorCheckEstimate
from ..models.monitoring import MonitorCheck
from ..models.usecases import Kpi
from ..monitoring.estimation import CBPE, EstimationUnavailable, label_keys
from ..monitoring.figures import performance_metrics
from ..services.monitoring.estimates import ESTIMABLE, _worst, compute_segments
from ..services.monitoring.kinds import MIN_LABELLED_FOR_KPIS

REFERENCE_DAYS = 9  # a deployment's first days of labelled traffic calibrate its scores
SEGMENTS = {"region": None}


def _roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """roc_auc of 0/1 labels against positive-class scores (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _times(values) -> np.ndarray:
    """UTC datetimes as naive datetime64 (the driver gives text on SQLite, datetimes on Postgres; None: never)."""
    import pandas as pd

    return pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.tz_localize(None).to_numpy()


def _read(db: Database, deployment_id: int) -> dict[str, np.ndarray]:
    """The deployment's ok predictions, oldest first (the driver's rows as they are: SQLAlchemy's per-row
    processing would cost more than the estimates)."""
    t = Prediction.__table__.c
    q = select(
        t.created_at,
        sa.cast(t.prediction, sa.Text),
        t.score,
        sa.cast(t.label, sa.Text),
        t.labelled_at,
        t.inputs["region"].as_string(),
    ).where(t.deployment_id == deployment_id, t.status == "ok")
    with db.read() as s:
        result = s.connection().execute(q.order_by(t.created_at))
        try:
            rows = result.cursor.fetchall() if result.cursor is not None else result.all()
        finally:
            result.close()
    labels = [r[3] for r in rows]
    labelled_at = _times([r[4] for r in rows])
    return {
        "at": _times([r[0] for r in rows]),
        "pred": np.array([int(float(r[1])) for r in rows], dtype=int),
        "score": np.array([float(r[2]) for r in rows], dtype=float),
        "label": np.array([-1 if v in (None, "null") else int(float(v)) for v in labels], dtype=int),
        "labelled_at": np.where(np.isnat(labelled_at), np.datetime64("2200-01-01", "ns"), labelled_at),
        "region": np.array([r[5] for r in rows], dtype=object),
    }


def _kpis_of(db: Database) -> dict[int, list[Kpi]]:
    with db.read() as s:
        rows = s.execute(select(Kpi).where(Kpi.kind == "model", Kpi.metric.is_not(None))).scalars().all()
        out: dict[int, list[Kpi]] = {}
        for k in rows:
            s.expunge(k)
            out.setdefault(k.use_case_id, []).append(k)
        return out


def seed_estimates(db: Database, ctx, check_ids: list[int], checks: list[dict[str, Any]]) -> int:
    """Estimates (and honest realized figures) for the large workspace's bulk checks; returns rows written."""
    import pandas as pd

    t0 = time.monotonic()
    by_dep: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for cid, chk in zip(check_ids, checks):
        by_dep.setdefault(chk["deployment_id"], []).append((cid, chk))
    with db.read() as s:
        use_case = dict(
            s.execute(select(Deployment.id, Deployment.use_case_id).where(Deployment.id.in_(list(by_dep)))).all()
        )
    kpis_by_uc = _kpis_of(db)
    metrics = ESTIMABLE["classification"]
    estimates, check_updates = [], []
    for dep_id, dep_checks in by_dep.items():
        data = _read(db, dep_id)
        if len(data["at"]) == 0:
            continue
        first = min(np.datetime64(c["window_start"].replace(tzinfo=None)) for _, c in dep_checks)
        ref_mask = (data["at"] < first + np.timedelta64(REFERENCE_DAYS, "D")) & (data["label"] >= 0)
        try:
            cbpe = CBPE.fit(data["score"][ref_mask], data["label"][ref_mask], classes=[0, 1], positive=1)
        except EstimationUnavailable as exc:
            ctx.lines.append(f"large workspace: no estimates for deployment {dep_id}: {exc}")
            continue
        uc = use_case.get(dep_id)
        kpis = kpis_by_uc.get(uc, [])
        ref = {
            "task": "classification",
            "estimator": cbpe,
            "scores": data["score"][ref_mask],
            "frame": pd.DataFrame({"region": data["region"][ref_mask]}),
        }
        monitor = SimpleNamespace(segments=SEGMENTS, use_case_id=uc, watch_kpis=None)
        for cid, chk in dep_checks:
            start = np.datetime64(chk["window_start"].replace(tzinfo=None), "us")
            end = np.datetime64(chk["window_end"].replace(tzinfo=None), "us")
            idx = np.flatnonzero((data["at"] >= start) & (data["at"] < end))
            if len(idx) == 0:
                continue
            preds = data["pred"][idx]
            arrived = (data["label"][idx] >= 0) & (data["labelled_at"][idx] <= end)
            labels = [int(v) if ok else None for v, ok in zip(data["label"][idx], arrived)]
            lab = np.flatnonzero(arrived)
            realized = performance_metrics("classification", [(int(preds[i]), labels[i], 0.0) for i in lab])
            auc = _roc_auc(data["label"][idx][lab], data["score"][idx][lab]) if len(lab) else None
            if auc is not None:
                realized["roc_auc"] = auc
            n_labelled = len(lab)
            result = cbpe.estimate(data["score"][idx], predictions=preds.tolist(), metrics=metrics)
            verdicts, realized_kpis = [], []
            for k in kpis:
                e = result.get(k.metric)
                real = realized.get(k.metric)
                real_status = (
                    kpi_rules.evaluate(k.direction, k.target, k.warning, real)
                    if n_labelled >= MIN_LABELLED_FOR_KPIS
                    else "unknown"
                )
                common = {"kpi_id": k.id, "name": k.name, "metric": k.metric, "direction": k.direction}
                verdicts.append(
                    {
                        **common,
                        "target": k.target,
                        "warning": k.warning,
                        "value": e.value,
                        "lower": e.lower,
                        "upper": e.upper,
                        "reason": e.reason,
                        "status": kpi_rules.evaluate(k.direction, k.target, k.warning, e.value),
                        "realized": real,
                        "realized_status": real_status,
                        "n_labelled": n_labelled,
                    }
                )
                realized_kpis.append(
                    {**common, "target": k.target, "warning": k.warning, "value": real, "status": real_status}
                )
            win = {
                "predictions": preds.tolist(),
                "keys": label_keys(preds.tolist()),
                "raw_predictions": preds.tolist(),
                "scores": data["score"][idx],
                "labels": labels,
                "frame": pd.DataFrame({"region": data["region"][idx]}),
            }
            estimates.append(
                {
                    "check_id": cid,
                    "deployment_id": dep_id,
                    "monitor_id": chk["monitor_id"],
                    "created_at": chk["finished_at"],
                    "method": result.method,
                    "reason": result.reason[:1000],
                    "n": result.n,
                    "estimates": {m: e.to_dict() for m, e in result.estimates.items()},
                    "kpis": verdicts,
                    "kpi_status": _worst(v["status"] for v in verdicts),
                    "segments": compute_segments(db, monitor, ref, win),
                    "drift_ranking": [],
                }
            )
            check_updates.append(
                {
                    "b_id": cid,
                    "b_performance": {"task": "classification", "metrics": realized, "n_labelled": n_labelled},
                    "b_kpis": realized_kpis,
                    "b_kpi_status": _worst(k["status"] for k in realized_kpis),
                    "b_coverage": n_labelled / len(idx),
                    "b_unlabelled": int(len(idx) - n_labelled),
                }
            )
    tc = MonitorCheck.__table__
    with db.engine.begin() as conn:
        for i in range(0, len(estimates), 1000):
            conn.execute(MonitorCheckEstimate.__table__.insert(), estimates[i : i + 1000])
        if check_updates:
            conn.execute(
                update(tc)
                .where(tc.c.id == bindparam("b_id"))
                .values(
                    performance=bindparam("b_performance"),
                    kpis=bindparam("b_kpis"),
                    kpi_status=bindparam("b_kpi_status"),
                    label_coverage=bindparam("b_coverage"),
                    n_unlabelled=bindparam("b_unlabelled"),
                ),
                check_updates,
            )
    ctx.lines.append(
        f"large workspace: {len(estimates):,} check estimates (CBPE, by region) in {time.monotonic() - t0:.0f}s"
    )
    return len(estimates)
