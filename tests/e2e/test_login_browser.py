"""Logging in and out through the real page, in chromium."""

import pytest

from tests.e2e.conftest import login, logout, nav_links

pytestmark = pytest.mark.browser


def test_alice_logs_in_sees_business_navigation_and_logs_out(hub, page):
    login(page, hub, "alice")
    links = nav_links(page)
    assert "Overview" in links and "Activity" in links
    assert "Users & roles" not in links
    page.get_by_text("alice").first.wait_for()
    logout(page)
    assert page.get_by_label("Username").is_visible()


def test_admin_logs_in_and_sees_the_users_page(hub, page):
    login(page, hub, "admin")
    assert "Users & roles" in nav_links(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users & roles").click()
    page.get_by_role("heading", name="Users & roles").wait_for()
    page.get_by_test_id("stDataFrame").first.wait_for()  # the users table (the role matrix is another)
    # The table is a canvas grid; its cells are in the DOM for screen readers.
    page.locator("[role=gridcell]", has_text="sara").first.wait_for(state="attached")
    logout(page)


def test_a_wrong_password_shows_an_error_in_the_browser(hub, page):
    page.goto(hub.ui_url)
    page.get_by_label("Username", exact=True).fill("alice")
    page.get_by_role("textbox", name="Password", exact=True).fill("wrong-password-here")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("wrong username or password").wait_for()
    assert page.get_by_test_id("stSidebarNav").count() == 0
