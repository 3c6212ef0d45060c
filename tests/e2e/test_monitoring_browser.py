"""Ops in chromium: omar sees the demo's drift alert, opens its evidently report, acknowledges the alert,
and approves the retraining proposal it caused. Then (issue 18) sara watches churn with an email address, a new
drift alert is raised, the email reaches a real SMTP server with a link, and the link opens the alert after login.

The module's hub is started with an SMTP server of the test (aiosmtpd on a free port) as its mail server."""

import email
import email.policy
import re
import socket
import time

import pytest

from tests.e2e.conftest import (
    DEMO_PASSWORD,
    _browser_enabled,
    login,
    open_page,
    screenshot_step,
    start_hub,
    stop_hub,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mailbox():
    """A real SMTP server on a free port; yields (port, list of received envelopes)."""
    _browser_enabled()
    from aiosmtpd.controller import Controller

    got: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            got.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, got
    ctl.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, mailbox):
    """This module's hub (the conftest one, plus the SMTP server): one hub start for both tests."""
    _browser_enabled()
    h = start_hub(
        tmp_path_factory.mktemp("hub"),
        extra_env={"MLOPS_SMTP_HOST": "127.0.0.1", "MLOPS_SMTP_PORT": str(mailbox[0])},
    )
    yield h
    stop_hub(h)


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


def _expanded(alert):
    """Open an alert's expander (collapsed when more than three alerts are listed)."""
    if alert.locator("details[open]").count() == 0:
        alert.locator("summary").first.click()
    alert.locator("details[open]").wait_for(state="attached")
    return alert


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
    _expanded(alert)
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
    alert = _expanded(page.get_by_test_id("stExpander").filter(has_text="Data drift on churn").first)
    _settle(page)  # opening the expander may coincide with a rerun that draws it again, collapsed
    alert = _expanded(alert)
    alert.get_by_label("Note").fill("contract mix shifted after the price change; retraining")
    alert.get_by_role("button", name="Acknowledge").click()
    page.get_by_text(re.compile(r"Alert #\d+ acknowledged\.")).wait_for()
    _settle(page)

    # Approve the retraining proposal the drift caused: a run is queued, linked to the alert.
    page.get_by_role("button", name="Approve retraining").first.click()
    page.get_by_text(re.compile(r"Retraining approved: run \d+ is queued")).wait_for()
    screenshot_step(page, "monitoring-3-approved")
    page.get_by_text(re.compile(r"acknowledged by omar")).first.wait_for(state="attached")  # in a collapsed alert


def _hub_db(hub):
    from mlops_core.db import Database

    return Database(hub.env["DATABASE_URL"])


def _resolve_open_drift_alerts(hub) -> None:
    """The demo's drift alert is still open: resolve it, so the next drifting check opens a new one."""
    from mlops_core.models.users import User
    from mlops_core.services import monitoring
    from mlops_core.services.auth import Actor

    db = _hub_db(hub)
    try:
        with db.read() as s:
            omar = s.exec(User.__table__.select().where(User.username == "omar")).one()
        actor = Actor(omar.id, "omar", "ops")
        for a in monitoring.list_alerts(db, states=["open", "acknowledged"], kind="drift"):
            monitoring.resolve_alert(db, actor=actor, alert_id=a.id, note="market shift handled; watching again")
    finally:
        db.dispose()


def _session_cookie_set(page, deadline_s: float = 30) -> None:
    from mlops_core.services import ui_sessions

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any(c["name"] == ui_sessions.COOKIE_NAME for c in page.context.cookies()):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"session cookie never set after {deadline_s} s")


def _text(envelope) -> str:
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return msg["Subject"] + "\n" + msg.get_body(preferencelist=("plain",)).get_content()


def test_sara_watches_churn_gets_the_drift_alert_by_email_and_its_link_opens_it_after_login(
    hub, page, browser, mailbox
):
    from mlops_core.services import usecases

    page.set_default_timeout(60_000)
    _port, inbox = mailbox
    db = _hub_db(hub)
    try:
        churn_id = usecases.resolve_use_case(db, "Customer churn").id
    finally:
        db.dispose()

    # sara gives her email address and watches churn
    login(page, hub, "sara")
    _session_cookie_set(page)  # so the page loads below keep her logged in
    page.goto(f"{hub.ui_url}/account")
    page.get_by_label("Email address").fill("sara@example.com")
    page.get_by_role("button", name="Save notification settings").click()
    page.get_by_text("Notification settings saved.").wait_for()
    page.goto(f"{hub.ui_url}/use-case?id={churn_id}")
    page.get_by_role("button", name="Watch", exact=True).click()
    page.get_by_role("button", name="Unwatch", exact=True).wait_for()
    screenshot_step(page, "notify-1-watching")

    # a new drift alert on churn: the drifting traffic checked again after the old alert was resolved
    _resolve_open_drift_alerts(hub)
    already = len(inbox)
    out = hub.cli("monitor", "run", "--deployment", "churn").stdout
    assert "DRIFT" in out, out

    # the worker delivers the email (it may be busy with the retraining run approved above)
    link = None
    deadline = time.monotonic() + 240
    while link is None and time.monotonic() < deadline:
        for env in inbox[already:]:
            body = _text(env)
            m = re.search(r"Open: (\S+/alerts\?id=(\d+))", body)
            if "sara@example.com" in env.rcpt_tos and "drift" in body.lower() and m:
                link, alert_id = m.group(1), m.group(2)
                break
        else:
            time.sleep(0.5)
    assert link is not None, f"no drift alert email for sara within 240 s; got {[_text(e)[:200] for e in inbox]}"
    assert link.startswith(hub.ui_url + "/")  # MLOPS_PUBLIC_URL: the link points at this hub

    # the link, opened in a logged-out browser: the login form, then the alert
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        fresh = context.new_page()
        fresh.set_default_timeout(60_000)
        fresh.goto(link)
        fresh.get_by_role("button", name="Log in").wait_for()
        assert fresh.get_by_text("Page not found").count() == 0
        fresh.get_by_label("Username", exact=True).fill("sara")
        fresh.get_by_role("textbox", name="Password", exact=True).fill(DEMO_PASSWORD)
        fresh.get_by_role("button", name="Log in").click()
        fresh.get_by_role("heading", name="Alerts").first.wait_for()
        fresh.get_by_text(re.compile(rf"#{alert_id} · data drift")).first.wait_for()
        assert f"/alerts?id={alert_id}" in fresh.url
        screenshot_step(fresh, "notify-2-alert-from-email")
    finally:
        context.close()
