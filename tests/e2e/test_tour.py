"""The role tour (issue 15): every demo account logs in and opens every page of its sidebar in chromium at
1440x900; each page must settle without a Streamlit exception box, and a full-page screenshot of it goes to
test-artifacts/tour/<user>-<page>.png.

With MLOPS_TOUR_DOCS=1 a few key screens per role are also written, scaled down and reduced to a 256-colour
palette, to docs/tour/ (the README's role tour shows them): run that way after a visible change to refresh
them. One browser, one logged-in context per role; "settled" is the same check benchmarks/browser_pages.py
times (a script run started after the click and finished, the status widget idle, no spinner or stale
element, content shown).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from benchmarks.browser_pages import SETTLED_JS, WATCH_JS, log_in, open_app, open_page
from hub_ui.nav import pages_for
from mlops_core.config import PROJECT_ROOT
from mlops_core.demo import DEMO_ACCOUNTS
from tests.e2e.conftest import ARTIFACTS, DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOUR = ARTIFACTS / "tour"
DOCS = PROJECT_ROOT / "docs" / "tour"
VIEWPORT = {"width": 1440, "height": 900}
# The screens the README shows: one or two per role, each where that role starts its work.
DOCS_SCREENS = {
    "alice": ["portfolio", "use-case"],
    "dan": ["dataset"],
    "sara": ["experiments", "run"],
    "omar": ["deployment", "deployment-monitoring"],
    "admin": ["users"],
}
DOCS_WIDTH = 1100  # px: readable in a README, about 100-200 kB a screen as a 256-colour PNG
DOCS_MAX_BYTES = 1_600_000  # the whole docs/tour/ folder
MAX_SHOT_HEIGHT = 6000  # px: a very long page is cut there


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its main area, so a full-page screenshot alone shows one viewport: grow the
    viewport to the content's height for the shot (capped), then restore it."""
    height = page.evaluate(
        """() => { const m = document.querySelector('[data-testid="stMain"]');
                   return Math.max(document.documentElement.scrollHeight, m ? m.scrollHeight : 0); }"""
    )
    height = min(max(int(height), VIEWPORT["height"]), MAX_SHOT_HEIGHT)
    if height > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if height > VIEWPORT["height"]:
            page.set_viewport_size(VIEWPORT)


def _write_docs_screen(page, name: str) -> Path:
    """The viewport (what a person sees first), scaled to DOCS_WIDTH and palette-reduced."""
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(page.screenshot(full_page=False))).convert("RGB")
    img = img.resize((DOCS_WIDTH, round(img.height * DOCS_WIDTH / img.width)), Image.LANCZOS)
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    DOCS.mkdir(parents=True, exist_ok=True)
    out = DOCS / f"{name}.png"
    img.save(out, optimize=True)
    return out


@pytest.mark.parametrize("username,role", [(u, r) for u, r, *_ in DEMO_ACCOUNTS], ids=[a[0] for a in DEMO_ACCOUNTS])
def test_every_page_of_every_role_settles_and_is_screenshotted(hub, browser, username, role):
    docs = os.environ.get("MLOPS_TOUR_DOCS") == "1"
    TOUR.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WATCH_JS)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_app(page, hub.ui_url)
        log_in(page, username, DEMO_PASSWORD)
        specs = pages_for(role)
        assert specs, f"{role} sees no page"
        problems = []
        for spec in specs:
            name = f"{username}-{spec.url_path}"
            open_page(page, spec.url_path, spec.default)
            # Still settled when the screenshot is taken (a page that reruns itself would show here).
            page.wait_for_function(SETTLED_JS, arg=[0, 0, True], timeout=30_000, polling=100)
            if docs and spec.url_path in DOCS_SCREENS.get(username, []):
                _write_docs_screen(page, name)
            shot = TOUR / f"{name}.png"
            _full_page_screenshot(page, shot)
            exceptions = page.get_by_test_id("stException")
            if exceptions.count():
                problems.append(f"{spec.title}: {exceptions.first.inner_text()[:300]}")
            heading = page.locator('[data-testid="stMain"] h1, [data-testid="stMain"] h2').first
            if heading.count() == 0:
                problems.append(f"{spec.title}: no heading on the page")
            width, height = _png_size(shot)
            assert width == VIEWPORT["width"] and height >= 300, f"{shot.name}: {width}x{height}"
            assert shot.stat().st_size > 20_000, f"{shot.name} is nearly empty ({shot.stat().st_size} bytes)"
        assert not problems, "pages that did not render cleanly:\n" + "\n".join(problems)
        # The sidebar is the role's own: as many links as the pages the tour opened, no more.
        assert page.get_by_test_id("stSidebarNav").locator("a").count() == len(specs)
    finally:
        context.close()
    if docs:
        total = sum(p.stat().st_size for p in DOCS.glob("*.png"))
        assert total <= DOCS_MAX_BYTES, f"docs/tour/ is {total:,} bytes; keep it under {DOCS_MAX_BYTES:,}"
