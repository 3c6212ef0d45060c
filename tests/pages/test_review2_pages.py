"""Reviewer's second pass (issue 15) on the ops / data-scientist screens: what read wrongly in Chromium at
1440x900, checked at page level."""

import pytest

from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


@pytest.fixture
def people(sqlite_db, monkeypatch):
    # Run app.py (and so its sidebar footer) on every rerun as the real server does.
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_like_the_server(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_like_the_server)
    return make_people(sqlite_db)


def test_sidebar_names_the_role_in_words(people):
    at = app_as(people["data_engineer"])
    no_exceptions(at)
    footer = [str(m.value) for m in at.sidebar.markdown]
    assert any("`data engineer`" in v for v in footer), footer
    assert not any("data_engineer" in v for v in footer)


@pytest.fixture
def dan(sqlite_db):
    return make_people(sqlite_db)["data_engineer"]


def test_dataset_page_has_one_data_download_and_a_drift_table_without_a_scroll_box(sqlite_db, dan, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    from mlops_core.demo.customers import make_customers
    from mlops_core.services import datasets
    from tests.pages.helpers import by_label

    datasets.register_version_from_frame(sqlite_db, actor=dan, dataset_name="customers", frame=make_customers(300))
    shifted = make_customers(300, seed=2)
    shifted["monthly_charges"] += 1000  # drifts, in plain units above 1,000
    v2 = datasets.register_version_from_frame(sqlite_db, actor=dan, dataset_name="customers", frame=shifted)
    downloads = {}

    def fake_download(self, label, data, **kw):  # built on click: call it as a click would
        downloads[label] = (kw.get("file_name"), data() if callable(data) else data)
        return False

    monkeypatch.setattr(DeltaGenerator, "download_button", fake_download)
    monkeypatch.setattr("streamlit.download_button", lambda *a, **kw: fake_download(None, *a, **kw))
    at = app_as(dan, page="pages/dataset.py")
    by_label(at.selectbox, "Version").select(v2.id)
    at.run()
    no_exceptions(at)
    data = [label for label, (name, _) in downloads.items() if name == "customers_v2.csv"]
    assert data == ["Download the data (CSV)"], downloads.keys()
    assert downloads[data[0]][1].splitlines()[0].startswith(str(shifted.columns[0]).encode())
    assert not [b for b in at.button if "CSV" in str(b.label)]  # no separate "Prepare CSV" step
    drift = next(df for df in at.dataframe if "change (reference → current)" in df.value.columns)
    assert "method" not in drift.value.columns and len(drift.value) <= 25
    changes = " ".join(drift.value["change (reference → current)"])
    assert "e+0" not in changes and "-0.0 sd" not in changes and "," in changes


@pytest.fixture
def segment_misses(sqlite_db):
    """A checked deployment with open "KPI missed in a segment" alerts: three KPIs over two segments."""
    from sqlmodel import select

    from mlops_core.models.deployments import Deployment
    from mlops_core.models.monitoring import Alert
    from mlops_core.services import monitoring
    from tests.services.monitoring_world import customers, log_traffic, make_world

    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    monitoring.configure_monitor(
        sqlite_db, actor=people["ops"], deployment_name="churn", window_size=300, schedule_seconds=None
    )
    log_traffic(sqlite_db, world, customers(300, seed=5), label_share=0.5)
    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    with sqlite_db.read() as s:
        dep_id = s.exec(select(Deployment.id).where(Deployment.name == "churn")).one()
    with sqlite_db.unit_of_work() as s:
        for seg, kpi in (("plan=basic", "recall"), ("plan=basic", "precision"), ("region=north", "recall")):
            key = f"segment_kpi_missed:{dep_id}:{seg}:{kpi}"
            s.add(
                Alert(
                    kind="segment_kpi_missed",
                    severity="warning",
                    title=f"churn: {kpi} for {seg} is low",
                    deployment_id=dep_id,
                    deployment_name="churn",
                    dedupe_key=key,
                    open_key=key,
                )
            )
    return people


def test_the_kpi_tile_and_the_overview_name_the_segments_that_miss_a_kpi(segment_misses):
    at = app_as(segment_misses["ops"], "pages/monitoring.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert table[table["deployment"] == "churn"].iloc[0]["KPIs"].endswith("overall; 2 segments missed")
    at = app_as(segment_misses["ops"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    tile = next(m for m in at.metric if m.label == "KPIs")
    assert tile.value.endswith(" overall") and tile.proto.delta == "2 segments missed"


def test_drift_lines_have_distinct_colours_and_the_heatmap_a_legend(segment_misses, sqlite_db):
    import json

    from mlops_core.services import monitoring

    monitoring.run_monitor(sqlite_db, deployment_name="churn")
    at = app_as(segment_misses["ops"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    lines = next(s for s in specs if s["layout"].get("yaxis", {}).get("title", {}).get("text") == "drift score")
    # each line is given its colour from a 24-colour palette (plotly's own cycle of 10 gave the 11th line the
    # 1st's colour: tenure_months and (prediction) on the demo)
    colours = [t.get("line", {}).get("color") for t in lines["data"]]
    assert len(colours) >= 4 and all(colours) and len(set(colours)) == len(colours)
    heat = next(s for s in specs if any(t["type"] == "heatmap" for t in s["data"]))
    legend = {t["name"] for t in heat["data"] if t.get("showlegend")}
    assert legend == {"drifted", "not drifted"}
