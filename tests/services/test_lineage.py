"""The lineage graph of a use case (issue 18): the served model's lineage by default (through an alert to
the retraining run and the next version), everything on request with runs that produced nothing clustered."""

from __future__ import annotations

from mlops_core.models.experiments import ModelVersion, Run
from mlops_core.models.monitoring import Alert
from mlops_core.services import lineage
from tests.services.monitoring_world import CONFIG, SCHEMA, make_world


def test_served_lineage_by_default_and_clusters_when_showing_everything(db, people):
    w = make_world(db, people)
    with db.unit_of_work() as s:
        for i in range(40):  # runs that produced no model
            s.add(
                Run(
                    name=f"try {i}",
                    use_case_id=w.use_case_id,
                    dataset_version_id=w.dataset_version_id,
                    status="failed" if i % 4 == 0 else "finished",
                    source="ui",
                    task="classification",
                    target="churned",
                    algorithm="logistic_regression",
                    config=dict(CONFIG),
                    created_by="sara",
                )
            )
        a = Alert(
            kind="drift",
            title="Drift on churn",
            deployment_id=w.deployment_id,
            deployment_name="churn",
            use_case_id=w.use_case_id,
            dedupe_key="d1",
            open_key="d1",
        )
        s.add(a)
        s.flush()
        rr = Run(
            name="retrain",
            use_case_id=w.use_case_id,
            dataset_version_id=w.dataset_version_id,
            status="finished",
            source="retraining",
            task="classification",
            target="churned",
            algorithm="logistic_regression",
            config=dict(CONFIG),
            created_by="system",
            triggered_by_alert_id=a.id,
        )
        s.add(rr)
        s.flush()
        mv1 = s.get(ModelVersion, w.model_version_id)
        s.add(
            ModelVersion(
                model_id=mv1.model_id,
                version=2,
                run_id=rr.id,
                use_case_id=w.use_case_id,
                dataset_version_id=w.dataset_version_id,
                artifact_key="models/none2.skops",
                task="classification",
                target="churned",
                input_schema=SCHEMA,
                metrics={},
                created_by="system",
            )
        )
        alert_id, retrain_id = a.id, rr.id

    g = lineage.use_case_lineage(db, w.use_case_id)
    kinds = sorted(n.key.split(":")[0] for n in g.nodes)
    assert kinds == [
        "alert",
        "dataset_version",
        "deployment",
        "model_version",
        "model_version",
        "run",
        "run",
        "use_case",
    ]
    chain = [
        f"use_case:{w.use_case_id}",
        f"dataset_version:{w.dataset_version_id}",
        f"run:{w.run_id}",
        f"model_version:{w.model_version_id}",
        f"deployment:{w.deployment_id}",
        f"alert:{alert_id}",
        f"run:{retrain_id}",
    ]
    for a_, b_ in zip(chain, chain[1:]):
        assert (a_, b_) in g.edges
    assert g.node(f"model_version:{w.model_version_id}").served
    assert g.node(f"dataset_version:{w.dataset_version_id}").entity_id == str(w.dataset_id)  # opens the dataset page

    full = lineage.use_case_lineage(db, w.use_case_id, full=True)
    (cluster,) = [n for n in full.nodes if n.key.startswith("runs:")]
    assert cluster.size == 40 and cluster.detail == "10 failed, 30 finished" and cluster.entity_id is None
    assert len(full.nodes) == len(g.nodes) + 1

    from hub_ui.lineage_ui import figure

    fig = figure(full)
    assert len(fig.data[1].x) == len(full.nodes)
