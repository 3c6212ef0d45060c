"""Sara, in chromium against `mlops_core up` (UI + worker): launches a run, watches it finish, compares
two runs and registers one as a model; a run logged through the MLflow REST routes (as the MLflow client
logs it) shows on Experiments (source "mlflow") and is compared with a no-code run."""

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, open_page, screenshot_step

pytestmark = pytest.mark.browser


def _choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option).first.click()


def test_sara_launches_a_run_sees_it_finish_compares_and_registers(hub, page):
    page.set_default_timeout(90_000)  # first page loads are slow on a busy CI machine
    login(page, hub, "sara")
    open_page(page, "Experiments")
    page.get_by_role("heading", name="Experiments").wait_for()
    _choose(page, "Use case", "Customer churn")
    page.get_by_text(re.compile(r"\d+ finished")).first.wait_for()
    before = int(
        re.search(r"(\d+) finished", page.get_by_text(re.compile(r"\d+ finished")).first.inner_text()).group(1)
    )

    page.get_by_test_id("stExpander").get_by_text("Launch an experiment").click()
    page.get_by_role("button", name="Launch").click()
    page.get_by_text(re.compile(r"Queued 1 run\(s\): run \d+")).wait_for()
    run_id = re.search(r"run (\d+)", page.get_by_text(re.compile(r"Queued 1 run")).inner_text()).group(1)
    screenshot_step(page, "experiments_launched")
    # The worker trains it; the live panel polls the database and the table refreshes when it ends.
    page.get_by_text(f"{before + 1} finished").first.wait_for(timeout=180_000)
    page.get_by_text("No run is queued or running.").wait_for()

    open_page(page, "Compare runs")
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.get_by_text(re.compile(r"\d+ of \d+ parameters differ")).wait_for()
    page.get_by_text("KPI lights").wait_for()
    screenshot_step(page, "experiments_compare")

    # "Run" is also a prefix of "Compare runs": click the exact link.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Run", exact=True).click()
    page.get_by_role("heading", name=re.compile(rf"Run {run_id}:")).wait_for()
    page.get_by_text("Register as model").click()
    page.get_by_label("Model name").fill("churn-e2e")
    page.get_by_label("Model name").press("Tab")
    page.get_by_role("button", name="Register", exact=True).click()
    page.get_by_text("Registered churn-e2e v1.").wait_for()
    screenshot_step(page, "experiments_registered")


def _log_like_the_mlflow_client(api_url: str, token: str) -> str:
    """What mlflow-skinny 3.17.2 sends for set_experiment("Customer churn"), start_run(run_name=...),
    log_params, log_metrics and the end of the `with` block. The real client (its own virtualenv, ~4 s just to
    import) is run by tests/api/test_mlflow_client.py; this test is about what the pages show."""
    deadline = time.monotonic() + 120  # `up` answers on the UI port first; the API process may still start
    while True:
        try:
            if httpx.get(f"{api_url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the Hub API at {api_url} did not answer /healthz within 120 s"
        time.sleep(0.3)
    now = int(time.time() * 1000)
    with httpx.Client(base_url=f"{api_url}/api/2.0/mlflow", headers={"Authorization": f"Bearer {token}"}) as c:
        exp = c.get("/experiments/get-by-name", params={"experiment_name": "Customer churn"})
        assert exp.status_code == 200, exp.text
        created = c.post(
            "/runs/create",
            json={
                "experiment_id": exp.json()["experiment"]["experiment_id"],
                "user_id": "sara",
                "start_time": now,
                "run_name": "mlflow-e2e",
                "tags": [
                    {"key": "mlflow.runName", "value": "mlflow-e2e"},
                    {"key": "mlflow.user", "value": "sara"},
                    {"key": "mlflow.source.type", "value": "LOCAL"},
                ],
            },
        )
        assert created.status_code == 200, created.text
        run_id = created.json()["run"]["info"]["run_id"]
        for body in (
            {"params": [{"key": "C", "value": "0.25"}, {"key": "framework", "value": "sklearn"}]},
            {"metrics": [{"key": "roc_auc", "value": 0.99991, "timestamp": now, "step": 0}]},
        ):
            r = c.post("/runs/log-batch", json={"run_id": run_id, "params": [], "metrics": [], "tags": [], **body})
            assert r.status_code == 200, r.text
        r = c.post("/runs/update", json={"run_id": run_id, "run_uuid": run_id, "status": "FINISHED", "end_time": now})
        assert r.status_code == 200, r.text
    return run_id


def _click_row(page, grid, row: int) -> None:
    """Tick a row's selection marker in a Streamlit dataframe (a canvas grid: header and rows are 35 px high,
    the marker column is the first ~30 px)."""
    box = grid.locator("canvas").first.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 35 * row + 17)


def test_a_run_logged_from_mlflow_shows_on_experiments_and_compares_with_a_no_code_run(hub, page):
    token = hub.cli("user", "token", "sara").stdout.strip().splitlines()[-1]
    mlflow_id = _log_like_the_mlflow_client(hub.api_url, token)

    page.set_default_timeout(90_000)
    login(page, hub, "sara")
    open_page(page, "Experiments")
    page.get_by_role("heading", name="Experiments").wait_for()
    _choose(page, "Use case", "Customer churn")
    # Sorted by roc_auc (highest first): the MLflow run (0.99991) is the first row, a no-code run the second.
    grid = page.get_by_test_id("stDataFrame").last
    first, second = (page.locator(f'[role=row][aria-rowindex="{i}"]') for i in (2, 3))
    first.wait_for(state="attached")
    cells = first.locator("[role=gridcell]").all_inner_texts()
    assert cells[:2] == [mlflow_id, "mlflow-e2e"] and "mlflow" in cells, cells
    other = second.locator("[role=gridcell]").all_inner_texts()
    assert "ui" in other, other  # launched from the Experiments page: no code
    screenshot_step(page, "experiments_mlflow_run")

    _click_row(page, grid, 0)
    _click_row(page, grid, 1)
    compare = page.get_by_role("button", name="Compare selected")
    expect(compare).to_be_enabled()
    compare.click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    for run_id in (mlflow_id, other[0]):
        page.locator("[role=columnheader]", has_text=f"run {run_id}").first.wait_for(state="attached")
    page.locator("[role=gridcell]", has_text="0.99991").first.wait_for(state="attached")  # the MLflow roc_auc
    page.locator("[role=gridcell]", has_text="framework").first.wait_for(state="attached")  # an MLflow param
    screenshot_step(page, "experiments_mlflow_compare")
