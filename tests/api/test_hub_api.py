"""The Hub API (/api/v1) through a real `serve` process: token refusals (missing, wrong, expired, revoked, and a
revoke that takes effect on the very next request), role checks identical to the UI (a business token cannot
deploy, an ops token can), 404 for unknown ids, pagination, 400/409 for bad input, an audit row under the
token's user for every write, and the OpenAPI docs. Runs on SQLite and Postgres (tests/api/conftest.py)."""

from __future__ import annotations

import httpx
import pytest

from mlops_core.config import reload_settings
from mlops_core.errors import PermissionDenied
from mlops_core.services import audit, collab, deployments, usecases, users
from mlops_core.services.auth import Actor, require
from tests.services.deployments_world import make_world

SYSTEM = Actor.system()


@pytest.fixture(scope="module")
def world(hub):
    """A use case with a model KPI, a validated dataset and two registered versions of churn-model."""
    return make_world(hub.db, hub.people, versions=2)


def _audit(hub, *, username: str, action: str, entity_id=None) -> list:
    return audit.list_events(
        hub.db,
        actor=SYSTEM,
        username=username,
        action=action,
        entity_id=str(entity_id) if entity_id is not None else None,
    ).events


def _ui_refusal(actor: Actor, action: str) -> str:
    """The sentence the UI shows when this role tries this action (the service's PermissionDenied)."""
    with pytest.raises(PermissionDenied) as e:
        require(actor, action)
    return str(e.value)


# --- tokens --------------------------------------------------------------------------------------------


def test_a_request_without_a_token_is_refused_with_how_to_get_one(hub, api):
    r = api(None).get("/me")
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == "unauthenticated" and "Authorization: Bearer" in body["detail"]
    assert "My account" in body["detail"] and r.headers["www-authenticate"] == "Bearer"
    # A Basic header is no token either.
    r = httpx.get(f"{hub.url}/api/v1/me", auth=("alice", "x"))
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_a_wrong_token_is_refused(hub):
    r = hub.client("mlh_not-a-real-token").get("/use-cases")
    assert r.status_code == 401
    assert r.json() == {
        "detail": "the personal access token is unknown or revoked; create a new one on My account",
        "error": "unauthenticated",
    }


def test_an_expired_token_is_refused_with_its_expiry_date(hub, monkeypatch):
    monkeypatch.setenv("MLOPS_TOKEN_DAYS", "0")  # expires the moment it is created
    reload_settings()
    try:
        token = users.create_token(hub.db, actor=hub.people["ops"], username="omar", name="short-lived")
    finally:
        monkeypatch.delenv("MLOPS_TOKEN_DAYS")
        reload_settings()
    expiry = next(
        t.expires_at
        for t in users.list_tokens(hub.db, actor=hub.people["ops"], username="omar")
        if t.name == "short-lived"
    )
    r = hub.client(token).get("/me")
    assert r.status_code == 401
    assert r.json()["detail"] == f"token expired on {expiry:%Y-%m-%d}; create a new one on My account"


