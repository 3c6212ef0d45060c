"""Demo seeder for stage 5: a week of traffic on the `churn` deployment whose last days drift, late labels
for part of it, omar's monitor, one check per day over the week, the alerts they raised, and a
retraining proposal waiting for ops.

The traffic is scored by the deployed model itself (so predictions, their positive-class scores and the
labels are honest, and the checks show a live roc_auc), and every check is computed by the same
`run_monitor` the scheduler runs, replayed as of the end of each day.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
from sqlmodel import func, select

from ..db import Database, utcnow
from ..errors import DomainError
from ..ml.scoring import jsonable_scores, positive_index, predict_scored
from ..models.deployments import Prediction
from ..services import deployments, monitoring, registry, retraining
from ..services.predictions import log_predictions, prediction_row
from .customers import FEATURES, TARGET, make_customers

DAYS = 7
PER_DAY = 240
# `make_customers` drift of the traffic per day. The champion was trained on the datasets demo's v2
# (drift 0.25), so 0.25 is "like the training data"; the market shifts on day 5.
DRIFT_BY_DAY = [0.25, 0.25, 0.25, 0.25, 1.2, 1.5, 1.8]
LABEL_SHARE = 0.7  # share of predictions whose outcome is ever reported
LABEL_DELAY_DAYS = (1, 3)  # outcomes come back 1 to 3 days after the prediction


def _predictions_count(db: Database, deployment_id: int) -> int:
    with db.read() as s:
        return int(
            s.exec(select(func.count()).select_from(Prediction).where(Prediction.deployment_id == deployment_id)).one()
        )


def seed(db: Database, ctx) -> None:
    try:
        dep = deployments.get_by_name(db, "churn")
    except DomainError:
        ctx.lines.append("monitoring: no `churn` deployment in the demo; no traffic or monitor seeded")
        return
    if dep.model_version_id is None:
        ctx.lines.append("monitoring: `churn` serves no model; no traffic seeded")
        return
    omar = ctx.actors["omar"]
    monitoring.configure_monitor(
        db,
        actor=omar,
        deployment_name="churn",
        window_kind="last_hours",
        window_size=72,
        schedule_seconds=3600,
        retraining_policy="propose",
        max_error_rate=0.05,
        max_latency_p95_ms=250.0,
        min_label_coverage=None,
        # issue 17: KPIs estimated from the scores before labels arrive, alerts on an estimated miss, and
        # per-segment KPIs (longer contracts and some regions fare worse than the rest)
        alert_on_estimated=True,
        segments={"contract": None, "region": None},
    )
    if _predictions_count(db, dep.id) < 100:
        model = registry.load_model(db, dep.model_version_id)
        now = utcnow().replace(minute=0, second=0, microsecond=0)
        start = now - timedelta(days=DAYS)
        rng = np.random.default_rng(2026)
        positive = positive_index(model)
        rows = []
        for day in range(DAYS):
            frame = make_customers(PER_DAY, seed=500 + day, drift=DRIFT_BY_DAY[day])
            x = frame[FEATURES]
            preds, raw_scores = predict_scored(model, x, positive)  # as the scoring service does
            scores = jsonable_scores(raw_scores, len(x))
            records = x.to_dict("records")
            offsets = np.sort(rng.uniform(0, 86400, PER_DAY))
            for i, rec in enumerate(records):
                at = start + timedelta(days=day, seconds=float(offsets[i]))
                err = rng.random() < 0.004
                pred = int(preds[i])  # logged as the scoring service logs it: the served value
                row = prediction_row(
                    request_id=uuid.uuid4().hex,
                    deployment_id=dep.id,
                    model_version_id=dep.model_version_id,
                    inputs=None if err else {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()},
                    prediction=None if err else pred,
                    latency_ms=round(float(rng.gamma(3.0, 6.0)), 2),
                    status="error" if err else "ok",
                    error="column `tenure_months` is missing" if err else "",
                    created_at=at,
                    score=None if err else scores[i],
                )
                if not err and rng.random() < LABEL_SHARE:
                    labelled_at = at + timedelta(days=float(rng.uniform(*LABEL_DELAY_DAYS)))
                    if labelled_at <= now:
                        row["label"] = int(frame[TARGET].iloc[i])
                        row["labelled_at"] = labelled_at
                rows.append(row)
        log_predictions(db, rows)
        ctx.lines.append(
            f"monitoring: {len(rows):,} predictions logged on `churn` over {DAYS} days "
            f"(drifting from day 5), {sum(1 for r in rows if r.get('label') is not None):,} labelled late"
        )
        # One check per day, as the scheduler would have run them, replayed as of each day's end.
        for day in range(1, DAYS + 1):
            monitoring.run_monitor(db, deployment_name="churn", as_of=start + timedelta(days=day))
    n_alerts = len(monitoring.list_alerts(db, states=["open", "acknowledged"]))
    n_props = len(retraining.list_proposals(db, states=["proposed"]))
    ctx.lines.append(
        f"monitoring: omar's monitor on `churn` checked {DAYS} days: {n_alerts} open alert(s), "
        f"{n_props} retraining proposal(s) waiting"
    )
