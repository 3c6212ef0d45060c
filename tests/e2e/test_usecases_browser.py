"""Business users in chromium: a use case with KPIs, a sign-off request, and its approval from the inbox."""

import re

import pytest

from tests.e2e.conftest import login, open_page, screenshot_step

pytestmark = pytest.mark.browser


def _settle(page) -> None:
    """Wait until Streamlit has finished re-running the script (a tab switch reruns it)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tab", name=name, selected=True).wait_for()
    _settle(page)


def _choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def _add_model_kpi(page, metric: str, target: str) -> None:
    _choose(page, "Metric (model KPIs)", metric)
    page.get_by_label("Target", exact=True).fill(target)
    page.get_by_role("button", name="Add KPI").click()
    # Streamlit's markdown shows ">=" as "≥"
    page.get_by_text(re.compile(rf"KPI added: {metric} (>=|≥) {target}\.")).wait_for()
    _settle(page)


def test_alice_creates_a_use_case_with_two_kpis_and_admin_approves_her_signoff_from_the_inbox(hub, page, browser):
    page.set_default_timeout(60_000)  # CI machines run several Streamlit servers at once
    # The first script run of a fresh server imports every stage; give it time on a busy machine.
    page.goto(hub.ui_url)
    page.get_by_label("Username", exact=True).wait_for(timeout=120_000)
    login(page, hub, "alice")
    open_page(page, "Portfolio")
    page.get_by_text("Customer churn").first.wait_for()  # the demo's board is filled
    page.get_by_label("Title", exact=True).fill("Late payments")
    page.get_by_label("Problem statement").fill("Invoices are paid late and nobody knows which ones.")
    page.get_by_label("Tags (comma separated)").fill("finance")
    page.get_by_role("button", name="Create use case").click()
    page.get_by_role("heading", name="Late payments").wait_for()

    _open_tab(page, "KPIs")
    _add_model_kpi(page, "recall", "0.7")
    _add_model_kpi(page, "roc_auc", "0.8")
    page.get_by_role("tab", name="KPIs", selected=True).wait_for()  # the open tab survives each rerun
    page.locator("[role=gridcell]", has_text="no runs yet").first.wait_for(state="attached")

    _open_tab(page, "Sign-offs")
    page.get_by_label("What is to be approved").fill("Approve “Late payments” and its two KPIs")
    _choose(page, "Person", "admin")
    page.get_by_role("button", name="Request sign-off").click()
    page.get_by_text("Sign-off requested from admin.").wait_for()
    screenshot_step(page, "usecases_signoff_requested")

    # admin, in a browser of their own, approves it from the inbox
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        admin = context.new_page()
        admin.set_default_timeout(60_000)
        login(admin, hub, "admin")
        open_page(admin, "My inbox")
        admin.get_by_text(re.compile(r"Waiting for your sign-off \(\d+\)")).wait_for()
        card = admin.locator("[class*='st-key-inbox_so_card_']").filter(
            has_text="Approve “Late payments” and its two KPIs"
        )
        card.get_by_label("Reason (required to reject)").fill("Both KPIs agreed with finance")
        card.get_by_role("button", name="Approve").click()
        admin.get_by_text("Sign-off “Approve “Late payments” and its two KPIs” approved.").wait_for()
        screenshot_step(admin, "usecases_signoff_approved")
    finally:
        context.close()

    # alice is told, with the reason
    open_page(page, "My inbox")
    page.get_by_text(
        "admin approved: Approve “Late payments” and its two KPIs — Both KPIs agreed with finance"
    ).wait_for()


def test_alice_fills_the_ml_canvas_sets_costs_and_sees_value(hub, page):
    """Issue 20: the guided canvas and the value model of a new use case; the demo churn runs' expected
    value; live value on the portfolio."""
    page.set_default_timeout(60_000)
    login(page, hub, "alice")
    open_page(page, "Portfolio")
    page.get_by_label("Title", exact=True).fill("Dispatch delays")
    page.get_by_role("button", name="Create use case").click()
    page.get_by_role("heading", name="Dispatch delays").wait_for()

    page.get_by_role("heading", name="ML canvas and value").scroll_into_view_if_needed()
    _open_tab(page, "ML canvas")
    page.get_by_label("Decision the prediction supports").fill("Which parcels get a priority courier")
    page.get_by_label("Positive class (the label the model must find, e.g. 1 or churned)").fill("1")
    page.get_by_role("button", name="Save canvas").click()
    page.get_by_text("Canvas saved (version 1).").wait_for()
    _settle(page)

    _open_tab(page, "Value model")
    page.get_by_label("Records scored per period").fill("1000")
    for outcome, v in (("TP", "100"), ("FP", "-10"), ("FN", "-100"), ("TN", "0")):
        page.get_by_role("textbox", name=f"Value of a {outcome}").fill(v)
    page.get_by_role("button", name="Save value model").click()
    page.get_by_text("Value model saved (version 1).").wait_for()
    # a miss loses 200 (100 gained - 100 lost), a false alarm 10: the suggested KPI is recall
    page.get_by_text("a false negative costs 20x a false positive").wait_for()
    screenshot_step(page, "value_model_saved")

    # the demo's churn use case has a value model and trained runs: each run's expected value per month
    open_page(page, "Portfolio")
    page.get_by_role("link", name="Customer churn").first.click()
    page.get_by_role("heading", name="Customer churn").wait_for()
    _open_tab(page, "Runs by value")
    page.locator("[role=gridcell]", has_text="EUR per month").first.wait_for(state="attached")

    open_page(page, "Portfolio")
    page.get_by_text(re.compile(r"Live value per period.*EUR per month")).wait_for()
    page.get_by_text(re.compile(r"^value: -?[\d,]+ EUR per month")).first.wait_for()
