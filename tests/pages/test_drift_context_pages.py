"""Drift numbers with context on the pages (issue 15, problem 11): labelled statistic vs p-value, effect sizes."""

from __future__ import annotations

from tests.pages.helpers import app_as, no_exceptions
from tests.pages.test_dataset_pages import customers, people  # noqa: F401  (fixtures)
from tests.pages.test_monitoring_pages import drifting  # noqa: F401  (fixture)


def test_the_drift_detail_labels_statistic_and_p_value_and_shows_the_shift(drifting):  # noqa: F811
    _, people_, _ = drifting
    at = app_as(people_["data_scientist"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    detail = at.dataframe[0].value
    assert "score" not in detail.columns
    row = detail[detail["column"] == "age"].iloc[0]
    assert row["test"].split()[0] in ("KS", "Wasserstein", "Jensen-Shannon", "chi-square", "|z|")
    assert "p-value" in row["test"] or "distance" in row["test"]
    assert row["change (reference → current)"].startswith("mean ") and " → " in row["change (reference → current)"]
    assert set(detail["drifted"]) <= {"yes", "no"}
    assert all(len(str(v)) < 60 for v in detail.to_numpy().ravel())


def test_compare_versions_names_a_removed_column_first_and_overlays_distributions(people, customers, sqlite_db):  # noqa: F811
    from mlops_core.demo.customers import make_customers
    from mlops_core.services import datasets
    from tests.pages.helpers import by_label, texts

    shifted = make_customers(300, seed=3).drop(columns=["age"])
    shifted["monthly_charges"] += 40.0
    datasets.register_version_from_frame(
        sqlite_db, actor=people["data_engineer"], dataset_name="customers", frame=shifted
    )
    at = app_as(people["business"], "pages/dataset.py")
    no_exceptions(at)
    removed = [w.value for w in at.warning if "Removed in" in w.value]
    assert removed and "`age`" in removed[0] and "customers@v3" in removed[0]
    table = next(d.value for d in at.dataframe if "shift" in d.value.columns)
    assert set(table["drifted"]) <= {"yes", "no", ""}  # words, and one type per column (no pyarrow fallback)
    row = table[table["column"] == "monthly_charges"].iloc[0]
    assert row["drifted"] == "yes" and row["shift"].startswith("mean ") and "sd)" in row["shift"]
    pick = by_label(at.selectbox, "Distribution of column")
    pick.select("monthly_charges").run()
    chart = at.get("plotly_chart")[-1].proto.spec
    assert '"barmode":"overlay"' in chart.replace(" ", "") and "customers@v2" in chart and "customers@v3" in chart
    by_label(at.selectbox, "Distribution of column").select("region").run()
    no_exceptions(at)
    chart = at.get("plotly_chart")[-1].proto.spec
    assert '"barmode":"group"' in chart.replace(" ", "")
    assert "age" not in by_label(at.selectbox, "Distribution of column").options
    assert "rows 300 → 300" in texts(at)


def test_ops_mark_important_columns_in_the_monitor_settings(drifting):  # noqa: F811
    from mlops_core.services import monitoring
    from tests.pages.helpers import by_label

    db, people_, _ = drifting
    at = app_as(people_["ops"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    pick = by_label(at.multiselect, "Important columns (each alerts on its own drift, below the drift share too)")
    assert "age" in pick.options
    pick.select("age")
    by_label(at.button, "Save monitor").click()
    at.run()
    no_exceptions(at)
    assert monitoring.list_monitors(db, deployment_name="churn")[0].important_columns == ["age"]
