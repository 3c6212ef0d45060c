"""Stored script through the Evidently report (security issue 12, finding 2).

The attacker, with any API key for `churn`, sent records whose category value was
`</script><script>...</script>`, then waited for the monitor. Evidently inlines the report's data in a
<script> with json.dumps (which leaves "</" as it is), and the page showed the report in a same-origin
iframe, so opening "Evidently report" ran the attacker's script in the app's origin. Now the inlined data
is escaped, and the page shows the report only inside an iframe sandboxed without allow-same-origin."""

from __future__ import annotations

import re
import time

from sqlmodel import select

from mlops_core import artifacts
from mlops_core.models.monitoring import MonitorCheck
from mlops_core.monitoring.evidently_report import escape_report_data
from mlops_core.services import monitoring
from tests.conftest import CHROMIUM, browser_enabled, make_people, skip_or_fail
from tests.pages.helpers import app_as, no_exceptions
from tests.security.test_scoring_attacks import client, scoring  # noqa: F401 - fixture
from tests.services.experiments_world import run_jobs
from tests.services.monitoring_world import customers, log_traffic, make_world

PAYLOAD = "</script><script>window.top.pwned = document.cookie</script>"
ESCAPED = PAYLOAD.replace("<", "\\u003c")


def test_a_script_sent_as_a_category_value_cannot_leave_the_data_of_the_evidently_report(scoring, people):  # noqa: F811
    s = scoring
    with client(s) as c:
        for i in range(40):
            rec = {**s.record, "contract": PAYLOAD if i % 2 else s.record["contract"]}
            assert c.post("/v1/deployments/churn/predict", json={"records": [rec]}).status_code == 200
    # the client's exit flushed the prediction log; the monitor runs, then ops open the report
    summary = monitoring.run_monitor(s.db, deployment_name="churn")
    check_id = summary["checks"][0]["check_id"]
    assert summary["checks"][0]["status"] == "ok", summary
    monitoring.request_report(s.db, actor=people["ops"], check_id=check_id)
    assert "finished" in run_jobs(s.db)

    html = monitoring.report_html(s.db, check_id=check_id)
    assert PAYLOAD not in html and "</script><script>window.top" not in html
    assert ESCAPED in html, "the value is in the report, as text the HTML parser cannot end the block with"
    # every <script> evidently opens is closed by its own tag: nothing the traffic sent adds one
    data = re.search(r"<script>\n\s*var \w+ = .*;\n\s*var additional_graphs_\w+ = .*;\n</script>", html)
    assert data is not None and "<" not in data.group(0)[len("<script>") : -len("</script>")]

    # A report stored before the fix (unescaped) is escaped when it is read again.
    with s.db.read() as session:
        key = session.exec(select(MonitorCheck.report_key).where(MonitorCheck.id == check_id)).one()
    artifacts.put_bytes(key, html.replace(ESCAPED, PAYLOAD).encode("utf-8"))
    assert PAYLOAD in artifacts.get_bytes(key).decode("utf-8")
    again = monitoring.report_html(s.db, check_id=check_id)
    assert PAYLOAD not in again and ESCAPED in again
    assert escape_report_data(again) == (again, 1), "escaping is idempotent"


def _page_with_report(sqlite_db, report: str):
    """The Deployment monitoring page of a checked deployment whose stored report is `report`."""
    people = make_people(sqlite_db)
    world = make_world(sqlite_db, people)
    log_traffic(sqlite_db, world, customers(50, seed=5))
    check_id = monitoring.run_monitor(sqlite_db, deployment_name="churn")["checks"][0]["check_id"]
    key = f"monitoring/reports/check-{check_id}.html"
    artifacts.put_bytes(key, report.encode("utf-8"))
    with sqlite_db.unit_of_work() as s:
        s.get(MonitorCheck, check_id).report_key = key
    at = app_as(people["ops"], "pages/deployment_monitoring.py")
    no_exceptions(at)
    return at


# A report as the attacker made it (an old, unescaped one): its script tries to reach the app.
HOSTILE_REPORT = (
    "<!DOCTYPE html><html><body><div id='root'>report</div><script>"
    "window.sameOrigin = (() => { try { return !!window.top.document.cookie || true } "
    "catch (e) { return false } })(); window.top.pwned = 1;</script></body></html>"
)


def _wrapper(at) -> str:
    [frame] = at.get("iframe")
    return frame.proto.srcdoc


def test_the_page_shows_the_report_only_in_an_iframe_sandboxed_without_same_origin(sqlite_db):
    at = _page_with_report(sqlite_db, HOSTILE_REPORT)
    wrapper = _wrapper(at)
    sandbox = re.findall(r'<iframe [^>]*sandbox="([^"]*)"', wrapper)
    assert sandbox == ["allow-scripts"], wrapper[:300]
    assert "allow-same-origin" not in wrapper
    # our wrapper holds no markup of the report: all of it is inside the srcdoc attribute, entity-escaped
    assert "<script" not in wrapper and "&lt;script&gt;" in wrapper
    assert [b.label for b in at.get("download_button")] == ["Download the report (HTML)"]


def test_in_a_browser_the_reports_script_runs_in_an_opaque_origin_that_cannot_reach_the_app(sqlite_db):
    if not browser_enabled():
        skip_or_fail("browser leg off (MLOPS_TEST_BROWSER=1)")
    from playwright.sync_api import sync_playwright

    at = _page_with_report(sqlite_db, HOSTILE_REPORT)
    wrapper = _wrapper(at)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_content(f"<html><body>{wrapper}</body></html>")
            deadline = time.monotonic() + 20
            while len(page.frames) < 2 or page.frames[1].evaluate("window.sameOrigin") is None:
                assert time.monotonic() < deadline, "the report's script never ran"
                time.sleep(0.1)
            report = page.frames[1]
            assert report.evaluate("window.origin") == "null"
            assert report.evaluate("window.sameOrigin") is False
            assert page.evaluate("window.pwned") is None
        finally:
            browser.close()
