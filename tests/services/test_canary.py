"""services/canary.py on both database legs: the two arms of a canary read from the prediction log, the
difference of each figure and whether it is significant, and the plain 'not enough yet' below the minimum."""

from __future__ import annotations

from datetime import timedelta

from mlops_core.db import utcnow
from mlops_core.services import canary, deployments
from tests.services.canary_world import add_challenger, log_arm
from tests.services.monitoring_world import log_traffic, customers, make_world


def _by_metric(out) -> dict:
    return {c["metric"]: c for c in out.comparisons}


def test_no_canary_yet_says_so(db, people):
    w = make_world(db, people)
    out = canary.canary_comparison(db, deployment_name=w.deployment_name)
    assert out.champion is None and not out.active and "No canary has run on churn yet" in out.message


def test_arms_differences_and_significance(db, people):
    w = make_world(db, people)
    # traffic BEFORE the canary started is not part of either arm
    log_traffic(db, w, customers(25, seed=2), every=timedelta(seconds=1), start=utcnow() - timedelta(hours=3))
    v2 = add_challenger(db, w, share=0.25)
    log_arm(db, w, challenger_id=None, n=400, latency=20, accuracy=0.6, errors=2, client_errors=30, score=0.4, seed=1)
    log_arm(db, w, challenger_id=v2, n=300, latency=26, accuracy=0.85, errors=1, score=0.6, agree=0.7, seed=2)

    out = canary.canary_comparison(db, deployment_name="churn")
    assert out.active and out.share == 0.25 and out.until is None
    assert out.champion.requests == 432 and out.champion.server_errors == 2 and out.champion.client_errors == 30
    assert out.challenger.requests == 301 and out.challenger.server_errors == 1
    assert out.champion.labelled == 400 and out.challenger.labelled == 300
    assert out.challenger.label.endswith("v2")
    m = _by_metric(out)
    err = m["error rate (5xx)"]
    assert err["champion"] == 2 / 432 and err["challenger"] == 1 / 301 and err["significant"] is False
    lat = m["latency p50 (ms)"]
    assert lat["significant"] is True and 5 < lat["difference"] < 7
    assert m["latency p95 (ms)"]["challenger"] > m["latency p95 (ms)"]["champion"]
    assert m["score (mean)"]["significant"] is True and m["score (mean)"]["difference"] > 0.15
    acc = m["accuracy (labelled)"]  # the use case's KPI is accuracy
    assert acc["significant"] is True and acc["difference"] > 0.15
    assert acc["n_champion"] == 400 and acc["n_challenger"] == 300
    assert 0.6 < out.agreement < 0.8 and out.n_agreement == 300
    assert out.score_histogram["edges"] and abs(sum(out.score_histogram["challenger"]) - 1) < 1e-9

    # stopped: the comparison stays readable for the period it ran, no longer active
    deployments.set_canary(db, actor=people["ops"], deployment_name="churn", model_version_id=None)
    after = canary.canary_comparison(db, deployment_name="churn")
    assert not after.active and after.until is not None and after.challenger.requests == 301


def test_below_the_minimum_it_says_not_enough_yet(db, people):
    w = make_world(db, people)
    v2 = add_challenger(db, w)
    log_arm(db, w, challenger_id=None, n=200, latency=20, accuracy=0.7)
    log_arm(db, w, challenger_id=v2, n=7, latency=40, accuracy=0.2, seed=3)
    out = canary.canary_comparison(db, deployment_name="churn")
    for c in out.comparisons:
        assert c["enough"] is False and c["significant"] is None, c
    assert _by_metric(out)["error rate (5xx)"]["verdict"] == (
        "not enough requests yet to tell (n=200 champion, 7 challenger; 30 each needed)"
    )
    assert "not enough labels yet" in _by_metric(out)["accuracy (labelled)"]["verdict"]


def test_the_hub_api_serves_the_canary_results(db, people):
    """GET /api/v1/deployments/{name}/canary with a personal access token (in-process app, both legs)."""
    from starlette.testclient import TestClient

    from mlops_core.serving.app import create_app
    from mlops_core.services import users

    w = make_world(db, people)
    v2 = add_challenger(db, w)
    log_arm(db, w, challenger_id=None, n=40, latency=20, accuracy=0.6)
    log_arm(db, w, challenger_id=v2, n=5, latency=30, accuracy=0.9, seed=4)
    token = users.create_token(db, actor=people["business"], username="alice")
    with TestClient(create_app(db.url, poll_seconds=5), client=("127.0.0.1", 50000)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        r = c.get("/api/v1/deployments/churn/canary")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["active"] is True and body["challenger"]["requests"] == 5
        err = next(x for x in body["comparisons"] if x["metric"] == "error rate (5xx)")
        assert err["enough"] is False and err["verdict"].startswith("not enough requests yet to tell (n=40")
        assert c.get("/api/v1/deployments/nope/canary").status_code == 404
