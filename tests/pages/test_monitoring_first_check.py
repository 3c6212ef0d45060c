"""Issue 15, problem 14 through AppTest: "Run a check now" follows the queued check by itself and the page
shows the new check on the same deployment; charts of a single check keep readable axes."""

import json
from datetime import datetime, timedelta

import pytest

from hub_ui.axes import time_axis
from mlops_core.services import monitoring
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.experiments_world import run_jobs
from tests.services.monitoring_world import customers, log_traffic, make_world


@pytest.fixture
def unchecked(sqlite_db):
    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    make_world(sqlite_db, people, name="other")  # a second deployment: the page must stay on churn
    monitoring.configure_monitor(
        sqlite_db, actor=people["ops"], deployment_name="churn", window_size=300, schedule_seconds=None
    )
    log_traffic(sqlite_db, world, customers(300, seed=5, drift=1.0), label_share=0.5)
    return sqlite_db, people


def _axes(at, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if key in str(c.proto.id) or key in str(c.proto))
    return json.loads(chart.proto.spec)["layout"]


def test_run_a_check_now_shows_the_new_check_on_the_same_deployment_with_sane_axes(unchecked):
    db, people = unchecked
    at = app_as(people["ops"])
    at.switch_page("pages/deployment_monitoring.py")
    at.query_params["deployment"] = "churn"
    at.run()
    no_exceptions(at)
    assert by_label(at.selectbox, "Deployment").value == "churn"
    assert "churn has not been checked yet" in texts(at)

    at.button(key="dm_run").click()
    at.run()
    no_exceptions(at)
    assert "dm_refresh" not in [b.key for b in at.button]  # no manual refresh: the page follows the job itself
    assert set(run_jobs(db)) == {"finished"}  # the check (and whatever it queues next)

    at.run()  # what the follower's next tick does: the job ended, so the whole page renders again
    no_exceptions(at)
    page = texts(at)
    assert "has not been checked yet" not in page and "Latest check #" in page
    assert by_label(at.selectbox, "Deployment").value == "churn"
    # Health: the client's 4xx apart from the service's 5xx (problem 13), as figures and over time.
    labels = [m.label for m in at.metric]
    assert "Server errors (5xx), 24 h" in labels and "Client errors (4xx), 24 h" in labels
    assert _axes(at, "dm_error_split_chart")["yaxis"]["tickformat"] == ".0%"

    # One check: the time axis spans an hour and ticks to the minute, the heatmap's check axis is a label.
    drift = _axes(at, "dm_drift_chart")
    lo, hi = (datetime.fromisoformat(x) for x in drift["xaxis"]["range"])
    assert hi - lo >= timedelta(hours=1) and drift["xaxis"]["tickformat"] == "%b %d, %H:%M"
    assert _axes(at, "dm_drift_heat")["xaxis"]["type"] == "category"


def test_a_wide_time_span_is_left_to_plotly():
    start = datetime(2026, 11, 1, 8, 0)
    axis = time_axis([start, start + timedelta(days=2)], "window end")
    assert "range" not in axis and axis["title"] == "window end" and axis["type"] == "date"
