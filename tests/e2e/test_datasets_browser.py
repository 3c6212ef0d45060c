"""Dan uploads a CSV through the real Datasets page, in chromium, and reads its validation report."""

import pytest

from mlops_core.demo.customers import make_customers
from tests.e2e.conftest import login, open_page

pytestmark = pytest.mark.browser


def test_dan_uploads_a_csv_and_sees_its_validation_report(hub, page, tmp_path):
    """A new extract of the demo customers with negative charges: it becomes a failed version whose
    report says which column is out of range and how to fix it."""
    bad = make_customers(400, seed=21)
    bad.loc[:5, "monthly_charges"] = -12.5
    csv = tmp_path / "customers_q4.csv"
    bad.to_csv(csv, index=False)

    page.set_default_timeout(90_000)  # first page loads are slow on a busy CI machine
    login(page, hub, "dan")
    open_page(page, "Datasets")
    page.get_by_role("heading", name="Datasets").wait_for()
    page.get_by_text("customers", exact=True).first.wait_for()

    form = page.get_by_test_id("stForm").first
    form.get_by_role("textbox", name="Dataset name").fill("customers")
    form.get_by_role("textbox", name="Dataset name").press("Tab")
    form.locator("input[type=file]").set_input_files(str(csv))
    form.get_by_text("customers_q4.csv").wait_for()
    form.get_by_role("button", name="Upload and validate").click()

    page.get_by_text("Registered customers@v4: 400 rows × 11 columns").wait_for(timeout=90_000)
    page.get_by_role("link", name="Open customers@v4, which you just registered").click()
    page.get_by_role("heading", name="customers").wait_for()
    page.get_by_text("Failed validation").wait_for()
    page.get_by_text("6 below the minimum 0").wait_for()
    assert page.get_by_text("Correct those rows in the source").first.is_visible()
