"""The REST scoring service through a real uvicorn process (`python -m mlops_core serve`) and httpx:
the DESIGN.md contract, every bad input of issue 6, hot reload of a new version without a restart,
and nothing lost from the prediction log on a clean shutdown (N requests in -> N rows after SIGTERM)."""

from __future__ import annotations

import concurrent.futures
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

from mlops_core.config import PROJECT_ROOT, reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from mlops_core.demo.customers import make_customers
from mlops_core.services import apikeys, collab, deployments, predictions
from tests.conftest import make_people
from tests.services.deployments_world import make_world

MAX_RECORDS = 1000
MAX_BYTES = 2_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_core", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the scoring service exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the scoring service did not answer /healthz within 90 s")


def stop_service(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@dataclass
class Service:
    url: str
    key: str
    db: Database
    people: dict
    versions: list[int]
    record: dict
    env: dict
    proc: subprocess.Popen

    def post(self, path: str, *, key: str | None = "default", **kw) -> httpx.Response:
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
        return httpx.post(f"{self.url}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("scoring")
    url = f"sqlite:///{tmp / 'hub.db'}"
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "ARTIFACT_ROOT")}
    os.environ.update({"DATABASE_URL": url, "ARTIFACT_ROOT": str(tmp / "artifacts")})
    reload_settings()
    db = Database(url)
    upgrade_schema(db)
    people = make_people(db)
    w = make_world(db, people, versions=2)
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
    env = {**os.environ, "MLOPS_MAX_RECORDS": str(MAX_RECORDS), "MLOPS_MAX_REQUEST_BYTES": str(MAX_BYTES)}
    port = _free_port()
    proc = start_service(env, port)
    try:
        yield Service(
            url=f"http://127.0.0.1:{port}",
            key=key,
            db=db,
            people=people,
            versions=w.versions,
            record=record,
            env=env,
            proc=proc,
        )
    finally:
        stop_service(proc)
        db.dispose()
        forget_database(url)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_healthz_answers_without_a_key(service):
    r = httpx.get(f"{service.url}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_predict_returns_predictions_the_model_version_and_a_request_id_that_is_logged(service):
    r = service.post("/v1/deployments/churn/predict", json={"records": [service.record]})
    assert r.status_code == 200, r.text
    body = r.json()
    # "scores" (the positive-class probability) is added for binary classifiers
    assert set(body) == {"predictions", "model_version", "request_id", "scores"}
    assert body["predictions"] in ([0], [1]) and body["model_version"] == "churn-model v1"
    assert 0.0 <= body["scores"][0] <= 1.0 and (body["scores"][0] > 0.5) == (body["predictions"][0] == 1)
    logged = _wait_for(
        lambda: [
            p
            for p in predictions.recent_predictions(service.db, deployment_name="churn")
            if p.request_id == body["request_id"]
        ]
    )
    assert logged and logged[0].inputs == service.record and logged[0].prediction == body["predictions"][0]
    assert logged[0].score == body["scores"][0]
    many = service.post("/v1/deployments/churn/predict", json={"records": [service.record] * 3}).json()
    assert len(many["predictions"]) == 3 and len(many["record_ids"]) == 3


def test_describe_lists_the_training_schema(service):
    r = httpx.get(f"{service.url}/v1/deployments/churn", headers={"Authorization": f"Bearer {service.key}"})
    body = r.json()
    assert r.status_code == 200 and body["name"] == "churn" and body["model_version"] == "churn-model v1"
    types = {c["name"]: c for c in body["input_schema"]}
    assert types["contract"]["type"] == "category" and "one-year" in types["contract"]["categories"]
    assert types["monthly_charges"]["type"] == "number"


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda r: r.pop("contract"), "missing columns: contract"),
        (lambda r: r.update(favourite_colour="blue"), "unexpected columns: favourite_colour"),
        (lambda r: r.update(monthly_charges="a lot"), "`monthly_charges` must be a number"),
        (lambda r: r.update(tenure_months=2.5), "`tenure_months` must be an integer"),
        (lambda r: r.update(senior="yes"), "`senior` must be true or false"),
        (lambda r: r.update(contract=["one-year"]), "`contract` must be a category"),
    ],
)
def test_a_bad_record_gets_a_400_naming_the_column(service, change, expected):
    rec = dict(service.record)
    change(rec)
    r = service.post("/v1/deployments/churn/predict", json={"records": [rec]})
    assert r.status_code == 400 and expected in r.json()["detail"], r.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_with_a_400(service, literal):
    body = httpx.Response(200, json={"records": [service.record]}).text.replace(
        f'"monthly_charges": {service.record["monthly_charges"]}', f'"monthly_charges": {literal}'
    )
    body = body.replace(f'"monthly_charges":{service.record["monthly_charges"]}', f'"monthly_charges":{literal}')
    assert literal in body
    r = service.post("/v1/deployments/churn/predict", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "NaN and infinity are not allowed" in r.json()["detail"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b'{"records": [', "not valid JSON"),
        (b"", "body is empty"),
        (b'[1, 2]', "must be a JSON object"),
        (b'{"rows": []}', 'no "records"'),
        (b'{"records": []}', "`records` is empty"),
        (b'{"records": {"a": 1}}', "must be a list"),
        (b'{"records": [1]}', "record 0 is not an object"),
    ],
)
def test_malformed_bodies_get_a_400_that_says_what_to_send(service, content, expected):
    r = service.post("/v1/deployments/churn/predict", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and expected in r.json()["detail"], r.text


def test_no_key_a_wrong_key_and_a_revoked_key_get_401(service):
    assert (
        service.post("/v1/deployments/churn/predict", key=None, json={"records": [service.record]}).status_code == 401
    )
    assert (
        service.post("/v1/deployments/churn/predict", key="mlk_wrong", json={"records": [service.record]}).status_code
        == 401
    )
    k, secret = apikeys.create_key(service.db, actor=service.people["ops"], deployment_name="churn")
    ok = _wait_for(
        lambda: (
            service.post("/v1/deployments/churn/predict", key=secret, json={"records": [service.record]}).status_code
            == 200
        )
    )
    assert ok, "a new key is accepted within seconds"
    apikeys.revoke_key(service.db, actor=service.people["ops"], key_id=k.id)
    refused = _wait_for(
        lambda: (
            service.post("/v1/deployments/churn/predict", key=secret, json={"records": [service.record]}).status_code
            == 401
        )
    )
    assert refused, "a revoked key is refused within seconds, without a restart"


def test_an_unknown_deployment_gets_404(service):
    r = service.post("/v1/deployments/nope/predict", json={"records": [service.record]})
    assert r.status_code == 404 and "no deployment named 'nope'" in r.json()["detail"]


def test_too_many_records_or_bytes_get_413(service):
    r = service.post("/v1/deployments/churn/predict", json={"records": [service.record] * (MAX_RECORDS + 1)})
    assert r.status_code == 413 and f"limit is {MAX_RECORDS:,}" in r.json()["detail"]
    r = service.post("/v1/deployments/churn/predict", json={"records": [service.record] * 100_000})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_the_size_limit_is_checked_from_content_length_before_reading_the_body(service):
    host, port = service.url.rsplit(":", 1)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(
            (
                f"POST /v1/deployments/churn/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.key}"
                "\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
            ).encode()
        )
        answer = s.recv(4096).decode()  # answered at once: the server never waits for 1 GB
    assert answer.startswith("HTTP/1.1 413")


def test_feedback_joins_labels_by_request_id_and_reports_unknown_ids_one_by_one(service):
    rid = service.post("/v1/deployments/churn/predict", json={"records": [service.record]}).json()["request_id"]
    r = service.post(
        "/v1/deployments/churn/feedback",
        json={"labels": [{"request_id": rid, "label": 1}, {"request_id": "no-such-id", "label": 0}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["unknown_request_ids"] == ["no-such-id"]
    row = next(p for p in predictions.recent_predictions(service.db, deployment_name="churn") if p.request_id == rid)
    assert row.label == 1 and row.labelled_at is not None
    bad = service.post("/v1/deployments/churn/feedback", json={"labels": "yes"})
    assert bad.status_code == 400


def test_metrics_are_prometheus_text_with_counts_latency_and_errors(service):
    service.post("/v1/deployments/churn/predict", json={"records": [service.record]})
    text = httpx.get(f"{service.url}/metrics").text
    assert 'mlops_requests_total{deployment="churn",endpoint="predict",status="200"}' in text
    assert "# TYPE mlops_request_latency_seconds histogram" in text
    assert 'mlops_request_latency_seconds_bucket{deployment="churn",le="+Inf"}' in text
    assert "mlops_request_errors_total" in text


def test_a_deploy_and_a_rollback_take_effect_within_seconds_without_a_restart(service):
    db, people = service.db, service.people
    v2 = service.versions[1]
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=v2, deployment_name="churn"
    )
    so = next(s for s in collab.signoffs_for(db, "model_version", v2) if s.status == "pending")
    collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True)
    deployments.deploy(db, actor=people["ops"], request_id=req.id)
    started = time.monotonic()

    def serving() -> str:
        return service.post("/v1/deployments/churn/predict", json={"records": [service.record]}).json()["model_version"]

    assert _wait_for(lambda: serving() == "churn-model v2", timeout=10), "the new version is served"
    assert time.monotonic() - started < 10
    deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="test")
    assert _wait_for(lambda: serving() == "churn-model v1", timeout=10), "the rollback is served"
    assert service.proc.poll() is None  # same process throughout


def _settled_count(db, deployment_id: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    last = predictions.count_predictions(db, deployment_id=deployment_id, status="ok")
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = predictions.count_predictions(db, deployment_id=deployment_id, status="ok")
        if now == last:
            return now
        last = now
    raise AssertionError(f"the prediction log kept growing for {timeout:g} s after the last request")


def test_nothing_is_lost_from_the_log_on_a_clean_shutdown(service):
    dep = deployments.get_by_name(service.db, "churn")
    port = _free_port()
    proc = start_service(service.env, port)
    n = 300
    url = f"http://127.0.0.1:{port}/v1/deployments/churn/predict"
    headers = {"Authorization": f"Bearer {service.key}"}
    with httpx.Client(headers=headers, timeout=30) as client:
        assert _wait_for(lambda: client.post(url, json={"records": [service.record]}).status_code == 200)
        # Let both services write what they answered so far (they flush every 0.25 s): poll until the count
        # holds still across a full flush interval, with a deadline.
        before = _settled_count(service.db, dep.id)

        def one(_):
            return client.post(url, json={"records": [service.record]}).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(n)))
    assert codes.count(200) == n
    # SIGTERM right after the last answer: uvicorn shuts down gracefully (queued rows are written first),
    # then re-raises the signal, so the exit status is 0 or -SIGTERM.
    assert stop_service(proc) in (0, -signal.SIGTERM)
    after = predictions.count_predictions(service.db, deployment_id=dep.id, status="ok")
    assert after - before == n
