""" "KPI met / missed" and "deployment rolled back" are events for watchers (issue 18): a run's KPI verdict and a
monitor check's KPI light emit one when they change state, not on every run or check."""

from __future__ import annotations

from sqlmodel import select

from mlops_core.models.monitoring import MonitorCheck
from mlops_core.models.subscriptions import NotificationEvent
from mlops_core.services import deployments, kpi_events, monitoring, usecases
from tests.services import deployments_world, monitoring_world


def _events(db, *kinds):
    with db.read() as s:
        rows = s.exec(select(NotificationEvent).order_by(NotificationEvent.id)).all()
        return [(e.kind, e.entity_type, e.entity_id) for e in rows if not kinds or e.kind in kinds]


def test_run_kpi_verdict_changes_and_a_rollback_are_events(db, people):
    w = deployments_world.make_world(db, people, versions=2, target=0.5)  # two runs, both meet roc_auc >= 0.5
    kpi = _events(db, "kpi_met", "kpi_missed")
    assert [k for k, *_ in kpi] == ["kpi_met"]  # the second run's verdict did not change: no event
    usecases.update_kpi(db, actor=people["business"], kpi_id=w.kpi_id, target=0.999)
    v3 = deployments_world.train_version(db, people, use_case_id=w.use_case_id, dataset_version_id=w.dataset_version_id)
    kpi = _events(db, "kpi_met", "kpi_missed")
    assert [k for k, et, _ in kpi] == ["kpi_met", "kpi_missed"] and kpi[-1][1] == "run"
    assert v3
    usecases.update_kpi(db, actor=people["business"], kpi_id=w.kpi_id, target=0.5)  # so the gates pass

    for mv in w.versions:
        req = deployments.request_deployment(
            db, actor=people["data_scientist"], model_version_id=mv, deployment_name="churn", environment="staging"
        )
        deployments.deploy(db, actor=people["ops"], request_id=req.id)
    dep = deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="complaints")
    assert dep.model_version_id == w.versions[0]
    rb = _events(db, "deployment_rolled_back")
    assert rb == [("deployment_rolled_back", "deployment", str(dep.id))]


def test_a_monitor_checks_kpi_light_emits_when_it_changes_state(db, people):
    world = monitoring_world.make_world(db, people)
    monitoring.configure_monitor(
        db,
        actor=people["ops"],
        deployment_name=world.deployment_name,
        window_kind="last_n",
        window_size=300,
        schedule_seconds=None,
        retraining_policy="off",
    )
    monitoring_world.log_traffic(
        db, world, monitoring_world.customers(300, seed=9), label_share=1.0, correct_share=0.5, seed=4
    )
    first = monitoring.run_monitor(db, deployment_name="churn")
    assert first["checks"][0]["kpi_status"] == "missed"
    monitoring.run_monitor(db, deployment_name="churn")  # still missed: no second event
    assert _events(db, "kpi_met", "kpi_missed") == [("kpi_missed", "deployment", str(world.deployment_id))]

    with db.unit_of_work() as s:  # the light turns green: met, once
        last = s.exec(select(MonitorCheck).order_by(MonitorCheck.id.desc())).first()
        for _ in range(2):
            c = MonitorCheck(
                monitor_id=last.monitor_id,
                deployment_id=world.deployment_id,
                model_version_id=world.model_version_id,
                started_at=last.started_at,
                triggered_by="test",
                status="ok",
                kpi_status="met",
            )
            s.add(c)
            s.flush()
            kpi_events.on_check(s, c, "churn")
    assert [k for k, *_ in _events(db, "kpi_met", "kpi_missed")] == ["kpi_missed", "kpi_met"]
