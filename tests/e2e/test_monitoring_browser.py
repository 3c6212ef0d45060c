"""Ops in chromium: omar sees the demo's drift alert, opens its evidently report, acknowledges the alert,
and approves the retraining proposal it caused."""

import re

import pytest

from tests.e2e.conftest import login, open_page, screenshot_step

pytestmark = pytest.mark.browser


def _settle(page) -> None:
    """Wait until Streamlit has finished re-running the script."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")


def _nav(page, title: str) -> None:
    """Open a page from the sidebar, expanding its "View N more" list first when it is collapsed."""
    more = page.get_by_test_id("stSidebarNav").get_by_text(re.compile(r"View \d+ more"))
    if more.count():
        more.first.click()
    open_page(page, title)
    _settle(page)


def test_omar_opens_the_drift_report_acknowledges_the_alert_and_approves_retraining(hub, page):
    page.set_default_timeout(60_000)  # several Streamlit servers may share the machine
    page.goto(hub.ui_url)
    page.get_by_label("Username", exact=True).wait_for(timeout=120_000)
    login(page, hub, "omar")

    # The overview shows churn drifting (red light).
    _nav(page, "Monitoring overview")
    page.get_by_role("heading", name="Monitoring").wait_for()
    page.get_by_text(re.compile(r"drift\s.*breach")).first.wait_for()  # the red light's word

    # The alerts page lists the demo's drift alert, with its evidence.
    _nav(page, "Alerts")
    alert = page.get_by_test_id("stExpander").filter(has_text="Data drift on churn").first
    alert.wait_for()
    screenshot_step(page, "monitoring-1-alerts")
    alert.get_by_text(re.compile(r"Evidence: check #\d+ of churn")).click()

    # The evidence: the deployment's monitoring page at that check; the evidently report is rendered on demand.
    page.get_by_role("heading", name="Deployment monitoring").wait_for()
    _settle(page)
    page.get_by_role("tab", name="Evidently report").click()
    _settle(page)
    page.get_by_role("button", name="Open evidently report").click()
    page.get_by_role("button", name="Download the report (HTML)").wait_for(timeout=240_000)
    page.locator("iframe").first.wait_for(state="attached")
    screenshot_step(page, "monitoring-2-report")

    # Back to the alert: acknowledge it with a note.
    _nav(page, "Alerts")
    alert = page.get_by_test_id("stExpander").filter(has_text="Data drift on churn").first
    alert.get_by_label("Note").fill("contract mix shifted after the price change; retraining")
    alert.get_by_role("button", name="Acknowledge").click()
    page.get_by_text(re.compile(r"Alert #\d+ acknowledged\.")).wait_for()
    _settle(page)

    # Approve the retraining proposal the drift caused: a run is queued, linked to the alert.
    page.get_by_role("button", name="Approve retraining").first.click()
    page.get_by_text(re.compile(r"Retraining approved: run \d+ is queued")).wait_for()
    screenshot_step(page, "monitoring-3-approved")
    page.get_by_text(re.compile(r"acknowledged by omar")).first.wait_for()
