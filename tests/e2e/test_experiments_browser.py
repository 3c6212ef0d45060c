"""Sara, in chromium against `mlops_core up` (UI + worker): launches a run, watches it finish, compares
two runs and registers one as a model."""

import re

import pytest

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
