"""AppTest: the deployment monitoring page shows the estimated KPI light, the estimated band with the
realized line, and the segments worst first (issue 17)."""

from __future__ import annotations

import re

from mlops_core.demo.customers import make_customers
from mlops_core.services import fairness, monitoring, predictions, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.deployments_world import make_world
from tests.services.test_prediction_scores import _deploy


def test_ops_see_the_estimated_kpi_light_band_and_segments(sqlite_db):
    db = sqlite_db
    people = make_people(db)
    w = make_world(db, people, n=600)
    dep = _deploy(db, people, w.versions[0], "churn")
    usecases.add_kpi(
        db, actor=people["business"], use_case_id=w.use_case_id, kind="model", metric="recall",
        direction=">=", target=0.97, name="recall",
    )  # fmt: skip
    frame = make_customers(300, seed=43)
    scored = predictions.score_frame(db, deployment_name="churn", frame=frame.drop(columns=["churned"]))
    predictions.apply_labels(
        db,
        deployment_id=dep.id,
        labels=[{"request_id": r, "label": int(y)} for r, y in list(zip(scored["request_id"], frame["churned"]))[:5]],
    )
    monitoring.configure_monitor(
        db, actor=people["ops"], deployment_name="churn", schedule_seconds=None, max_latency_p95_ms=None,
        alert_on_estimated=True, segments={"region": None},
    )  # fmt: skip
    monitoring.run_monitor(db, deployment_name="churn")
    at = app_as(people["ops"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    kpi_metric = next(m for m in at.metric if m.label == "KPIs")
    # the whole window's verdict, and the segments that miss a KPI in the tile's note
    assert kpi_metric.value == "estimated missed overall"
    assert re.fullmatch(r"\d+ segments? missed", str(kpi_metric.delta)), kpi_metric.delta
    body = texts(at)
    assert "estimated band" in body or "Estimated performance" in body
    charts = at.get("plotly_chart")
    assert any("estimated band" in str(c.proto) for c in charts)
    segs = next(d.value for d in at.dataframe if "segment" in d.value.columns)
    assert set(segs["segment"]) == {"region=north", "region=south", "region=east", "region=west"}
    assert segs["volume"].sum() == 300
    kpis = next(d.value for d in at.dataframe if "estimated status" in d.value.columns)
    assert "estimated missed" in set(kpis["estimated status"])
    # one logged prediction next to the training data: percentile of a numeric input, share of a category
    rid = scored["request_id"].iloc[-2]
    by_label(at.selectbox, "Request id").select(rid)
    at.run()
    no_exceptions(at)
    one = next(d.value for d in at.dataframe if "in the training data" in d.value.columns)
    places = dict(zip(one["column"], one["in the training data"]))
    assert places["age"].startswith("percentile ") and "% of training rows" in places["region"]
    assert next(m for m in at.metric if m.label == "Score").value != "—"
    # the portfolio card shows the same KPI as an estimate, marked as such (too few labels to judge it)
    pf = app_as(people["ops"], "pages/portfolio.py")
    no_exceptions(pf)
    card = next(m.value for m in pf.markdown if "(estimated, missed" in m.value)
    assert "recall ≈ 0." in card and "churn, 5 labels" in card
    # ops set the deployment's fairness gate from the same page
    by_label(at.text_input, "Group column").input("region")
    by_label(at.selectbox, "Fairness metric").select("accuracy")
    by_label(at.number_input, "Largest gap allowed").set_value(0.2)
    by_label(at.button, "Save fairness gate").click()
    at.run()
    no_exceptions(at)
    gate = fairness.get_fairness_gate(db, deployment_name="churn")
    assert (gate.column, gate.metric, gate.tolerance) == ("region", "accuracy", 0.2)
