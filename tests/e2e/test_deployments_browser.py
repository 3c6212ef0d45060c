"""Ops in chromium: alice signs off the challenger's evidence, omar deploys it through the gates, the
running scoring service serves it within seconds, then omar rolls back and history shows both moves."""

import re

import httpx
import pytest

from mlops_core.db import Database
from mlops_core.services import deployments, usecases, users
from tests.e2e.conftest import login, logout, screenshot_step

pytestmark = pytest.mark.browser


def _settle(page) -> None:
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")


def _open_deployment_page(page) -> None:
    """The "Deployment" link of the sidebar (not "Deployments", not "Deployment monitoring"); a full page
    load would start a new, logged-out Streamlit session."""
    nav = page.get_by_test_id("stSidebarNav")
    more = page.get_by_test_id("stSidebar").get_by_text(re.compile(r"^View \d+ more$"))
    if more.count():
        more.click()  # a long navigation is collapsed
    nav.get_by_role("link", name=re.compile(r"(^|\s)Deployment$")).click()
    page.get_by_role("heading", name="Deployment", exact=True).wait_for()
    _settle(page)


def _confirm(page, kind: str, target, reason: str, button: str) -> None:
    """The confirmation step of a production action (deploy, override, rollback): a reason, then confirm."""
    box = page.locator(f".st-key-dep_confirm_{kind}_{target}")
    box.get_by_label("Reason (required, kept in the history)").fill(reason)
    box.get_by_label("Reason (required, kept in the history)").press("Tab")
    _settle(page)
    box.get_by_role("button", name=button).click()


def _approve(page, card) -> None:
    """Approve a sign-off; evidence that falls short of a KPI asks for a tick first."""
    tick = card.get_by_text("I approve it although it falls short of the targets above")
    if tick.count():
        tick.click()
        _settle(page)
    card.get_by_role("button", name="Approve").click()


def _serving(hub, key: str) -> str | None:
    try:
        return _ask_serving(hub, key)
    except httpx.HTTPError:  # the scoring service may still be starting
        return None


def _ask_serving(hub, key: str) -> str | None:
    schema = httpx.get(f"{hub.api_url}/v1/deployments/churn", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    if schema.status_code != 200:
        return None
    record = {}
    for col in schema.json()["input_schema"]:
        record[col["name"]] = {"category": (col.get("categories") or ["x"])[0], "boolean": False, "string": "x"}.get(
            col["type"], 1
        )
    r = httpx.post(
        f"{hub.api_url}/v1/deployments/churn/predict",
        headers={"Authorization": f"Bearer {key}"},
        json={"records": [record]},
        timeout=5,
    )
    return r.json().get("model_version") if r.status_code == 200 else None


def _wait_serving(page, hub, key: str, expected: str) -> None:
    for _ in range(240):
        if _serving(hub, key) == expected:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"the scoring service did not serve {expected}; it serves {_serving(hub, key)}")


def test_omar_deploys_the_challenger_after_alices_signoff_then_rolls_back(hub, page):
    db = Database(hub.env["DATABASE_URL"])
    try:
        # Business relaxes the recall KPI for the pilot (the demo's models miss 0.75), so the gates can pass.
        alice = users.actor_for_username(db, username="alice")
        uc = next(u for u in usecases.list_use_cases(db, actor=alice).items if u.title == "Customer churn")
        recall = next(k for k in usecases.model_kpis(db, uc.id) if k.metric == "recall")
        usecases.update_kpi(db, actor=alice, kpi_id=recall.id, target=0.6)
        pending = deployments.list_requests(db, deployment_name="churn", status="pending")[0]
        champion = deployments.get_by_name(db, "churn").model_version_id
        labels = deployments.version_labels(db, [champion, pending.model_version_id])
    finally:
        db.dispose()
    key = hub.cli("apikey", "create", "--deployment", "churn").stdout.strip().splitlines()[-1]
    _wait_serving(page, hub, key, labels[champion])

    page.set_default_timeout(90_000)  # a loaded CI box renders slowly
    login(page, hub, "alice")
    _open_deployment_page(page)
    card = page.locator(f".st-key-dep_req_{pending.id}")
    card.get_by_text("waiting for business").first.wait_for()
    _approve(page, card)
    page.get_by_text("approved.").first.wait_for()
    _settle(page)
    assert card.get_by_role("button", name="Deploy").count() == 0  # business cannot deploy
    logout(page)

    login(page, hub, "omar")
    _open_deployment_page(page)
    card = page.locator(f".st-key-dep_req_{pending.id}")
    card.get_by_role("button", name="Deploy").click()
    # a confirmation step with a required reason, before anything moves
    page.get_by_text(f"Deploy {labels[pending.model_version_id]} on churn (production)?").wait_for()
    assert _serving(hub, key) == labels[champion]
    screenshot_step(page, "deployments_confirm_deploy")
    _confirm(page, "deploy", pending.id, "the challenger passed every gate", "Confirm deploy")
    page.get_by_text(f"Deployed {labels[pending.model_version_id]} on churn").wait_for(timeout=60_000)
    screenshot_step(page, "deployments_deployed")
    _wait_serving(page, hub, key, labels[pending.model_version_id])  # hot reload, no restart

    _settle(page)
    page.get_by_role("button", name="Roll back…").click()
    _confirm(page, "rollback", "churn", "complaints from the call centre", "Confirm rollback")
    page.get_by_text(f"Rolled back churn to {labels[champion]}").wait_for(timeout=60_000)
    _wait_serving(page, hub, key, labels[champion])
    _settle(page)
    page.get_by_role("tab", name="History").click()
    page.locator("[role=gridcell]", has_text="rollback").first.wait_for(state="attached")
    page.locator("[role=gridcell]", has_text="deploy").first.wait_for(state="attached")
    page.locator("[role=gridcell]", has_text="complaints from the call centre").first.wait_for(state="attached")
    screenshot_step(page, "deployments_rolled_back")
