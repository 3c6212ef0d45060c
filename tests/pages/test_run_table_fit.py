"""Experiments' run table fits the page at 1440x900 (issue 15): few default columns with fixed widths and
short headers, and the run, its name, the sorted-by metric and the KPI lights pinned to the left."""

import json

from tests.pages.helpers import app_as, by_label, no_exceptions
from tests.pages.test_experiment_pages import trained  # noqa: F401 - the fixture

# At 1440x900 with the sidebar open, Streamlit's wide layout leaves the table about 980 px; the row
# selection markers take about 35 of them.
TABLE_PX = 980 - 35


def _columns(at):
    frame = at.dataframe[0]
    return list(frame.value.columns), json.loads(frame.proto.columns)


def test_the_default_run_table_fits_1440_px_with_sort_column_and_kpi_lights_in_view(trained):  # noqa: F811
    db, people, world, runs = trained
    at = app_as(people["data_scientist"], "pages/experiments.py")
    no_exceptions(at)
    names, config = _columns(at)
    assert names[:4] == ["run", "name", "roc_auc", "KPIs"], names  # sorted by roc_auc: it and the lights lead
    assert {"status", "source", "created"} <= set(names)
    widths = [config[c]["width"] for c in names]  # every column has a fixed width...
    assert all(isinstance(w, int) for w in widths), config
    assert sum(widths) <= TABLE_PX, (sum(widths), dict(zip(names, widths)))  # ...and together they fit
    assert all(config[c].get("pinned") for c in names[:4]), config
    assert not any(config[c].get("pinned") for c in names[4:]), config


def test_many_chosen_columns_keep_the_sort_column_and_kpi_lights_pinned(trained):  # noqa: F811
    db, people, world, runs = trained
    at = app_as(people["data_scientist"], "pages/experiments.py")
    cols = by_label(at.multiselect, "Columns")
    cols.set_value(list(cols.options))  # everything: wider than the page, so the table scrolls sideways
    at.run()
    no_exceptions(at)
    names, config = _columns(at)
    assert names[:4] == ["run", "name", "roc_auc", "KPIs"], names
    assert [c for c in names if config[c].get("pinned")] == names[:4]  # these stay in view while scrolling
    by_label(at.selectbox, "Sort by").set_value("created_at")
    at.run()
    names, config = _columns(at)
    assert names[:3] == ["run", "name", "KPIs"] and names.count("roc_auc") == 1, names
    assert [c for c in names if config[c].get("pinned")] == names[:3]
