"""AppTest for the monitoring screens: overview lights, deployment drift/perf/health, alerts, infrastructure."""

from __future__ import annotations

import pytest

from mlops_core.services import monitoring, retraining
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.monitoring_world import customers, log_traffic, make_world


@pytest.fixture
def drifting(sqlite_db):
    """A deployment whose traffic drifted, checked twice, with labels, one drift alert and a proposal."""
    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    monitoring.configure_monitor(
        sqlite_db,
        actor=people["ops"],
        deployment_name="churn",
        window_size=300,
        schedule_seconds=None,
        retraining_policy="propose",
    )
    log_traffic(sqlite_db, world, customers(300, seed=5, drift=1.0), label_share=0.5)
    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    return sqlite_db, people, world


def test_the_overview_shows_a_red_drift_light_and_the_open_alert_count(drifting):
    db, people, _ = drifting
    at = app_as(people["business"], "pages/monitoring.py")
    no_exceptions(at)
    assert "Monitoring" in texts(at)
    table = at.dataframe[0].value
    row = table[table["deployment"] == "churn"].iloc[0]
    assert row["drift"].startswith("breach")  # the red light's word
    assert row["open alerts"] == len(monitoring.list_alerts(db, states=["open", "acknowledged"]))


def test_the_deployment_page_charts_drift_per_column_and_lists_the_checks_columns(drifting):
    db, people, _ = drifting
    at = app_as(people["data_scientist"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    assert "drifted" in texts(at)
    assert len(at.get("plotly_chart")) >= 2
    detail = at.dataframe[0].value
    assert {"age", "monthly_spend", "plan", "support_calls"} <= set(detail["column"])
    # a data scientist reads but cannot change the monitor
    assert by_label(at.button, "Save monitor").disabled


def test_ops_acknowledge_an_alert_with_a_note_on_the_alerts_page(drifting):
    db, people, _ = drifting
    alert = monitoring.list_alerts(db, kind="drift")[0]
    at = app_as(people["ops"], "pages/alerts.py")
    no_exceptions(at)
    assert "Data drift on churn" in "\n".join(e.label for e in at.expander)
    at.text_input(key=f"al_note_{alert.id}").input("checking the new plan mix")
    at.button(key=f"al_ack_{alert.id}").click()
    at.run()
    no_exceptions(at)
    after = monitoring.get_alert(db, alert.id)
    assert (after.state, after.acknowledged_by, after.ack_note) == ("acknowledged", "omar", "checking the new plan mix")
    assert f"Alert #{alert.id} acknowledged." in texts(at)


def test_business_users_read_alerts_but_get_no_acknowledge_button(drifting):
    db, people, _ = drifting
    alert = monitoring.list_alerts(db, kind="drift")[0]
    at = app_as(people["business"], "pages/alerts.py")
    no_exceptions(at)
    assert not [b for b in at.button if b.key == f"al_ack_{alert.id}"]
    assert not [b for b in at.button if b.label == "Approve retraining"]


def test_ops_approve_a_retraining_proposal_and_a_run_is_queued(drifting):
    db, people, _ = drifting
    p = retraining.list_proposals(db)[0]
    at = app_as(people["ops"], "pages/alerts.py")
    # warned before approving: the champion's own data is still the newest (issue 15)
    assert any(w.value.startswith("No newer data than the champion:") for w in at.warning)
    at.button(key=f"prop_ok_{p.id}").click()
    at.run()
    no_exceptions(at)
    after = retraining.get_proposal(db, p.id)
    assert after.state == "training" and after.run_id is not None
    assert f"run {after.run_id} is queued" in texts(at)


def test_the_infrastructure_page_shows_workers_and_the_queue(drifting):
    _, people, _ = drifting
    at = app_as(people["ops"], "pages/infrastructure.py")
    no_exceptions(at)
    assert "Workers running" in texts(at)
    assert "No worker has started yet" in texts(at)


def _many_alerts(db, n: int, deployment: str = "paging-dep") -> None:
    from mlops_core.models.monitoring import Alert

    with db.unit_of_work() as s:
        for i in range(n):
            s.add(
                Alert(
                    kind="latency",
                    severity="warning",
                    title=f"latency breach {i}",
                    deployment_name=deployment,
                    dedupe_key=f"paging:{i}",
                    open_key=f"paging:{i}",
                )
            )


def test_the_alerts_page_pages_through_many_alerts_fifty_at_a_time(drifting):
    db, people, _ = drifting
    _many_alerts(db, 60)
    total = len(monitoring.list_alerts(db, states=["open", "acknowledged"], limit=1000))
    assert total > 60
    at = app_as(people["ops"], "pages/alerts.py")
    no_exceptions(at)
    assert "alerts 1–50, newest first · more on page 2" in texts(at)
    assert len(at.expander) == 50
    assert "paging-dep" in by_label(at.selectbox, "Deployment").options
    at.number_input(key="al_page").set_value(2).run()
    no_exceptions(at)
    assert f"alerts 51–{total}, newest first" in texts(at)
    assert len(at.expander) == total - 50
    assert "more on page" not in texts(at)
