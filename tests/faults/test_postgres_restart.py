"""Postgres drops every connection (pg_terminate_backend on this test's own database — the shared server
keeps running) while the UI, a worker and the scoring service run: each recovers by itself, at most the
in-flight request fails, and after a clean shutdown every prediction answered 200 is in the log."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database
from tests.conftest import TEST_PASSWORD, browser_enabled
from tests.faults.workers import enqueue, status, wait_for
from tests.faults.world import ok_request_ids, predict, stopped_cleanly, terminate_connections

CHROMIUM = os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium")


def _browser_login(ui: str, username: str) -> str:
    """Log in through the real UI process in chromium; returns the sidebar navigation (needs MLOPS_TEST_BROWSER=1)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = b.new_page()
        page.set_default_timeout(90_000)  # CI boxes are busy: a cold Streamlit session may take a while
        try:
            page.goto(ui)
            page.get_by_label("Username", exact=True).fill(username)
            page.get_by_role("textbox", name="Password", exact=True).fill(TEST_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            nav = page.get_by_test_id("stSidebarNav")
            nav.wait_for()
            return nav.inner_text()
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"postgres_restart_login_{int(time.time())}.png"), full_page=True)
            raise
        finally:
            b.close()


def _apptest_login(username: str):
    """The login page through AppTest (the same app.py and service calls the UI process runs)."""
    from tests.pages.helpers import by_label, no_exceptions

    from streamlit.testing.v1 import AppTest

    # Streamlit's script runner replaces sys.modules["__main__"] with app.py; put it back, or processes
    # that later tests start with multiprocessing's "spawn" would run app.py as their main module.
    main = sys.modules["__main__"]
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=60)
        at.run()
        by_label(at.text_input, "Username").input(username)
        by_label(at.text_input, "Password").input(TEST_PASSWORD)
        at.button[0].click()
        at.run()
        no_exceptions(at)
        return at.session_state["actor"].username if "actor" in at.session_state else None
    finally:
        sys.modules["__main__"] = main


def test_every_process_recovers_when_postgres_drops_all_connections_and_no_prediction_is_lost(
    seeded_pg, services_for, workers_for, monkeypatch
):
    url, dep = seeded_pg
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    browser = browser_enabled() and Path(CHROMIUM).exists()
    db = Database(url)
    svc = services_for(url)
    api = svc.start_serve("scoring")
    w = workers_for(url)
    worker = w.start("wA")
    ui = svc.ui("ui")
    svc.wait_serving("scoring", api, dep)
    first = enqueue(db, "noop", {})
    wait_for(lambda: status(db, first) == "finished", 90, "the worker's first job")

    answered: list[str] = []
    with httpx.Client(timeout=30) as c:
        for _ in range(20):
            code, rid = predict(c, api, dep)
            assert code == 200
            answered.append(rid)
    wait_for(lambda: len(ok_request_ids(db)) == 20, 10, "the first predictions to be written")
    if browser:  # the UI process now holds pooled connections too
        assert "Overview" in _browser_login(ui, "alice")

    # Traffic keeps flowing while every connection to the database is cut.
    stop = threading.Event()
    during = {"ok": 0, "failed": []}

    def traffic():
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                try:
                    code, rid = predict(c, api, dep)
                except httpx.HTTPError as exc:
                    during["failed"].append(repr(exc))
                    continue
                if code == 200:
                    during["ok"] += 1
                    answered.append(rid)
                else:
                    during["failed"].append(code)
                time.sleep(0.01)

    t = threading.Thread(target=traffic)
    t.start()
    time.sleep(0.5)
    killed = terminate_connections(url, rounds=5, pause=0.3)
    time.sleep(1.5)  # the prediction writer's next flushes now meet dead connections
    stop.set()
    t.join(30)
    forget_database(url)
    db.dispose()
    assert killed >= 3, f"connections of the worker, the scoring service and this test were cut ({killed})"
    assert len(during["failed"]) <= 1, f"at most the in-flight request fails: {during}"
    assert during["ok"] > 10

    # Each process is back on its own.
    with httpx.Client(timeout=30) as c:
        code, rid = predict(c, api, dep)
        assert code == 200, "the scoring service answers again"
        answered.append(rid)
    second = enqueue(db, "noop", {})
    wait_for(lambda: status(db, second) == "finished", 90, "the worker to run a job enqueued after the cut")
    assert httpx.get(f"{ui}/_stcore/health", timeout=10).status_code == 200
    assert _apptest_login("alice") == "alice", "logging in still works"
    if browser:
        assert "Overview" in _browser_login(ui, "alice"), "logging in through the UI process still works"
    assert all(svc.procs[n].poll() is None for n in ("scoring", "ui")) and worker.poll() is None, "no process died"

    # Clean shutdown: every prediction that got a 200 is in the log.
    assert stopped_cleanly(svc, "scoring"), svc.log("scoring")[-3000:]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    logged = ok_request_ids(db, dep.deployment_id)
    missing = set(answered) - set(logged)
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions are missing from the log"
    assert len(logged) == len(answered)
    print(
        f"\n{killed} connections cut; {during['ok']} requests answered during the cut, "
        f"{len(during['failed'])} failed; {len(answered)} predictions answered, {len(logged)} logged; "
        f"browser login {'checked' if browser else 'off (MLOPS_TEST_BROWSER)'}"
    )
    db.dispose()


@pytest.fixture(autouse=True)
def _settings_back():
    yield
    reload_settings()
