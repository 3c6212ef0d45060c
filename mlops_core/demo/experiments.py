"""Demo seeder for stage 3: sara trains four real runs on the validated customers version, the best is
registered as "churn-classifier" v1 (alias champion), the runner-up as v2 (alias challenger).

Runs are queued exactly as the Experiments page queues them, then executed in this process by the same
job runner the worker uses, so every number the demo shows comes from a real fit.
"""

from __future__ import annotations

from ..db import Database
from ..jobs import queue, runner
from ..services import datasets, experiments, registry

DEMO_ALGORITHMS = {
    "logistic_regression": {},
    "random_forest": {"n_estimators": 60, "max_depth": 8},
    "gradient_boosting": {"n_estimators": 80},
    "hist_gradient_boosting": {"max_iter": 80},
}
MODEL_NAME = "churn-classifier"


def _use_case_id(db: Database, ctx, version) -> int | None:
    for key in ("churn_use_case_id", "use_case_id"):
        if ctx.data.get(key):
            return int(ctx.data[key])
    return getattr(version, "use_case_id", None)


def seed(db: Database, ctx) -> None:
    version_id = ctx.data.get("customers_trainable_version_id")
    if version_id is None:
        ctx.lines.append("experiments: no trainable customers version in the demo; no runs trained")
        return
    version = datasets.get_version(db, int(version_id))
    use_case_id = _use_case_id(db, ctx, version)
    if use_case_id is None:
        ctx.lines.append("experiments: the customers dataset has no use case; no runs trained")
        return
    sara = ctx.actors["sara"]
    runs = experiments.start_runs(
        db,
        actor=sara,
        use_case_id=use_case_id,
        dataset_version_id=int(version_id),
        config={"target": "churned", "split": "holdout", "test_size": 0.25, "seed": 42},
        algorithms=list(DEMO_ALGORITHMS),
        params_by_algorithm=DEMO_ALGORITHMS,
        name="churn baseline",
    )
    wanted = {r.job_id for r in runs}
    while wanted:
        job = queue.claim_next(db, worker="demo-seeder", kinds=["train"])
        if job is None:
            break
        runner.execute(
            db, job_id=job.id, kind=job.kind, payload=job.payload, worker="demo-seeder", attempt=job.attempts
        )
        wanted.discard(job.id)
    done = [experiments.get_run(db, r.id) for r in runs]
    finished = sorted((r for r in done if r.status == "finished"), key=lambda r: -r.metrics.get("roc_auc", 0.0))
    ctx.data["run_ids"] = [r.id for r in done]
    if not finished:
        ctx.lines.append("experiments: demo runs did not finish; see the Experiments page for the errors")
        return
    best = finished[0]
    v1 = registry.register_model(
        db,
        actor=sara,
        run_id=best.id,
        name=MODEL_NAME,
        alias="champion",
        description="Predicts which customers will cancel in the next month.",
        intended_use="Rank customers by churn risk for the monthly retention campaign.",
        limitations="Trained on one region's historical customers; not for pricing decisions.",
    )
    ctx.data["churn_model_version_id"] = v1.id
    ctx.data["churn_run_id"] = best.id
    if len(finished) > 1:
        v2 = registry.register_model(
            db,
            actor=sara,
            run_id=finished[1].id,
            name=MODEL_NAME,
            alias="challenger",
            intended_use="Challenger to the champion.",
        )
        ctx.data["churn_challenger_version_id"] = v2.id
    ctx.lines.append(
        f"experiments: {len(done)} runs trained; {MODEL_NAME} v1 (champion) from run {best.id}, "
        f"roc_auc {best.metrics.get('roc_auc', float('nan')):.3f}"
    )