def test_a_new_token_expires_after_the_configured_days_and_me_says_so(hub, api):
    r = api("data_scientist").get("/me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["username"], me["role"]) == ("sara", "data_scientist")
    stored = next(
        t
        for t in users.list_tokens(hub.db, actor=hub.people["data_scientist"], username="sara")
        if t.prefix == me["token"]["prefix"]
    )
    assert (stored.expires_at - stored.created_at).days == 90
    assert me["token"]["expires_at"].startswith(f"{stored.expires_at:%Y-%m-%d}")


def test_a_revoked_token_is_refused_on_the_very_next_request(hub):
    token = users.create_token(hub.db, actor=hub.people["business"], username="alice", name="to revoke")
    client = hub.client(token)
    assert client.get("/me").status_code == 200
    tid = next(
        t.id for t in users.list_tokens(hub.db, actor=hub.people["business"], username="alice") if t.name == "to revoke"
    )
    users.revoke_token(hub.db, actor=hub.people["business"], token_id=tid)
    r = client.get("/me")
    assert r.status_code == 401
    assert r.json()["detail"].startswith("token revoked on ") and "create a new one on My account" in r.json()["detail"]
    assert client.post("/use-cases", json={"title": "Written with a revoked token"}).status_code == 401
    assert usecases.list_use_cases(hub.db, search="revoked token").total == 0


def test_my_tokens_are_listed_without_their_secret_and_revoked_over_the_api(hub, api):
    token = users.create_token(hub.db, actor=hub.people["data_engineer"], username="dan", name="ci laptop")
    dan = hub.client(token)
    r = dan.get("/me/tokens")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    mine = next(t for t in items if t["name"] == "ci laptop")
    assert mine["current"] is True and mine["revoked_at"] is None
    assert set(mine) >= {"id", "name", "created_at", "expires_at", "last_used_at"}
    assert token not in r.text and token[10:] not in r.text and "hash" not in r.text  # never the secret
    assert {t["name"] for t in items} == {t.name for t in users.list_tokens(hub.db, actor=SYSTEM, username="dan")}
    # Another user's token: refused for a non-admin (the UI's rule), still working afterwards.
    other = next(t.id for t in users.list_tokens(hub.db, actor=SYSTEM, username="sara") if t.name.endswith("tests"))
    r = dan.delete(f"/me/tokens/{other}")
    assert r.status_code == 403 and r.json()["detail"] == _ui_refusal(hub.people["data_engineer"], "user.manage")
    assert api("data_scientist").get("/me").status_code == 200
    assert dan.get("/me/tokens", params={"username": "sara"}).status_code == 403
    assert dan.delete("/me/tokens/987654").status_code == 404
    # Revoking the token in use: audited under dan, refused on the very next request.
    r = dan.delete(f"/me/tokens/{mine['id']}")
    assert r.status_code == 204, r.text
    assert _audit(hub, username="dan", action="token.revoke")
    r = dan.get("/me/tokens")
    assert r.status_code == 401 and r.json()["detail"].startswith("token revoked on ")


def test_an_admin_revokes_another_users_token_over_the_api(hub, api):
    token = users.create_token(hub.db, actor=hub.people["ops"], username="omar", name="leaked")
    assert hub.client(token).get("/me").status_code == 200
    admin = api("admin")
    r = admin.get("/me/tokens", params={"username": "omar"})
    assert r.status_code == 200, r.text
    leaked = next(t for t in r.json()["items"] if t["name"] == "leaked")
    assert leaked["current"] is False
    assert admin.delete(f"/me/tokens/{leaked['id']}").status_code == 204
    assert hub.client(token).get("/me").status_code == 401
    events = _audit(hub, username=hub.people["admin"].username, action="token.revoke")
    assert any(e.entity_id == str(hub.people["ops"].id) for e in events)
    assert api("ops").get("/me").status_code == 200  # omar's other token is untouched


# --- use cases and KPIs ---------------------------------------------------------------------------------


def test_use_case_writes_go_through_the_service_and_leave_audit_rows_under_the_token_user(hub, api):
    alice = api("business")
    r = alice.post("/use-cases", json={"title": "API fraud", "problem_statement": "Chargebacks.", "tags": ["api"]})
    assert r.status_code == 201, r.text
    uc = r.json()
    assert uc["status"] == "proposed" and uc["owner_username"] == "alice"
    r = alice.patch(f"/use-cases/{uc['id']}", json={"expected_version": uc["version"], "objectives": "Cut losses."})
    assert r.status_code == 200, r.text
    assert r.json()["objectives"] == "Cut losses."
    # The editor's stale version is a conflict, and nothing is written.
    stale = alice.patch(f"/use-cases/{uc['id']}", json={"expected_version": uc["version"], "objectives": "Stale."})
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    assert usecases.get_use_case(hub.db, use_case_id=uc["id"]).objectives == "Cut losses."
    r = alice.post(f"/use-cases/{uc['id']}/transitions", json={"to_status": "approved", "note": "go"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = alice.post(
        f"/use-cases/{uc['id']}/kpis",
        json={"kind": "business", "name": "Losses", "direction": "<=", "target": 1000, "unit": "EUR"},
    )
    assert r.status_code == 201, r.text
    kpi = r.json()
    r = alice.post(
        f"/use-cases/{uc['id']}/kpis/{kpi['id']}/readings", json={"value": 1200, "measured_on": "2026-01-31"}
    )
    assert r.status_code == 201, r.text
    readings = alice.get(f"/use-cases/{uc['id']}/kpis/{kpi['id']}/readings").json()
    assert [x["value"] for x in readings["items"]] == [1200.0] and readings["next_offset"] is None
    for action in ("usecase.create", "usecase.update", "usecase.transition", "kpi.create", "kpi.reading"):
        rows = _audit(hub, username="alice", action=action, entity_id=uc["id"])
        assert rows, f"no {action} audit row by alice"


def test_a_data_scientist_token_cannot_create_a_use_case_with_the_ui_sentence(hub, api):
    r = api("data_scientist").post("/use-cases", json={"title": "Not mine to create"})
    assert r.status_code == 403
    assert r.json() == {
        "detail": _ui_refusal(hub.people["data_scientist"], "usecase.write"),
        "error": "permission_denied",
    }
    assert usecases.list_use_cases(hub.db, search="not mine").total == 0


def test_bad_input_is_a_400_with_a_sentence_never_a_500(hub, api):
    alice = api("business")
    uc = alice.post("/use-cases", json={"title": "Bad input case"}).json()
    cases = [
        alice.post("/use-cases", json={"title": "x", "colour": "red"}),  # unknown field
        alice.post("/use-cases", json=["not", "an", "object"]),
        alice.post("/use-cases", content=b"{not json", headers={"content-type": "application/json"}),
        alice.patch(f"/use-cases/{uc['id']}", json={"title": "no version"}),
        alice.post(
            f"/use-cases/{uc['id']}/kpis", json={"kind": "business", "name": "N", "direction": ">=", "target": "lots"}
        ),
        alice.post(f"/use-cases/{uc['id']}/transitions", json={"to_status": "flying"}),
        alice.get("/use-cases", params={"limit": 0}),
        alice.get("/use-cases/not-a-number"),
    ]
    for r in cases:
        assert r.status_code == 400, (r.request.method, r.request.url, r.status_code, r.text)
        assert r.json()["error"] == "invalid" and r.json()["detail"]
    assert "target" in cases[4].json()["detail"] and "expected_version" in cases[3].json()["detail"]
    assert alice.post("/use-cases", json={"title": "Bad input case"}).status_code == 409


def test_lists_are_paginated_with_next_offset(hub, api):
    alice = api("business")
    for i in range(3):
        assert alice.post("/use-cases", json={"title": f"Paged {i}", "tags": ["paged"]}).status_code == 201
    first = alice.get("/use-cases", params={"tag": "paged", "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2 and first["total"] == 3
    rest = alice.get("/use-cases", params={"tag": "paged", "limit": 2, "offset": first["next_offset"]}).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    titles = [u["title"] for u in first["items"] + rest["items"]]
    assert sorted(titles) == ["Paged 0", "Paged 1", "Paged 2"]


@pytest.mark.parametrize(
    "path",
    [
        "/use-cases/999999",
        "/use-cases/999999/kpis",
        "/use-cases/999999/history",
        "/deployments/no-such-endpoint",
        "/deployments/no-such-endpoint/history",
        "/deployment-requests/999999",
        "/monitoring/deployments/no-such-endpoint",
        "/monitoring/alerts/999999",
        "/monitoring/checks/999999",
        "/jobs/999999",
        "/no-such-route",
    ],
)
def test_unknown_ids_are_a_404_with_a_sentence(api, path):
    r = api("ops").get(path)
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "not_found" and r.json()["detail"]


def test_a_kpi_of_another_use_case_is_not_found_under_this_one(hub, api, world):
    alice = api("business")
    other = alice.post("/use-cases", json={"title": "Other use case"}).json()
    r = alice.get(f"/use-cases/{other['id']}/kpis/{world.kpi_id}/readings")
    assert r.status_code == 404 and f"has no KPI {world.kpi_id}" in r.json()["detail"]


# --- deployments ----------------------------------------------------------------------------------------


def test_business_cannot_deploy_but_ops_can_and_the_move_is_audited_under_ops(hub, api, world):
    sara, alice, omar = api("data_scientist"), api("business"), api("ops")
    r = sara.post("/deployments/api-churn/requests", json={"model": "churn-model:1", "note": "first"})
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["model_version_id"] == world.versions[0] and req["verdict"] == "failed"  # sign-off pending
    status = omar.get("/deployments/api-churn").json()
    assert [p["id"] for p in status["pending_requests"]] == [req["id"]]
    assert {g["gate"] for g in status["pending_requests"][0]["gates"]} >= {"business_signoff", "kpis_met"}
    collab.decide_signoff(
        hub.db,
        actor=hub.people["business"],
        approve=True,
        signoff_id=collab.signoffs_for(hub.db, "model_version", world.versions[0])[0].id,
    )
    deployments.set_regression_tolerance(hub.db, actor=hub.people["ops"], deployment_name="api-churn", tolerance=1.0)

    refused = alice.post(f"/deployment-requests/{req['id']}/deploy")
    assert refused.status_code == 403
    assert refused.json()["detail"] == _ui_refusal(hub.people["business"], "deployment.deploy")
    assert deployments.get_by_name(hub.db, "api-churn").model_version_id is None

    r = omar.post(f"/deployment-requests/{req['id']}/deploy", json={})
    assert r.status_code == 200, r.text
    assert r.json()["model_version_id"] == world.versions[0]
    assert _audit(hub, username="omar", action="deployment.deploy")
    # Deploying the same request twice is a conflict, not a second move.
    again = omar.post(f"/deployment-requests/{req['id']}/deploy")
    assert again.status_code == 409 and "already deployed" in again.json()["detail"]


def test_a_model_can_be_requested_by_alias_and_a_bad_reference_says_how_to_write_it(hub, api, world):
    from mlops_core.services import registry

    registry.set_alias(
        hub.db, actor=hub.people["data_scientist"], model_name="churn-model", alias="challenger", version=2
    )
    sara = api("data_scientist")
    r = sara.post(
        "/deployments/api-staging/requests", json={"model": "churn-model@challenger", "environment": "staging"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_version_id"] == world.versions[1]
    bad = sara.post("/deployments/api-staging/requests", json={"model": "churn-model v2"})
    assert bad.status_code == 400 and "NAME@ALIAS" in bad.json()["detail"]
    missing = sara.post("/deployments/api-staging/requests", json={"model": "churn-model@nobody"})
    assert missing.status_code == 404
    assert api("ops").post("/deployments/api-staging/requests", json={"model": "churn-model:1"}).status_code == 403


def test_rollback_needs_ops_and_returns_to_the_previous_version(hub, api, world):
    sara, omar = api("data_scientist"), api("ops")
    assert omar.get("/deployments/api-churn").json()["deployment"]["model_version_id"] == world.versions[0]
    req = sara.post("/deployments/api-churn/requests", json={"model_version_id": world.versions[1]}).json()
    collab.decide_signoff(
        hub.db,
        actor=hub.people["business"],
        approve=True,
        signoff_id=collab.signoffs_for(hub.db, "model_version", world.versions[1])[0].id,
    )
    r = omar.post(f"/deployment-requests/{req['id']}/deploy")
    assert r.status_code == 200 and r.json()["model_version_id"] == world.versions[1], r.text

    refused = api("business").post("/deployments/api-churn/rollback", json={"reason": "x"})
    assert refused.status_code == 403
    assert deployments.get_by_name(hub.db, "api-churn").model_version_id == world.versions[1]
    r = omar.post("/deployments/api-churn/rollback", json={"reason": "bad numbers"})
    assert r.status_code == 200 and r.json()["model_version_id"] == world.versions[0], r.text
    history = omar.get("/deployments/api-churn/history", params={"limit": 2}).json()
    assert [e["kind"] for e in history["items"]] == ["rollback", "deploy"] and history["next_offset"] == 2
    rest = omar.get("/deployments/api-churn/history", params={"limit": 2, "offset": 2}).json()
    assert [e["kind"] for e in rest["items"]] == ["deploy"] and rest["next_offset"] is None
    assert _audit(hub, username="omar", action="deployment.rollback")


# --- monitoring and jobs --------------------------------------------------------------------------------


def test_check_now_gives_a_job_that_can_be_followed_and_cancelled_by_ops_only(hub, api):
    omar, alice = api("ops"), api("business")
    assert alice.post("/monitoring/deployments/api-churn/checks").status_code == 403
    r = omar.post("/monitoring/deployments/api-churn/checks")
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = omar.get(f"/jobs/{job_id}").json()
    assert job["kind"] == "monitor" and job["status"] == "queued" and "progress" in job and "error" in job
    refused = alice.post(f"/jobs/{job_id}/cancel")
    assert refused.status_code == 403 and refused.json()["detail"] == _ui_refusal(hub.people["business"], "monitor.run")
    r = omar.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert _audit(hub, username="omar", action="job.cancel", entity_id=job_id)
    assert omar.post(f"/jobs/{job_id}/cancel").status_code == 409


def test_monitoring_summary_and_alerts_ack_and_resolve(hub, api):
    from mlops_core.models.monitoring import Alert

    omar = api("ops")
    summary = omar.get("/monitoring/deployments/api-churn").json()
    assert summary["deployment"] == "api-churn" and summary["status"]["deployment"] == "api-churn"
    assert summary["latest_check"] is None and summary["kpis"] == []
    with hub.db.unit_of_work() as s:  # an alert as a monitor check would raise it
        a = Alert(
            kind="drift",
            severity="warning",
            title="Drift on api-churn",
            deployment_name="api-churn",
            dedupe_key="api-test-drift",
            open_key="api-test-drift",
        )
        s.add(a)
        s.flush()
        alert_id = a.id
    listed = omar.get("/monitoring/alerts", params={"deployment": "api-churn", "limit": 1}).json()
    assert [x["id"] for x in listed["items"]] == [alert_id] and listed["next_offset"] is None
    assert api("business").post(f"/monitoring/alerts/{alert_id}/ack").status_code == 403
    r = omar.post(f"/monitoring/alerts/{alert_id}/ack", json={"note": "looking"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert omar.post(f"/monitoring/alerts/{alert_id}/resolve", json={}).status_code == 400
    r = omar.post(f"/monitoring/alerts/{alert_id}/resolve", json={"note": "retrained"})
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert _audit(hub, username="omar", action="alert.acknowledge", entity_id=alert_id)
    assert _audit(hub, username="omar", action="alert.resolve", entity_id=alert_id)


# --- docs -----------------------------------------------------------------------------------------------


def test_the_openapi_docs_answer_and_only_they_get_a_relaxed_csp(hub):
    docs = httpx.get(f"{hub.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    spec = httpx.get(f"{hub.url}/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v1/use-cases" in paths and "/api/v1/deployment-requests/{request_id}/deploy" in paths
    assert "/api/v1/jobs/{job_id}/cancel" in paths and "/api/v1/me" in paths
    assert httpx.get(f"{hub.url}/healthz").headers["content-security-policy"].startswith("default-src 'none'")
