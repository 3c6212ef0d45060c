"""The whole loop, in chromium against `python -m mlops_core up` on a fresh database (issue 8).

alice creates a use case and its KPIs → dan uploads a dataset and it validates → sara trains two runs,
compares them and registers the better one → alice signs off → omar deploys it → traffic reaches the real
scoring API → drifted traffic raises an alert → omar approves the retraining proposal → the retrained run
finishes (worker) → alice signs off the challenger → omar deploys the new version, and the API serves it.

Every step goes through the real UI except the scoring traffic (the real HTTP API). A screenshot of each
step lands in test-artifacts/journey_NN_<step>.png. The demo workspace is seeded too (its accounts log in),
so the journey uses names of its own: use case "Journey churn", dataset journey_customers, model
journey-churn-classifier, deployment journey-churn.
"""

import json
import re
import time

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from mlops_core.demo.customers import FEATURES, make_customers
from tests.e2e.conftest import login, logout, screenshot_step, start_hub, stop_hub

pytestmark = pytest.mark.browser

UC = "Journey churn"
DATASET = "journey_customers"
MODEL = "journey-churn-classifier"
DEP = "journey-churn"
WINDOW = 300  # the monitor looks at the last 300 predictions: the drifted batch only


@pytest.fixture(scope="module")
def journey_hub(tmp_path_factory):
    from tests.e2e.conftest import _browser_enabled

    _browser_enabled()
    tmp = tmp_path_factory.mktemp("journey")
    h = start_hub(tmp, demo=True)
    yield h
    stop_hub(h)


# --- small UI helpers (selectors found by the stage tests) --------------------------------------


def _settle(page) -> None:
    """Wait until Streamlit has finished re-running the script."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")


def _nav(page, title: str) -> None:
    """Click a sidebar page by its exact title ("Deployment" is not "Deployments"); a long navigation is
    collapsed behind "View N more". A full page load would start a new, logged-out session."""
    _settle(page)
    side = page.get_by_test_id("stSidebar")
    more = side.get_by_text(re.compile(r"^View \d+ more$"))
    if more.count():
        more.first.click()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=re.compile(rf"(^|\s){re.escape(title)}$")).click()
    page.wait_for_load_state("networkidle")
    _settle(page)


def _choose(page, label: str, option, scope=None) -> None:
    """Pick an option of a Streamlit selectbox (a combobox); `option` is a string or a regex."""
    box = (scope or page).get_by_role("combobox", name=label)
    exact = isinstance(option, str)
    _pick(
        page,
        box,
        page.get_by_role("option", name=option, exact=exact).first,
        None if exact or not option.pattern.startswith("^run ") else option.pattern[1:].split(" ·")[0] + " ",
    )


def _pick(page, box, option, typed: str | None = None) -> None:
    """Open a dropdown and click an option; a rerun (e.g. a live fragment) can close it, so retry."""
    for attempt in range(6):
        _settle(page)
        box.click()
        if typed:  # long lists: type to filter
            box.press_sequentially(typed)
        try:
            option.wait_for(timeout=15_000)
            option.click()
            break
        except Exception:  # noqa: BLE001 - the menu closed under us: open it again
            if attempt == 5:
                raise
            page.keyboard.press("Escape")
    _settle(page)


def _open_tab(page, name: str) -> None:
    tabs = page.get_by_role("tab", name=name)
    for _ in range(120):  # during a rerun the previous tab bar may still be in the DOM for a moment
        _settle(page)
        if tabs.count() == 1:
            break
        page.wait_for_timeout(500)
    tabs.first.click()
    page.get_by_role("tab", name=name, selected=True).wait_for()
    _settle(page)


def _metric(page, label: str) -> float:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return float(box.get_by_test_id("stMetricValue").inner_text().strip())


def _request_id(page, version: int) -> int:
    """The id of the pending request for `MODEL v<version>` on the Deployment page."""
    pattern = re.compile(rf"Request #(\d+): {re.escape(MODEL)} v{version} → {re.escape(DEP)}")
    text = page.get_by_text(pattern).first.inner_text()
    return int(pattern.search(text).group(1))


def _open_deployment(page) -> None:
    _nav(page, "Deployment")
    page.get_by_role("heading", name="Deployment", exact=True).wait_for()
    _choose(page, "Deployment", DEP)


def _run_check_now(page) -> None:
    """Deployment monitoring → "Run a check now": a job the worker runs; Refresh until it is final."""
    _nav(page, "Deployment monitoring")
    _choose(page, "Deployment", DEP)
    job = re.compile(r"Check (queued \(job \d+\)|job \d+:)")

    def shown() -> tuple[int, str]:
        loc = page.get_by_text(job)
        text = loc.first.inner_text() if loc.count() else ""
        m = re.search(r"job (\d+)", text)
        return (int(m.group(1)) if m else 0), text

    before, _ = shown()  # a check run earlier in this session is still shown
    page.get_by_role("button", name="Run a check now").click()
    for _ in range(240):
        _settle(page)
        now, text = shown()
        if now > before and re.search(r"job \d+: (finished|failed|cancelled)", text):
            break
        refresh = page.get_by_role("button", name="Refresh")
        if refresh.count():
            refresh.click()
        page.wait_for_timeout(1000)
    assert now > before and "finished" in text, text


# --- the real scoring API ------------------------------------------------------------------------


def _records(frame) -> list[dict]:
    return json.loads(frame[FEATURES].to_json(orient="records"))


def _served_version(hub, key: str) -> str | None:
    rec = _records(make_customers(1, seed=3))
    try:
        r = httpx.post(
            f"{hub.api_url}/v1/deployments/{DEP}/predict",
            headers={"Authorization": f"Bearer {key}"},
            json={"records": rec},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    return r.json().get("model_version") if r.status_code == 200 else None


def _wait_serving(hub, key: str, version: int) -> None:
    """The running scoring service picks a deployment up within seconds (no restart)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        served = _served_version(hub, key)
        if served and re.search(rf"\bv{version}\b", served):
            return
        time.sleep(0.5)
    raise AssertionError(f"{DEP} does not serve v{version}; it serves {_served_version(hub, key)}")


