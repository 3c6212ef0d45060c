"""Run page for data scientists (issue 15), through AppTest on real trained runs: the dataset version in the
header, the test-set size next to the metrics, the per-class table, ROC and PR curves with their area in the
legend (binary: one curve; multiclass: one per class), "not recorded" for a run trained before, notes and
tags edited on the page (and not offered to a role that may not), and the model card's sizes."""

import json
import shutil

import numpy as np
import pytest
from sqlmodel import select

from mlops_core import artifacts
from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database
from mlops_core.models.experiments import RunArtifact
from mlops_core.services import datasets, experiments, registry
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.experiments_world import FAST, make_world, run_jobs


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sqlite_template):
    """A binary run, a three-class run and a binary run whose plot data is as runs trained before issue 15
    stored it; trained once for the module (the tests only read, or edit notes of their own run)."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("run_metrics_page")
    mp.setenv("ARTIFACT_ROOT", str(tmp / "artifacts"))
    path = tmp / "hub.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    mp.setenv("DATABASE_URL", url)
    reload_settings()
    db = Database(url)
    people = make_people(db)
    world = make_world(db, people)
    frame = world.frame.copy()
    frame["tier"] = np.where(
        frame["monthly_charges"] > 80, "gold", np.where(frame["monthly_charges"] < 40, "bronze", "silver")
    )
    tiers = datasets.register_version_from_frame(
        db, actor=people["data_engineer"], dataset_name="tiers", frame=frame, use_case_id=world.use_case_id
    )
    ds = people["data_scientist"]
    [binary, old] = experiments.start_runs(
        db,
        actor=ds,
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", **FAST},
        algorithms=["logistic_regression", "random_forest"],
        params_by_algorithm={"random_forest": {"n_estimators": 10}},
    )
    [multi] = experiments.start_runs(
        db,
        actor=ds,
        use_case_id=world.use_case_id,
        dataset_version_id=tiers.id,
        config={"target": "tier", "task": "classification", **FAST},
        algorithms=["logistic_regression"],
    )
    assert run_jobs(db) == ["finished"] * 3
    # the third run as if trained before issue 15: no class counts, per-class metrics or per-class curves,
    # and feature names with the ColumnTransformer's prefixes
    with db.read() as s:
        key = s.exec(
            select(RunArtifact.artifact_key).where(RunArtifact.run_id == old.id, RunArtifact.kind == "plot_data")
        ).one()
    data = json.loads(artifacts.get_bytes(key))
    for k in ("class_counts", "per_class", "roc_curves", "pr_curves"):
        data.pop(k)
    data["feature_importance"] = [{"feature": "num__tenure_months", "importance": 0.3}]
    artifacts.put_bytes(key, json.dumps(data).encode())
    yield db, people, binary, multi, old, tiers
    db.dispose()
    forget_database(url)
    mp.undo()
    reload_settings()


def _open_run(actor, run_id):
    at = app_as(actor, None)
    at.query_params["id"] = str(run_id)
    at.switch_page("pages/run.py")
    at.run()
    no_exceptions(at)
    return at


def _charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _curve_names(at, title_word):
    for spec in _charts(at):
        title = spec["layout"].get("title", {})
        title = title.get("text", "") if isinstance(title, dict) else str(title)
        if title_word in title:
            return [t.get("name") for t in spec["data"]], spec["layout"]
    raise AssertionError(f"no chart titled {title_word!r}")


def test_binary_run_shows_dataset_sizes_per_class_table_and_one_curve_with_its_auc(trained):
    db, people, binary, multi, old, tiers = trained
    run = experiments.get_run(db, binary.id)
    plots = experiments.plot_data(db, binary.id)
    n = plots.n_test
    assert n == sum(plots.class_counts.values()) == 60  # 240 rows, test_size 0.25
    at = _open_run(people["business"], binary.id)
    page = texts(at)
    # the dataset version is in the header, linking to that version of that dataset
    link = next(p for p in at.get("page_link") if "Trained on" in p.proto.label)
    assert "customers@v1" in link.proto.label.replace("\\", "")
    # the size next to every metric: the line above them, each tile, each table row, the KPI check
    assert f"computed on the {n} rows of the test split" in page
    counts = " · ".join(f"{k}: {v}" for k, v in plots.class_counts.items())
    assert f"rows per class: {counts}." in page
    assert f"test recall ({n} rows)" in page and f"test roc_auc ({n} rows)" in page
    metrics = next(d.value for d in at.dataframe if "computed on" in d.value.columns and "metric" in d.value.columns)
    assert set(metrics["computed on"]) == {f"{n} test rows"}
    kpis = next(d.value for d in at.dataframe if "KPI" in d.value.columns)
    assert set(kpis["computed on"]) == {f"{n} test rows"}
    # per class: both classes, the positive one marked, supports adding up to the test rows
    per = next(d.value for d in at.dataframe if "class" in d.value.columns)
    assert len(per) == 2 and per["test rows"].sum() == n
    assert any("(positive)" in c for c in per["class"])
    # one ROC curve with the run's AUC in the legend, labelled axes; one PR curve with its AP
    names, layout = _curve_names(at, "ROC")
    assert len(names) == 2 and names[1].startswith("chance")
    assert f"AUC {run.metrics['roc_auc']:.3f}" in names[0]
    assert layout["xaxis"]["title"]["text"] == "false positive rate"
    assert layout["yaxis"]["title"]["text"] == "true positive rate"
    names, layout = _curve_names(at, "Precision-recall")
    assert "AP " in names[0] and layout["xaxis"]["title"]["text"] == "recall"
    # business may read, not edit, the notes
    assert not [t for t in at.text_area if t.label == "Notes"]


def test_multiclass_run_shows_a_row_and_a_one_vs_rest_curve_per_class(trained):
    db, people, binary, multi, old, tiers = trained
    plots = experiments.plot_data(db, multi.id)
    at = _open_run(people["data_scientist"], multi.id)
    assert "tiers@v1" in texts(at) or any("tiers@v1" in p.proto.label for p in at.get("page_link"))
    per = next(d.value for d in at.dataframe if "class" in d.value.columns)
    assert sorted(per["class"]) == ["bronze", "gold", "silver"] and per["test rows"].sum() == plots.n_test
    names, _ = _curve_names(at, "ROC curves, one class vs the rest")
    roc = {c.label: c.auc for c in plots.roc_curves}
    assert sorted(names[:-1]) == sorted(f"{k} (AUC {v:.3f})" for k, v in roc.items())
    names, _ = _curve_names(at, "Precision-recall curves")
    assert len(names) == 3 and all("(AP " in x for x in names)


def test_a_run_trained_before_says_not_recorded_and_shows_plain_feature_names(trained):
    db, people, binary, multi, old, tiers = trained
    at = _open_run(people["data_scientist"], old.id)
    page = texts(at)
    assert "Per-class metrics: not recorded for this run" in page
    names, _ = _curve_names(at, "ROC")  # its one stored binary curve still shows, with the run's AUC
    assert "AUC" in names[0]
    importance = next(s for s in _charts(at) if "Feature importance" in json.dumps(s["layout"].get("title")))
    assert importance["data"][0]["y"] == ["tenure_months"]
    assert "num__" not in json.dumps(_charts(at))


def test_a_data_scientist_edits_notes_and_tags_on_the_page(trained):
    db, people, binary, multi, old, tiers = trained
    at = _open_run(people["data_scientist"], multi.id)
    by_label(at.text_area, "Notes").input("Tiers look **separable**; try fewer features.")
    by_label(at.text_area, "Tags (one per line: name = value)").input("stage = baseline\nreviewed")
    by_label(at.button, "Save notes and tags").click()
    at.run()
    no_exceptions(at)
    page = texts(at)
    assert "Notes and tags saved." in page and "Tiers look **separable**" in page and "stage: baseline" in page
    got = experiments.get_run(db, multi.id)
    assert experiments.user_tags(got) == {"stage": "baseline", "reviewed": ""}
    # a hub tag is refused with its sentence, nothing stored
    by_label(at.text_area, "Tags (one per line: name = value)").input("mlflow.runName = renamed")
    by_label(at.button, "Save notes and tags").click()
    at.run()
    assert "set by the hub" in texts(at)
    assert experiments.user_tags(experiments.get_run(db, multi.id)) == {"stage": "baseline", "reviewed": ""}


def test_the_model_card_shows_sizes_per_class_metrics_and_curves(trained):
    db, people, binary, multi, old, tiers = trained
    mv = registry.register_model(db, actor=people["data_scientist"], run_id=binary.id, name="churn-sizes")
    n = experiments.plot_data(db, binary.id).n_test
    at = app_as(people["business"], None)
    at.query_params["id"] = str(mv.id)
    at.switch_page("pages/models.py")
    at.run()
    no_exceptions(at)
    assert f"computed on the {n} rows of the test split" in texts(at)
    metrics = next(d.value for d in at.dataframe if "computed on" in d.value.columns and "metric" in d.value.columns)
    assert list(metrics["metric"]) == sorted(mv.metrics) and set(metrics["computed on"]) == {f"{n} test rows"}
    per = next(d.value for d in at.dataframe if "class" in d.value.columns)
    assert per["test rows"].sum() == n
    names, layout = _curve_names(at, "ROC")
    assert "AUC" in names[0] and layout["xaxis"]["title"]["text"] == "false positive rate"
    assert "num__" not in json.dumps([d.value.to_dict() for d in at.dataframe], default=str)


def test_a_cross_validated_run_says_its_metrics_are_out_of_fold_on_every_row(trained):
    from hub_ui import run_metrics_ui as rm_ui

    db, people, binary, multi, old, tiers = trained
    run = experiments.get_run(db, binary.id)
    cv = run.model_copy(update={"config": {**run.config, "split": "cv", "folds": 5}})
    plots = experiments.plot_data(db, binary.id).model_copy(update={"n_test": 240, "n_train": 240})
    assert rm_ui.rows_phrase(plots, cv) == "240 rows, out of fold"
    assert rm_ui.size_line(plots, cv).startswith(
        "Every test metric is computed on out-of-fold predictions on all 240 rows (5-fold"
    )
    assert rm_ui.metric_with_size("recall", 0.71, plots, cv) == "recall 0.71 on 240 rows, out of fold"
    assert rm_ui.size_line(None, run) == "Test-set size: not recorded for this run."


def test_the_run_header_names_the_algorithm_and_the_source_in_words(trained):
    db, people, binary, multi, old, tiers = trained
    at = _open_run(people["data_scientist"], binary.id)
    header = " ".join(str(h.value) for h in at.subheader) + " " + " ".join(str(c.value) for c in at.caption)
    assert "Logistic regression" in header and "logistic_regression" not in header
    assert "from the Hub UI" in header and "· ui ·" not in header
