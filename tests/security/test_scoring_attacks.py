"""Attacks on the scoring API (security issue 12, findings 3 and 10): each test sends what the attacker sent,
through the real ASGI app (create_app, with its poller and prediction writer) on SQLite and Postgres, and
checks what the attacker and ops would see: the status and message, the prediction log, /metrics, headers."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from mlops_core.config import reload_settings
from mlops_core.db import Database
from mlops_core.demo.customers import make_customers
from mlops_core.models.deployments import Prediction
from mlops_core.serving.app import create_app
from mlops_core.services import apikeys, collab, deployments, predictions
from tests.services.deployments_world import make_world

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
LOOPBACK = ("127.0.0.1", 50000)
ELSEWHERE = ("203.0.113.7", 50000)  # a documentation address: any client that is not this machine


@dataclass
class Scoring:
    db: Database
    key: str
    record: dict
    deployment_id: int


@pytest.fixture
def scoring(db, people) -> Scoring:
    """`churn` serving a trained model, with an API key (the attacker's: any key for churn will do)."""
    w = make_world(db, people)
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    collab.decide_signoff(
        db,
        actor=people["business"],
        approve=True,
        signoff_id=collab.signoffs_for(db, "model_version", w.versions[0])[0].id,
    )
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    deployments.deploy(db, actor=people["ops"], request_id=req.id)
    _, key = apikeys.create_key(db, actor=people["ops"], deployment_name="churn")
    frame = make_customers(5, seed=5).drop(columns=["churned"])
    record = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].to_dict().items()}
    return Scoring(db=db, key=key, record=record, deployment_id=deployments.get_by_name(db, "churn").id)


