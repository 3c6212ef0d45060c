"""Issue 15, problems 6 and 8 through AppTest: the use case page says where it stands (a status strip, one
linked tile per stage, lights from the KPI contract), its delivery tables are readable and linked, editing
sits behind an Edit button; portfolio cards show deployments, alerts and the next step from the evidence."""

import re

import pytest

from mlops_core.services import monitoring, stage_status, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts
from tests.services.monitoring_world import customers, log_traffic, make_world


@pytest.fixture
def deployed(sqlite_db):
    """churn: data passed, churn-model v1 (accuracy 0.6 < target 0.8) served in production, checked once
    on drifted traffic (an open drift alert); the use case is still recorded as "proposed"."""
    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    monitoring.configure_monitor(
        sqlite_db, actor=people["ops"], deployment_name="churn", window_size=300, schedule_seconds=None
    )
    log_traffic(sqlite_db, world, customers(300, seed=5, drift=1.0), label_share=0.5)
    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    return sqlite_db, people, world


def _page_links(node) -> list:
    """Every st.page_link under `node` (AppTest's own lookup misses some inside columns)."""
    found = []
    for child in getattr(node, "children", {}).values():
        if type(child).__name__ == "PageLink":
            found.append(child.proto)
        found += _page_links(child)
    return found


def test_the_status_strip_has_a_linked_tile_per_stage_with_lights_from_the_kpi_contract(deployed):
    db, people, world = deployed
    status = stage_status.use_case_status(db, actor=people["business"], use_case_id=world.use_case_id)
    tiles = {t.stage: t for t in status.tiles}
    assert list(tiles) == ["data", "model", "deployed", "live", "alerts", "signoffs"]
    assert tiles["model"].state == "bad" and "misses accuracy 0.6 (target >= 0.8)" in tiles["model"].detail
    assert tiles["model"].page == "pages/models.py" and tiles["model"].params == {"id": str(world.model_version_id)}
    assert tiles["deployed"].state == "good" and tiles["deployed"].value == "churn-model v1 on churn"
    assert tiles["data"].params and tiles["data"].page == "pages/dataset.py"
    assert tiles["alerts"].state in ("warn", "bad") and status.open_alerts >= 1
    assert tiles["live"].page == "pages/deployment_monitoring.py" and tiles["live"].params == {"deployment": "churn"}
    assert status.suggested_status == "monitored"  # recorded "proposed", but it is served and watched

    at = app_as(people["business"], page="pages/use_case.py")
    no_exceptions(at)
    page = texts(at)
    for title in ("Data", "Best model", "Deployed", "Live KPIs", "Open alerts", "Pending sign-offs"):
        assert f"**{title}**" in page
    assert "needs attention" in page and "on track" in page  # red and green, in words
    assert "churn-model v1 on churn" in page and "Next:" in page
    pages_linked = str(_page_links(at._tree))
    for target in ("models", "dataset", "deployment", "deployment-monitoring", "alerts", "inbox"):
        assert f"page: \"{target}\"" in pages_linked, target

    # Editing is behind a button: no form until it is clicked.
    uc = world.use_case_id
    assert f"FormSubmitter:uc_edit_{uc}-Save changes" not in [b.key for b in at.button]
    at.button(key=f"uc_edit_open_{uc}").click()
    at.run()
    assert f"FormSubmitter:uc_edit_{uc}-Save changes" in [b.key for b in at.button]


def test_the_delivery_tables_have_readable_headers_dates_and_links(deployed):
    db, people, world = deployed
    at = app_as(people["data_scientist"], page="pages/use_case.py")
    no_exceptions(at)
    frames = [df.value for df in at.dataframe]
    delivery = [f for f in frames if "Link" in f.columns]
    assert len(delivery) >= 4  # datasets, runs, models, deployments, alerts
    for f in delivery:
        assert not any("_" in c for c in f.columns), list(f.columns)
        assert not any(c.endswith(("id", "hash", "key")) for c in f.columns), list(f.columns)
        for col in f.columns:
            for v in f[col].astype(str):
                assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", v), (col, v)  # no ISO timestamps
    links = {v for f in delivery for v in f["Link"]}
    assert f"models?id={world.model_version_id}" in links and "deployment?deployment=churn" in links
    assert f"run?id={world.run_id}" in links


def test_portfolio_cards_show_deployments_alerts_and_the_next_step(deployed):
    db, people, world = deployed
    empty = usecases.create_use_case(db, actor=people["business"], title="Invoice triage")
    at = app_as(people["ops"], page="pages/portfolio.py")
    no_exceptions(at)
    page = texts(at)
    assert "churn (production): churn-model v1" in page
    assert re.search(r"\d+ open alerts?", page)
    assert "The evidence says this use case is at" in page and "monitored" in page
    assert "Next:** Handle the" in page
    # A bare proposal: not deployed, and the next step is a KPI.
    status = stage_status.use_case_status(db, actor=people["ops"], use_case_id=empty.id)
    assert status.deployments == [] and status.next_step.startswith("Add a model KPI")
    assert "not deployed" in page