def _send(hub, key: str, frame, batch: int = 100) -> int:
    sent = 0
    records = _records(frame)
    for i in range(0, len(records), batch):
        r = httpx.post(
            f"{hub.api_url}/v1/deployments/{DEP}/predict",
            headers={"Authorization": f"Bearer {key}"},
            json={"records": records[i : i + batch]},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == len(records[i : i + batch])
        sent += len(records[i : i + batch])
    return sent


# --- the journey -----------------------------------------------------------------------------------


def _confirm_deploy(page, req: int, reason: str) -> None:
    """Deploy asks for a confirmation with a required reason (issue 15) before anything moves."""
    page.locator(f".st-key-dep_req_{req}").get_by_role("button", name="Deploy").click()
    box = page.locator(f".st-key-dep_confirm_deploy_{req}")
    box.get_by_label("Reason (required, kept in the history)").fill(reason)
    box.get_by_label("Reason (required, kept in the history)").press("Tab")
    _settle(page)
    box.get_by_role("button", name="Confirm deploy").click()


def _alice_signs_off(page, hub, n: int, shot: str) -> int:
    """alice approves the business sign-off of deployment request number n; returns the request id."""
    login(page, hub, "alice")
    _open_deployment(page)
    req = _request_id(page, n)
    tick = page.locator(f".st-key-dep_req_{req}").get_by_text("I approve it although it falls short")
    if tick.count():  # evidence short of a KPI asks for a tick first
        tick.click()
        _settle(page)
    page.locator(f".st-key-dep_req_{req}").get_by_role("button", name="Approve").click()
    page.get_by_text("approved.").first.wait_for()
    _settle(page)
    screenshot_step(page, shot)
    logout(page)
    return req


# The whole loop through the UI: about 5 minutes on a quiet 2-core machine, 10+ under load; the suite-wide
# 600 s cap would cut it off on a busy machine, so this one test gets 20 minutes.
@pytest.mark.timeout(1200)
def test_a_use_case_goes_from_idea_to_a_retrained_model_in_production_through_the_ui(journey_hub, page, tmp_path):
    hub = journey_hub
    page.set_default_timeout(120_000)  # a loaded machine renders slowly
    page.goto(hub.ui_url)
    page.get_by_label("Username", exact=True).wait_for(timeout=180_000)

    # 1. alice (business) creates the use case and its model KPIs.
    login(page, hub, "alice")
    _nav(page, "Portfolio")
    page.get_by_label("Title", exact=True).fill(UC)
    page.get_by_label("Problem statement").fill("Customers leave without warning; find them a month ahead.")
    page.get_by_label("Tags (comma separated)").fill("journey")
    page.get_by_role("button", name="Create use case").click()
    page.get_by_role("heading", name=UC).wait_for()
    screenshot_step(page, "journey_01_use_case")
    _open_tab(page, "KPIs")
    for metric, target in (("roc_auc", "0.7"), ("accuracy", "0.7")):
        _choose(page, "Metric (model KPIs)", metric)
        page.get_by_label("Target", exact=True).fill(target)
        page.get_by_role("button", name="Add KPI").click()
        page.get_by_text(re.compile(rf"KPI added: {metric} (>=|≥) {target}\.")).wait_for()
        _settle(page)
    page.locator("[role=gridcell]", has_text="no runs yet").first.wait_for(state="attached")
    screenshot_step(page, "journey_02_kpis")
    logout(page)

    # 2. dan (data engineer) uploads a CSV for it, and it validates.
    csv = tmp_path / "journey.csv"
    make_customers(1500, seed=11).to_csv(csv, index=False)
    login(page, hub, "dan")
    _nav(page, "Datasets")
    form = page.get_by_test_id("stForm").first
    form.get_by_role("textbox", name="Dataset name").fill(DATASET)
    form.get_by_role("textbox", name="Dataset name").press("Tab")
    _choose(page, "Use case", UC, scope=form)
    form.locator("input[type=file]").set_input_files(str(csv))
    form.get_by_text("journey.csv").wait_for()
    form.get_by_role("button", name="Upload and validate").click()
    page.get_by_text(re.compile(rf"Registered {DATASET}@v1: 1,500 rows × 11 columns — .*validated")).wait_for()
    screenshot_step(page, "journey_03_dataset_validated")
    logout(page)

    # 3. sara (data scientist) trains two runs, compares them and registers the better one.
    login(page, hub, "sara")
    _nav(page, "Experiments")
    _choose(page, "Use case", UC)
    page.get_by_test_id("stExpander").get_by_text("Launch an experiment").click()
    algs = page.get_by_test_id("stMultiSelect").filter(has_text="Algorithms (one run each)")
    _pick(page, algs.locator("input"), page.get_by_role("option", name="Random forest"), "Random")
    page.keyboard.press("Escape")
    _settle(page)
    page.get_by_label("Random forest: n_estimators").fill("30")
    page.get_by_label("Random forest: n_estimators").press("Tab")
    _settle(page)
    page.get_by_role("button", name="Launch").click()
    queued = page.get_by_text(re.compile(r"Queued 2 run\(s\): run \d+, run \d+"))
    queued.wait_for()
    run_ids = [int(x) for x in re.findall(r"run (\d+)", queued.inner_text())]
    screenshot_step(page, "journey_04_runs_queued")
    page.get_by_text(re.compile(r"(^|\s)2 finished")).first.wait_for(timeout=300_000)  # the worker trains them
    page.get_by_text("No run is queued or running.").wait_for()
    screenshot_step(page, "journey_05_runs_finished")

    _nav(page, "Compare runs")
    page.get_by_role("heading", name="Compare runs").wait_for()
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for rid in run_ids:  # the two newest finished runs are preselected; pick any that is not
        if not picker.get_by_text(re.compile(rf"^run {rid} ·")).count():
            _pick(page, picker.locator("input"), page.get_by_role("option", name=re.compile(rf"^run {rid} ·")))
            page.keyboard.press("Escape")
            _settle(page)
    page.get_by_text(re.compile(r"\d+ of \d+ parameters differ")).wait_for()
    page.get_by_text("KPI lights").wait_for()
    screenshot_step(page, "journey_06_compare")

    # The better run is the one with the higher test roc_auc, read off each run's page.
    _nav(page, "Run")
    scores = {}
    for rid in run_ids:
        _choose(page, "Run", re.compile(rf"^run {rid} ·"))
        page.get_by_role("heading", name=re.compile(rf"Run {rid}:")).wait_for()
        scores[rid] = _metric(page, "test roc_auc")
    best = max(scores, key=scores.get)
    _choose(page, "Run", re.compile(rf"^run {best} ·"))
    page.get_by_role("heading", name=re.compile(rf"Run {best}:")).wait_for()
    page.get_by_text("Register as model").click()
    page.get_by_label("Model name").fill(MODEL)
    page.get_by_label("Model name").press("Tab")
    page.get_by_role("button", name="Register", exact=True).click()
    page.get_by_text(f"Registered {MODEL} v1.").wait_for()
    screenshot_step(page, "journey_07_registered")

    # sara asks for production; the gates run and business is asked to sign off.
    _nav(page, "Deployments")
    # nothing is pre-chosen: the model version, then an endpoint of its use case (here a new one)
    _choose(page, "Model version", re.compile(rf"^{re.escape(MODEL)} v1 "))
    _choose(page, "Endpoint", "A new endpoint…")
    page.get_by_label(re.compile("New endpoint name")).fill(DEP)
    page.get_by_label(re.compile("New endpoint name")).press("Tab")
    _settle(page)
    page.get_by_role("button", name="Request deployment").click()
    page.get_by_text(re.compile(rf"Requested {re.escape(MODEL)} v1 on {DEP} \(production\)")).wait_for()
    screenshot_step(page, "journey_08_deployment_requested")
    logout(page)

    # 4. alice signs off the evidence.
    req1 = _alice_signs_off(page, hub, 1, "journey_09_signed_off")

    # 5. omar deploys it (every gate passes), makes an API key, and sets up the monitor.
    login(page, hub, "omar")
    _open_deployment(page)
    # The sign-off arrived after the request: the checklist shows it at once, no re-check needed.
    card = page.locator(f".st-key-dep_req_{req1}")
    card.get_by_text(re.compile(r"passed\s*Business sign-off —")).first.wait_for()
    assert card.get_by_text(re.compile(r"\bfailed\s+[A-Z][^—]*—")).count() == 0, "a gate still fails"
    _confirm_deploy(page, req1, "first release of the journey")
    page.get_by_text(f"Deployed {MODEL} v1 on {DEP}").wait_for()
    _settle(page)
    screenshot_step(page, "journey_10_deployed_v1")

    _open_tab(page, "API keys")
    page.get_by_label("What the key is for").fill("journey traffic")
    page.get_by_role("button", name="Create API key").click()
    # The page stays on the API keys tab after the action: the one-time key is in view.
    page.get_by_role("tab", name="API keys", selected=True).wait_for()
    page.get_by_text("Key created. Copy it now").wait_for()
    key = (page.get_by_test_id("stCode").first.locator("code").text_content() or "").strip()
    assert key.startswith("mlk_") and " " not in key, key
    screenshot_step(page, "journey_11_api_key")

    _nav(page, "Deployment monitoring")
    _choose(page, "Deployment", DEP)
    _open_tab(page, "Monitor settings")
    page.get_by_label("Window size (predictions or hours)").fill(str(WINDOW))
    page.get_by_label("Run every (minutes, 0 = only on demand)").fill("0")
    page.get_by_label("Dataset drifts when this share of columns drifts").fill("0.3")
    page.get_by_role("button", name="Save monitor").click()
    page.get_by_text("Monitor saved.").wait_for()
    screenshot_step(page, "journey_12_monitor_configured")

    # 6. Traffic like the training data reaches the real scoring API (HTTP, API key)...
    _wait_serving(hub, key, 1)
    assert _send(hub, key, make_customers(WINDOW, seed=101)) == WINDOW
    _open_deployment(page)
    page.get_by_test_id("stMetric").filter(has_text="Requests (24 h)").get_by_test_id("stMetricValue").filter(
        has_text=re.compile(r"^\s*[1-9]")
    ).wait_for()
    screenshot_step(page, "journey_13_traffic")

    # 7. ...then the market shifts: drifted traffic, a check (run now), a drift alert.
    assert _send(hub, key, make_customers(WINDOW, seed=102, drift=1.5)) == WINDOW
    _run_check_now(page)
    page.get_by_test_id("stMetric").filter(has_text="Dataset drift").get_by_text("drifted", exact=True).wait_for()
    screenshot_step(page, "journey_14_check_drifted")
    _nav(page, "Alerts")
    alert = page.get_by_test_id("stExpander").filter(has_text=f"Data drift on {DEP}").first
    alert.wait_for()
    screenshot_step(page, "journey_15_drift_alert")

    # 8. omar approves the retraining proposal the drift caused.
    proposal = page.get_by_text(re.compile(rf"Retrain {DEP} · proposal #\d+ · .*proposed")).first
    pid = int(re.search(r"proposal #(\d+)", proposal.inner_text()).group(1))
    page.locator(f".st-key-prop_ok_{pid}").get_by_role("button", name="Approve retraining").click()
    approved = page.get_by_text(re.compile(r"Retraining approved: run \d+ is queued"))
    approved.wait_for()
    retrain_run = int(re.search(r"run (\d+)", approved.inner_text()).group(1))
    screenshot_step(page, "journey_16_retraining_approved")

    # 9. The worker trains it; the run page follows it live until it finishes.
    _nav(page, "Run")
    _choose(page, "Run", re.compile(rf"^run {retrain_run} ·"))
    page.get_by_role("heading", name=re.compile(rf"finished\s*Run {retrain_run}:")).wait_for(timeout=300_000)
    screenshot_step(page, "journey_17_retrained_run_finished")

    # The worker moves the proposal on as soon as the run finishes: the run is registered as v2 and
    # requested on the endpoint, a challenger awaiting sign-off and approval (no check needed).
    # The move is a job queued with the run's finish (it registers, requests and checks the gates, the model
    # check in its own process): open Alerts again until it shows, with a deadline.
    challenger = re.compile(rf"Retrain {DEP} · proposal #{pid} · .*challenger")
    deadline = time.monotonic() + 180
    while True:
        _nav(page, "Alerts")
        try:
            page.get_by_text(challenger).wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            assert time.monotonic() < deadline, f"proposal #{pid} did not become a challenger within 180 s"
    logout(page)

    # 10. alice signs off the challenger's evidence; omar deploys v2; the API serves it.
    req2 = _alice_signs_off(page, hub, 2, "journey_18_challenger_signed_off")

    login(page, hub, "omar")
    _open_deployment(page)
    card = page.locator(f".st-key-dep_req_{req2}")
    card.get_by_text(re.compile(r"passed\s*Business sign-off —")).first.wait_for()
    _confirm_deploy(page, req2, "the challenger beats the champion")
    page.get_by_text(f"Deployed {MODEL} v2 on {DEP}").wait_for()
    _settle(page)
    page.get_by_test_id("stMetric").filter(has_text="Serving").get_by_text("v2", exact=True).wait_for()
    page.locator(".st-key-dep_summary").get_by_text(f"{MODEL} v2", exact=True).wait_for()  # the full name
    _wait_serving(hub, key, 2)
    _open_tab(page, "History")
    page.locator("[role=gridcell]", has_text=f"{MODEL} v2").first.wait_for(state="attached")
    screenshot_step(page, "journey_19_deployed_v2")
