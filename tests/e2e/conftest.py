"""Browser tests: Playwright driving Debian's chromium against real processes.

On with MLOPS_TEST_BROWSER=1 (CI sets it). `hub` starts `python -m mlops_core up` (UI,
worker, scoring service) on free ports against a fresh SQLite database seeded with the demo
accounts; `page` is a fresh browser page. A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlops_core.config import PROJECT_ROOT
from tests.conftest import browser_enabled, skip_or_fail

CHROMIUM = os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DEMO_PASSWORD = "demo-password-e2e"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hub:
    ui_url: str
    api_url: str
    env: dict
    proc: subprocess.Popen
    log: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [sys.executable, "-m", "mlops_core", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"mlops_core {' '.join(args)} failed: {p.stderr}")
        return p


def _browser_enabled():
    if not browser_enabled():
        skip_or_fail(f"browser leg off (install chromium at {CHROMIUM} or set MLOPS_TEST_BROWSER=1)")
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def start_hub(tmp: Path, *, extra_env: dict | None = None, demo: bool = True) -> Hub:
    ui_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'hub.db'}",
        "ARTIFACT_ROOT": str(tmp / "artifacts"),
        "MLOPS_DEMO_PASSWORD": DEMO_PASSWORD,
        "MLOPS_API_PORT": str(api_port),
        "MLOPS_UI_PORT": str(ui_port),
        "MLOPS_WORKER_POLL_SECONDS": "0.3",
        "MLOPS_PUBLIC_URL": f"http://127.0.0.1:{ui_port}",  # notification links point at this hub
        **(extra_env or {}),
    }
    log = tmp / "hub.log"
    args = [sys.executable, "-m", "mlops_core", "up"] + ([] if demo else ["--no-demo"])
    proc = subprocess.Popen(
        args, cwd=PROJECT_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    ui = f"http://127.0.0.1:{ui_port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`mlops_core up` exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{ui}/_stcore/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError(f"UI did not come up:\n{log.read_text()[-3000:]}")
    return Hub(ui_url=ui, api_url=f"http://127.0.0.1:{api_port}", env=env, proc=proc, log=log)


def stop_hub(hub: Hub) -> None:
    try:
        os.killpg(hub.proc.pid, signal.SIGTERM)
        hub.proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(hub.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    _browser_enabled()
    tmp = tmp_path_factory.mktemp("hub")
    h = start_hub(tmp)
    yield h
    stop_hub(h)


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: sync Playwright keeps an asyncio loop running on the main thread
    # while it is open, which would break later tests that call asyncio.run() or start Playwright.
    _browser_enabled()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


# --- helpers a user would recognise -----------------------------------------------------


def login(page, hub: Hub, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(hub.ui_url)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("stSidebarNav").wait_for()


def logout(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()


def open_page(page, title: str) -> None:
    """Click a page in the sidebar navigation."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.wait_for_load_state("networkidle")


def nav_links(page) -> list[str]:
    # Each link's text is "<material icon name>\n\n<title>": keep the title.
    return [
        t.strip().splitlines()[-1].strip()
        for t in page.get_by_test_id("stSidebarNav").get_by_role("link").all_inner_texts()
    ]


def screenshot_step(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
