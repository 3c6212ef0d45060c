"""Demo seeder for stage 4: the production deployment `churn`, through the real gates.

sara requests the champion (churn-classifier v1) for production; alice signs off on its evidence;
the KPI gate honestly fails (recall is below its target), so admin overrides it with a reason
(audited) and the version goes live. sara then requests the challenger (v2): that request waits for
alice's sign-off, so the Deployment page and alice's inbox have something to act on. omar creates
an API key, and a little real traffic is scored by the deployed model and logged (stage 5's demo
adds a week of it). ctx.data["churn_deployment_id"], ctx.data["churn_api_key"].
"""

from __future__ import annotations

import time
import uuid

from ..db import Database
from ..errors import DomainError
from ..ml.scoring import jsonable_scores, positive_index, predict_scored
from ..services import apikeys, collab, deployments
from ..services.predictions import log_predictions, prediction_row
from ..serving.schema import RecordValidator, frame_to_records, to_jsonable
from .customers import make_customers

RECENT_REQUESTS = 30


def seed(db: Database, ctx) -> None:
    champion = ctx.data.get("churn_model_version_id")
    if champion is None:
        ctx.lines.append("deployments: no registered churn model in the demo; no deployment seeded")
        return
    sara, alice, omar, admin = (ctx.actors[u] for u in ("sara", "alice", "omar", "admin"))
    try:
        deployments.get_by_name(db, "churn")
        ctx.lines.append("deployments: `churn` already exists; left as it is")
        return
    except DomainError:
        pass
    req = deployments.request_deployment(
        db,
        actor=sara,
        model_version_id=int(champion),
        deployment_name="churn",
        environment="production",
        note="Best roc_auc of the baseline runs; ready for the retention campaign.",
    )
    for so in collab.signoffs_for(db, "model_version", champion):
        if so.status == "pending":
            collab.decide_signoff(
                db,
                actor=alice,
                signoff_id=so.id,
                approve=True,
                reason="Ranking quality is good enough for the campaign pilot.",
                confirm_shortfalls=True,  # she approves the pilot although recall misses its target
            )
    deployments.set_regression_tolerance(db, actor=omar, deployment_name="churn", tolerance=0.02)
    try:
        dep = deployments.deploy(db, actor=omar, request_id=req.id)
        how = "all gates passed"
    except DomainError:
        dep = deployments.deploy(
            db,
            actor=admin,
            request_id=req.id,
            override_reason=(
                "Pilot agreed with alice: recall is below its target, the campaign runs 4 weeks while "
                "the team improves recall."
            ),
        )
        how = "KPI gate overridden by admin (reason audited)"
    ctx.data["churn_deployment_id"] = dep.id
    challenger = ctx.data.get("churn_challenger_version_id")
    if challenger is not None:
        deployments.request_deployment(
            db,
            actor=sara,
            model_version_id=int(challenger),
            deployment_name="churn",
            environment="production",
            note="Runner-up model as the next candidate.",
        )
    _, key = apikeys.create_key(db, actor=omar, deployment_name="churn", name="retention campaign CRM")
    ctx.data["churn_api_key"] = key
    collab.add_comment(
        db,
        actor=omar,
        entity_type="deployment",
        entity_id=dep.id,
        body="Live on /v1/deployments/churn/predict. @sara the challenger request waits for @alice's sign-off.",
    )

    # A little real traffic: records scored by the deployed model itself, logged as API predictions.
    model = deployments.load_model(db, dep.model_version_id)
    mv = deployments._model_version(db, dep.model_version_id)
    validator = RecordValidator(mv["input_schema"])
    records = frame_to_records(make_customers(RECENT_REQUESTS, seed=99), validator.names, limit=RECENT_REQUESTS)
    positive = positive_index(model)
    rows = []
    for rec in records:
        t0 = time.perf_counter()
        labels, scores = predict_scored(model, validator.to_frame([rec]), positive)  # as the scoring service does
        pred, score = to_jsonable(labels)[0], jsonable_scores(scores, 1)[0]
        rows.append(
            prediction_row(
                request_id=uuid.uuid4().hex,
                deployment_id=dep.id,
                model_version_id=dep.model_version_id,
                inputs=rec,
                prediction=pred,
                latency_ms=(time.perf_counter() - t0) * 1000,
                score=score,
            )
        )
    rows.append(
        prediction_row(
            request_id=uuid.uuid4().hex,
            deployment_id=dep.id,
            model_version_id=dep.model_version_id,
            inputs=None,
            prediction=None,
            latency_ms=0.4,
            status="error",
            error="400: record 0: missing columns: contract",
        )
    )
    log_predictions(db, rows)
    ctx.lines.append(
        f"deployments: `churn` (production) serves model version {dep.model_version_id} ({how}); "
        f"{len(rows)} requests logged"
    )
    ctx.lines.append(f"scoring API key for `churn` (shown once): {key}")