@contextmanager
def client(s: Scoring, *, peer=LOOPBACK):
    app = create_app(s.db.url, poll_seconds=0.2)
    with TestClient(app, client=peer, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {s.key}"
        c.app_state = app.state.serving
        yield c


def _ok_rows(s: Scoring) -> int:
    return predictions.count_predictions(s.db, deployment_id=s.deployment_id, status="ok")


def _error_rows(s: Scoring) -> list[str]:
    from sqlmodel import select

    with s.db.read() as session:
        return list(
            session.exec(
                select(Prediction.error).where(
                    Prediction.deployment_id == s.deployment_id, Prediction.status == "error"
                )
            ).all()
        )


def _body_with(record: dict, column: str, raw_json_value: bytes) -> bytes:
    """A predict body whose `column` is the JSON text `raw_json_value`, byte for byte as the attacker wrote it."""
    import json

    return json.dumps({"records": [{**record, column: "__VALUE__"}]}).encode().replace(b'"__VALUE__"', raw_json_value)


def test_a_lone_surrogate_in_a_value_or_a_key_or_bytes_that_are_not_utf8_get_a_400_and_nothing_is_logged(scoring):
    s = scoring
    with client(s) as c:
        before = _ok_rows(s)
        attempts = [
            _body_with(s.record, "contract", b'"\\ud800"'),  # the JSON escape, as sent in the incident
            _body_with(s.record, "contract", b'"month-to-month\\udfff"'),  # a lone low surrogate
            _body_with(s.record, "contract", b'"\xed\xa0\x80"'),  # the surrogate as raw (invalid) UTF-8
            b'{"records": [{"\\ud800": 1}]}',  # in a key
            b'{"records": [{"contract": "\xff\xfe"}]}',  # bytes that are not UTF-8 at all
        ]
        for body in attempts:
            r = c.post("/v1/deployments/churn/predict", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (body, r.text)
            assert "not valid UTF-8" in r.json()["detail"], r.text
        # A surrogate PAIR is a valid character (an emoji): it is an unseen category and is scored.
        r = c.post(
            "/v1/deployments/churn/predict",
            content=_body_with(s.record, "contract", b'"\\ud83d\\ude00"'),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        c.app_state.writer.flush()
        assert _ok_rows(s) == before + 1, "only the valid request was logged"
        assert sum("not valid UTF-8" in e for e in _error_rows(s)) == len(attempts)


def test_an_overlong_string_gets_a_400_naming_the_column_and_the_limit_but_unseen_categories_are_scored(
    scoring, monkeypatch
):
    s = scoring
    monkeypatch.setenv("MLOPS_MAX_STRING_LENGTH", "64")
    reload_settings()
    with client(s) as c:
        before = _ok_rows(s)
        r = c.post("/v1/deployments/churn/predict", json={"records": [{**s.record, "contract": "x" * 65}]})
        assert r.status_code == 400
        assert "column `contract` is 65 characters long; the limit is 64" in r.json()["detail"], r.text
        r = c.post("/v1/deployments/churn/predict", json={"records": [{**s.record, "contract": "y" * 100_000}]})
        assert r.status_code == 400 and "the limit is 64 (MLOPS_MAX_STRING_LENGTH)" in r.json()["detail"]
        # An unseen category within the limit (even one that looks like markup) is the drift signal: scored.
        payload = "</script><script>alert(document.cookie)</script>"
        r = c.post("/v1/deployments/churn/predict", json={"records": [{**s.record, "contract": payload}]})
        assert r.status_code == 200, r.text
        c.app_state.writer.flush()
        assert _ok_rows(s) == before + 1


def test_deeply_nested_json_gets_a_400_that_is_counted_in_metrics_and_in_the_prediction_log(scoring):
    s = scoring
    with client(s) as c:
        for body in (b"[" * 100_000, b'{"records": [' + b"[" * 100_000, b'{"records": [NaN, ' + b"[" * 100_000):
            r = c.post("/v1/deployments/churn/predict", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text[:300]
            assert "nested too deeply" in r.json()["detail"]
        c.app_state.writer.flush()
        assert sum("nested too deeply" in e for e in _error_rows(s)) == 3
        metrics = c.get("/metrics").text
        assert 'mlops_requests_total{deployment="churn",endpoint="predict",status="400"} 3' in metrics
        assert 'mlops_request_errors_total{deployment="churn",endpoint="predict"} 3' in metrics
        # the service is still answering
        assert c.post("/v1/deployments/churn/predict", json={"records": [s.record]}).status_code == 200


def test_an_unknown_deployment_gets_a_404_that_names_no_other_deployment(scoring):
    with client(scoring) as c:
        r = c.post("/v1/deployments/fraud/predict", json={"records": [scoring.record]})
        assert r.status_code == 404
        detail = r.json()["detail"]
        assert detail == "no deployment named 'fraud', or your key is not for it"
        assert "churn" not in r.text
        r = c.get("/v1/deployments/fraud")
        assert r.status_code == 404 and "churn" not in r.text


def test_metrics_answer_only_this_machine_without_a_token_and_only_the_token_with_one(scoring, monkeypatch):
    s = scoring
    with client(s, peer=ELSEWHERE) as c:
        r = c.get("/metrics")
        assert r.status_code == 403 and "MLOPS_METRICS_TOKEN" in r.json()["detail"]
        assert "mlops_requests_total" not in r.text
    with client(s, peer=LOOPBACK) as c:
        assert c.get("/metrics").status_code == 200
    with client(s, peer=("::1", 50000)) as c:
        assert c.get("/metrics").status_code == 200

    monkeypatch.setenv("MLOPS_METRICS_TOKEN", "scrape-secret-1")
    reload_settings()
    for peer in (ELSEWHERE, LOOPBACK):  # with a token, being local is not enough
        with client(s, peer=peer) as c:
            del c.headers["Authorization"]
            for header in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Bearer {s.key}"},
                {"Authorization": "scrape-secret-1"},
            ):
                r = c.get("/metrics", headers=header)
                assert r.status_code == 401, (peer, header)
                assert "mlops_requests_total" not in r.text and r.headers["WWW-Authenticate"] == "Bearer"
            r = c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
            assert r.status_code == 200 and "mlops_requests_total" in r.text


def test_every_response_carries_the_security_headers(scoring):
    s = scoring
    with client(s) as c:
        answers = [
            c.get("/healthz"),
            c.post("/v1/deployments/churn/predict", json={"records": [s.record]}),  # 200
            c.post("/v1/deployments/churn/predict", content=b"{", headers={"Content-Type": "application/json"}),
            c.post(
                "/v1/deployments/churn/predict", json={"records": [s.record]}, headers={"Authorization": "Bearer nope"}
            ),  # 401
            c.post("/v1/deployments/nope/predict", json={"records": [s.record]}),  # 404
            c.get("/v1/deployments/churn"),
            c.get("/metrics"),
            c.get("/docs"),  # the Hub API's OpenAPI page: its own, looser CSP (it loads the docs scripts)
        ]
    assert [a.status_code for a in answers] == [200, 200, 400, 401, 404, 200, 200, 200]
    for a in answers:
        for name, value in SECURITY_HEADERS.items():
            if a.request.url.path == "/docs" and name.lower() == "content-security-policy":
                assert "frame-ancestors 'none'" in a.headers.get(name, ""), dict(a.headers)
                continue
            assert a.headers.get(name) == value, (a.request.url, name, dict(a.headers))
