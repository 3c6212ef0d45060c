"""Experiments, Run, Compare runs and Models pages through Streamlit's AppTest, on real trained runs."""

import pytest

from mlops_core.services import experiments, registry, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, by_label, no_exceptions, texts
from tests.services.experiments_world import FAST, make_world, run_jobs


@pytest.fixture
def trained(sqlite_db):
    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    runs = experiments.start_runs(
        sqlite_db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", **FAST},
        algorithms=["logistic_regression", "random_forest"],
        params_by_algorithm={"random_forest": {"n_estimators": 10}},
    )
    run_jobs(sqlite_db)
    return sqlite_db, people, world, runs


def test_the_runs_table_lists_runs_with_kpi_lights_sorted_by_roc_auc(trained):
    db, people, world, runs = trained
    at = app_as(people["business"], "pages/experiments.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["run"]) and set(table["run"]) == {r.id for r in runs}
    best = experiments.list_runs(db, sort="metric:roc_auc").items[0].id
    assert table["run"].iloc[0] == best
    assert "roc_auc met" in table["KPIs"].iloc[0] or "roc_auc warning" in table["KPIs"].iloc[0]
    assert "2 finished" in texts(at)
    assert not [b for b in at.button if b.label == "Launch"]  # business users do not train


def test_the_page_opens_on_the_use_case_with_the_latest_run_not_the_first_alphabetically(trained):
    db, people, world, runs = trained
    empty = usecases.create_use_case(db, actor=people["business"], title="Aaa invoice triage").id
    listed = usecases.list_use_cases(db, actor=people["business"], limit=500).items
    assert listed[0].id == empty  # the first use case of the list has no run
    at = app_as(people["business"], "pages/experiments.py")
    no_exceptions(at)
    assert by_label(at.selectbox, "Use case").value == world.use_case_id
    assert set(at.dataframe[0].value["run"]) == {r.id for r in runs}
    assert at.query_params["use_case"] == str(world.use_case_id)  # the choice is in the URL (shareable)
    # a use case chosen before (here or on another page) wins over the most recent one
    at = app_as(people["business"])
    at.session_state["use_case_id"] = empty
    at.switch_page("pages/experiments.py")
    at.run()
    assert by_label(at.selectbox, "Use case").value == empty and "No runs yet." in texts(at)
    # and so does a link: ?use_case=<id>
    at.query_params["use_case"] = str(world.use_case_id)
    at.run()
    assert by_label(at.selectbox, "Use case").value == world.use_case_id


def test_a_data_scientist_launches_a_run_and_it_is_queued_for_the_worker(trained):
    db, people, world, runs = trained
    at = app_as(people["data_scientist"], "pages/experiments.py")
    no_exceptions(at)
    assert by_label(at.radio, "Task").value == "classification"  # suggested from the 0/1 target
    by_label(at.button, "Launch").click()
    at.run()
    no_exceptions(at)
    assert "Queued 1 run(s)" in texts(at)
    assert experiments.status_counts(db)["queued"] == 1
    assert "Run" in texts(at) and "queued" in texts(at)  # the live progress panel


def test_a_grid_over_the_limit_is_refused_on_the_page_with_count_and_limit(trained):
    db, people, world, runs = trained
    at = app_as(people["data_scientist"], "pages/experiments.py")
    by_label(at.multiselect, "Algorithms (one run each)").set_value(["random_forest"])
    at.run()
    by_label(at.text_input, "Random forest: n_estimators").input(",".join(str(i) for i in range(1, 101)))
    by_label(at.text_input, "Random forest: min_samples_leaf").input(",".join(str(i) for i in range(1, 101)))
    at.run()
    by_label(at.button, "Launch").click()
    at.run()
    assert "10,000 combinations, more than the limit of 200" in texts(at)
    assert experiments.status_counts(db).get("queued", 0) == 0


def test_the_run_page_shows_metrics_kpis_and_plots_and_registers_a_model(trained):
    db, people, world, runs = trained
    at = app_as(people["data_scientist"])
    at.session_state["run_id"] = runs[1].id
    at.switch_page("pages/run.py")
    at.run()
    no_exceptions(at)
    page = texts(at)
    assert f"Run {runs[1].id}" in page and "test roc_auc" in page
    assert len(at.get("plotly_chart")) >= 4  # confusion matrix, ROC, PR, importance
    assert any("Permutation importance on the test split" in str(c.proto) for c in at.get("plotly_chart"))
    by_label(at.text_input, "Model name").input("churn-classifier")
    by_label(at.button, "Register").click()
    at.run()
    no_exceptions(at)
    assert "Registered churn-classifier v1" in texts(at)
    assert registry.resolve_version(db, model_name="churn-classifier").run_id == runs[1].id


def test_compare_highlights_differing_params_and_shows_kpi_lights(trained):
    db, people, world, runs = trained
    at = app_as(people["ops"])
    at.session_state["compare_run_ids"] = [r.id for r in runs]
    at.switch_page("pages/compare.py")
    at.run()
    no_exceptions(at)
    assert "parameters differ (highlighted)" in texts(at)
    assert len(at.dataframe) == 3  # params, metrics, KPI lights
    assert len(at.get("plotly_chart")) == 2  # bars and parallel coordinates


def test_the_models_page_shows_the_card_with_lineage(trained):
    db, people, world, runs = trained
    registry.register_model(
        db,
        actor=people["data_scientist"],
        run_id=runs[0].id,
        name="churn-classifier",
        alias="champion",
        intended_use="monthly retention campaign",
    )
    at = app_as(people["business"], "pages/models.py")
    no_exceptions(at)
    page = texts(at)
    assert "churn-classifier v1" in page and "monthly retention campaign" in page
    assert "customers@v1" in page and "Churn customers" in page
    assert "What the model relies on" in page  # permutation importance on the model card
