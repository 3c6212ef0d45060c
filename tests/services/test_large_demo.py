"""The large-workspace generator (issue 8) at 1/1000 of its size, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from mlops_core.demo import DemoContext
from mlops_core.demo.large import METRICS_PER_RUN, SIZES, seed_large
from mlops_core.models import (
    AuditEvent,
    Dataset,
    DatasetVersion,
    Deployment,
    Kpi,
    ModelVersion,
    Prediction,
    Run,
    RunLatestMetric,
    RunMetric,
    UseCase,
)

FACTOR = 0.001


def _count(db, model, *where) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(model.__table__).where(*where)).scalar_one()


def _context(people) -> DemoContext:
    by_name = {a.username: a for a in people.values()}
    return DemoContext(actors=by_name, password="unused", scale="large")


def test_large_workspace_at_a_thousandth_has_every_kind_of_row_and_opens_like_the_real_one(db, people):
    from mlops_core.services import datasets, experiments

    ctx = _context(people)
    counts = seed_large(db, ctx, factor=FACTOR)

    expected = {k: max(1, round(v * FACTOR)) for k, v in SIZES.items()}
    assert counts["use_cases"] == _count(db, UseCase) == expected["use_cases"]
    assert _count(db, Kpi) == 3 * expected["use_cases"]
    assert counts["dataset_versions"] == _count(db, DatasetVersion) == expected["dataset_versions"]
    assert _count(db, Dataset) >= 1
    assert counts["runs"] == _count(db, Run) == expected["runs"]
    finished = _count(db, Run, Run.__table__.c.status == "finished")
    assert _count(db, RunMetric) == _count(db, RunLatestMetric) == finished * METRICS_PER_RUN
    assert counts["model_versions"] == _count(db, ModelVersion) == expected["model_versions"]
    assert counts["deployments"] == _count(db, Deployment) == expected["deployments"]
    assert counts["predictions"] == _count(db, Prediction) == expected["predictions"]
    assert _count(db, Prediction, Prediction.__table__.c.labelled_at.is_not(None)) > 0
    p = Prediction.__table__.c  # ok rows carry a positive-class score in [0, 1] (live roc_auc), errors none
    assert _count(db, Prediction, p.status == "ok", p.score.is_(None)) == 0
    assert _count(db, Prediction, p.status != "ok", p.score.is_not(None)) == 0
    assert _count(db, Prediction, (p.score < 0) | (p.score > 1)) == 0
    assert counts["audit_events"] == _count(db, AuditEvent) == expected["audit_events"]
    assert counts["alerts"] >= 1 and counts["monitor_checks"] >= 30
    assert any("large workspace" in line for line in ctx.lines)

    # Estimated KPIs like the small demo's (issue 17): CBPE per check with a band, judged on the use case's
    # model KPIs, by region; labels come back two days late, so the latest check's KPIs are estimates only.
    from mlops_core.services import monitoring

    with db.read() as s:
        dep_name, uc_id = s.execute(select(Deployment.__table__.c.name, Deployment.__table__.c.use_case_id)).first()
    est = monitoring.list_estimates(db, deployment_name=dep_name)
    assert len(est) >= 25 and all(e.method == "cbpe" and not e.reason for e in est)
    last = est[-1]
    recall = last.estimates["recall"]
    assert recall["lower"] < recall["value"] < recall["upper"]
    assert 0.6 < last.estimates["accuracy"]["value"] < 0.95  # the generator serves the truth 80% of the time
    assert {k["metric"] for k in last.kpis} == {"roc_auc", "recall"} and last.n_labelled == 0
    assert {sg["column"] for sg in last.segments} == {"region"} and sum(sg["volume"] for sg in last.segments) == last.n
    lights = monitoring.estimated_kpis_many(db, use_case_ids=[uc_id])[uc_id]
    assert {e.metric for e in lights} == {"roc_auc", "recall"}

    # A dataset version opens (real Parquet) and a run shows its test metrics, as on their pages.
    with db.read() as s:
        version_id = s.execute(select(DatasetVersion.__table__.c.id).limit(1)).scalar_one()
        run_id = s.execute(select(Run.__table__.c.id).where(Run.__table__.c.status == "finished").limit(1)).scalar_one()
    frame = datasets.load_frame(db, version_id)
    assert len(frame) > 0 and "churned" in frame.columns
    run = experiments.get_run(db, run_id)
    assert len(run.metrics) == METRICS_PER_RUN // 2 and "roc_auc" in run.metrics

    # A second call leaves the workspace as it is.
    assert seed_large(db, ctx, factor=FACTOR) == {}
    assert _count(db, UseCase) == expected["use_cases"]
    assert "already generated" in ctx.lines[-1]
