"""Issue 15, problem 2, in chromium: a refresh keeps you logged in (an httpOnly session cookie), a shared link
opened while logged out shows the login form and then the linked object, and logging out ends the session
for good (a refresh shows the login form)."""

import time

import pytest

from mlops_core.db import Database
from mlops_core.services import datasets, ui_sessions
from tests.e2e.conftest import DEMO_PASSWORD, _browser_enabled, login, logout, start_hub, stop_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _session_cookie(page, *, present: bool, deadline_s: float = 20):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        cookies = [c for c in page.context.cookies() if c["name"] == ui_sessions.COOKIE_NAME]
        if bool(cookies) == present:
            return cookies[0] if cookies else None
        page.wait_for_timeout(200)
    raise AssertionError(f"session cookie {'never set' if present else 'still there'} after {deadline_s} s")


@pytest.fixture(scope="module")
def bare_hub(tmp_path_factory):
    """`up` without the demo (starts in seconds): one user and two small datasets are enough here."""
    _browser_enabled()
    tmp = tmp_path_factory.mktemp("hub_sessions")
    hub = start_hub(tmp, demo=False)
    try:
        hub.cli("user", "add", "alice", "--role", "business", "--password", DEMO_PASSWORD)
        for name, rows in (("alpha", 5), ("beta", 7)):
            csv = tmp / f"{name}.csv"
            csv.write_text("x,y\n" + "".join(f"{i},{i * 2}\n" for i in range(rows)))
            hub.cli("dataset", "add", name, str(csv))
        yield hub
    finally:
        stop_hub(hub)


def _not_the_default_dataset(hub) -> tuple[int, str]:
    """The dataset page opens its first dataset by default: link to the other one."""
    db = Database(hub.env["DATABASE_URL"])
    try:
        d = datasets.list_datasets(db)[-1]
        return d.id, d.name
    finally:
        db.dispose()


def test_refresh_keeps_the_session_deep_links_land_after_login_and_logout_ends_it(bare_hub, page):
    hub = bare_hub
    login(page, hub, "alice")
    cookie = _session_cookie(page, present=True)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(ui_sessions.COOKIE_NAME) == -1  # scripts cannot read it

    page.reload()
    page.get_by_test_id("stSidebarNav").wait_for()
    page.get_by_role("button", name="Log out").wait_for()
    assert page.get_by_label("Username", exact=True).count() == 0

    logout(page)
    _session_cookie(page, present=False)
    page.reload()
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_test_id("stSidebarNav").count() == 0

    # A link shared in a notification, opened logged out: the login form (not "Page not found"), then that dataset.
    dataset_id, name = _not_the_default_dataset(hub)
    page.goto(f"{hub.ui_url}/dataset?id={dataset_id}")
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_label("Username", exact=True).fill("alice")
    page.get_by_role("textbox", name="Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name=name).wait_for()
    assert f"/dataset?id={dataset_id}" in page.url
    assert page.get_by_text("Page not found").count() == 0
