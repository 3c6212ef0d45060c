"""Issue 15, problem 9 through AppTest: parameters another algorithm lacks are blank and not differences,
integers read as integers, the parallel-coordinates chart is labelled, and the run table's columns are the
person's choice, remembered for them."""

import json

from mlops_core.services import experiments, preferences
from tests.pages.helpers import app_as, by_label, no_exceptions
from tests.pages.test_experiment_pages import trained  # noqa: F401 - the fixture: a LR and a RF run


def test_compare_leaves_parameters_that_do_not_apply_blank_and_unflagged(trained):  # noqa: F811
    db, people, world, runs = trained
    cmp = experiments.compare_runs(db, run_ids=[r.id for r in runs])
    rows = {row["param"]: row for row in cmp.params_table()}
    lr, rf = (f"run {r.id}" for r in runs)
    assert rows["n_estimators"][rf] == "10" and rows["n_estimators"][lr] == ""  # an integer, and a blank
    assert "n_estimators" not in cmp.differing_params and "C" not in cmp.differing_params

    at = app_as(people["ops"])
    at.session_state["compare_run_ids"] = [r.id for r in runs]
    at.switch_page("pages/compare.py")
    at.run()
    no_exceptions(at)
    params = at.dataframe[0].value
    assert "None" not in params.astype(str).to_numpy().ravel().tolist()
    assert not any(v.endswith(".000000") for v in params.astype(str).to_numpy().ravel())
    chart = next(c for c in at.get("plotly_chart") if "parcoords" in c.proto.spec)
    trace = json.loads(chart.proto.spec)["data"][0]
    labels = [d["label"] for d in trace["dimensions"]]
    assert "roc auc" in labels and not any("_" in x for x in labels)
    auc = next(d for d in trace["dimensions"] if d["label"] == "roc auc")
    assert 0 <= auc["range"][0] and auc["range"][1] <= 1  # never a 0.9–1.1 axis for a score
    assert trace["line"]["colorbar"]["title"]["text"] == "roc auc"
    assert json.loads(chart.proto.spec)["layout"]["margin"]["l"] >= 60  # the first label is not cut off


def test_the_run_table_shows_the_chosen_columns_and_remembers_them(trained):  # noqa: F811
    db, people, world, runs = trained
    sara = people["data_scientist"]
    at = app_as(sara, "pages/experiments.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table.columns)[:3] == ["run", "name", "roc_auc"]  # the sorted-by metric is on screen
    by_label(at.multiselect, "Columns").set_value(["status", "param: n_estimators", "recall"])
    at.run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["run", "name", "roc_auc", "status", "param: n_estimators", "recall"]
    assert sorted(table["param: n_estimators"]) == ["", "10"]
    assert preferences.run_columns(db, actor=sara) == ["status", "param: n_estimators", "recall"]

    again = app_as(sara, "pages/experiments.py")  # a new session: the choice is remembered
    assert list(again.dataframe[0].value.columns) == [
        "run",
        "name",
        "roc_auc",
        "status",
        "param: n_estimators",
        "recall",
    ]
    assert preferences.run_columns(db, actor=people["business"]) is None  # per person
