"""The dataset page for data engineers (issue 15): quality across versions, the validation report as a CSV or
HTML file with the page's sentences, and a diff between two schema versions."""

import csv
import io

import pytest
from streamlit.delta_generator import DeltaGenerator

from mlops_core.demo.customers import make_customers
from mlops_core.services import dataset_quality, datasets
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


@pytest.fixture
def customers(sqlite_db, people):
    """v1 clean (300 rows), v2 with 4 negative charges and 20 empty tenure cells (280 rows)."""
    dan = people["data_engineer"]
    v1 = datasets.register_version_from_frame(
        sqlite_db, actor=dan, dataset_name="customers", frame=make_customers(300, seed=1)
    )
    bad = make_customers(280, seed=2)
    bad.loc[:3, "monthly_charges"] = -9.5
    v2 = datasets.register_version_from_frame(sqlite_db, actor=dan, dataset_name="customers", frame=bad)
    return v1, v2


def test_quality_trend_reports_rows_missing_share_and_failed_rules_per_version(sqlite_db, customers):
    v1, v2 = customers
    points = dataset_quality.quality_trend(sqlite_db, v1.dataset_id)
    assert [(p.version, p.n_rows) for p in points] == [(1, 300), (2, 280)]
    assert points[0].failed_rules == 0 and points[1].failed_rules >= 1
    assert points[1].errors == datasets.get_version(sqlite_db, v2.id).n_errors
    assert all(p.missing_share is not None and 0 <= p.missing_share < 1 for p in points)


def test_the_dataset_page_offers_the_report_as_files_a_quality_chart_and_a_schema_diff(
    sqlite_db, people, customers, monkeypatch
):
    v1, v2 = customers
    dan = people["data_engineer"]
    cols = [dict(c) for c in datasets.current_schema(sqlite_db, v1.dataset_id).columns]
    charges = next(c for c in cols if c["name"] == "monthly_charges")
    charges["min"] = -10.0
    cols = [c for c in cols if c["name"] != "senior"]
    next(c for c in cols if c["name"] == "support_calls")["type"] = "number"
    datasets.update_schema(sqlite_db, actor=dan, dataset_id=v1.dataset_id, columns=cols, note="refunds")

    downloads = {}

    def fake_download(self, label, data, **kw):  # built on click: call it as a click would
        downloads[label] = (kw.get("file_name"), data() if callable(data) else data)
        return False

    monkeypatch.setattr(DeltaGenerator, "download_button", fake_download)
    at = app_as(dan, page="pages/dataset.py")
    by_label(at.selectbox, "Version").select(v2.id)
    at.run()
    no_exceptions(at)

    # the report files: the findings shown on the page, as sentences
    shown = [e.value for e in at.error if "out of range" in e.value]
    assert shown
    name, text = downloads["Report as CSV"]
    assert name == "validation_customers_v2.csv"
    rows = list(csv.DictReader(io.StringIO(text)))
    errors = [r for r in rows if r["severity"] == "Error"]
    assert errors and any("4 below the minimum 0" in r["finding"] for r in errors)
    assert all(r["version"] == "customers@v2" for r in rows)
    name, page = downloads["Report as HTML"]
    assert name.endswith(".html") and "Failed validation" in page and "4 below the minimum 0" in page

    # quality across versions: a line chart with one point per version
    trend = next(c for c in at.get("plotly_chart") if "Failed rules" in c.proto.spec)
    assert '"v1"' in trend.proto.spec and '"v2"' in trend.proto.spec
    table = next(df.value for df in at.dataframe if "failed rules" in df.value.columns)
    assert list(table["version"]) == ["v2", "v1"] and list(table["rows"]) == [280, 300]

    # schema v1 -> v2: the added column and the changed rule, in words
    diff = next(df.value for df in at.dataframe if list(df.value.columns) == ["column", "change", "detail"])
    got = dict(zip(diff["column"], zip(diff["change"], diff["detail"])))
    assert got["senior"][0] == "removed"
    assert got["support_calls"] == ("retyped", "integer → number")
    assert got["monthly_charges"][0] == "rules changed" and "minimum: 0 → -10" in got["monthly_charges"][1]
    by_label(at.selectbox, "Schema from").select(2)
    at.run()
    no_exceptions(at)
    assert "declare the same columns and rules" in " ".join(c.value for c in at.caption)
