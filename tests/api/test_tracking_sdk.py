"""The tracking SDK as a notebook uses it, over HTTP against a real `serve` process (the `hub` fixture), with
no DATABASE_URL and no ARTIFACT_ROOT in the SDK's environment: MLOPS_HUB_URL and MLOPS_TOKEN only. Also the
bad input of issue 14 for the runs/datasets routes the SDK uses."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_core import tracking
from mlops_core.config import PROJECT_ROOT
from mlops_core.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from mlops_core.services import audit, datasets, experiments
from tests.api.test_scoring_api import _free_port, start_service, stop_service
from tests.services.experiments_world import make_world

FEATURES = ["tenure_months", "monthly_charges"]


@pytest.fixture(scope="module")
def world(hub):
    return make_world(hub.db, hub.people)


@pytest.fixture
def sdk(hub, monkeypatch):
    """The SDK's environment on a user's machine: the Hub's URL and a token; no database, no artifact folder."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("MLOPS_HUB_URL", hub.url)
    for name in (
        "GITHUB_SHA",
        "GITHUB_RUN_ID",
        "GITHUB_REPOSITORY",
        "CI_COMMIT_SHA",
        "CI_PIPELINE_ID",
        "CI_PROJECT_PATH",
        "BUILD_VCS_NUMBER",
        "GIT_COMMIT",
        "BUILD_ID",
        "GITHUB_REF",
        "CI_COMMIT_REF_NAME",
        "CI_PIPELINE_URL",
    ):
        monkeypatch.delenv(name, raising=False)

    def as_role(role: str) -> None:
        monkeypatch.setenv("MLOPS_TOKEN", hub.tokens[role])

    as_role("data_scientist")
    return as_role


def test_a_notebook_logs_a_run_that_shows_params_metrics_and_can_be_registered(hub, world, sdk):
    with tracking.start_run(use_case=world.use_case_id, dataset="customers@v1", name="notebook lr") as run:
        run.log_params({"C": 0.5, "solver": "lbfgs"})
        for step in range(5):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        X = world.frame[FEATURES]
        model = LogisticRegression().fit(X, world.frame["churned"])
        run.log_metrics({"roc_auc": 0.81, "recall": 0.7})
        run.set_tags({"team": "retention"})
        run.log_model(model, input_example=X)
    got = tracking.get_run(run.id)
    assert got.status == "finished"
    assert got.params == {"C": 0.5, "solver": "lbfgs"}
    assert got.metrics["roc_auc"] == pytest.approx(0.81)
    assert got.metrics["loss"] == pytest.approx(0.2)  # the latest step
    assert got.tags == {"team": "retention"}
    assert len(experiments.metric_history(hub.db, run.id, "loss")["loss"]) == 5
    assert experiments.get_run(hub.db, run.id).input_schema[0]["name"] == "tenure_months"
    assert tracking.register_model(run.id, "churn-notebook") == 1
    assert tracking.register_model(run.id, "churn-notebook") == 2
    # The audit log names the token's user, as for the UI.
    events = audit.list_events(
        hub.db, actor=hub.people["admin"], entity_type="run", entity_id=str(run.id), action="run.start"
    ).events
    assert [e.actor_username for e in events] == ["sara"]


def test_metrics_are_sent_in_batches_not_one_request_per_value(hub, world, sdk):
    with tracking.start_run(dataset="customers@v1", batch_size=100) as run:
        for step in range(30):
            run.log_metrics({f"m{i}": float(i * step) for i in range(10)}, step=step)  # 300 values
    log_events = audit.list_events(
        hub.db, actor=hub.people["admin"], entity_type="run", entity_id=str(run.id), action="run.log"
    ).total
    assert log_events == 3  # 300 values / 100 per batch: three requests, three transactions
    assert tracking.get_run(run.id).metrics["m9"] == 9.0 * 29


def test_an_exception_inside_the_block_marks_the_run_failed_with_the_traceback(world, sdk):
    with pytest.raises(ZeroDivisionError):
        with tracking.start_run(dataset="customers@v1") as run:
            run.log_metrics({"partial": 1.0})
            1 / 0
    got = tracking.get_run(run.id)
    assert got.status == "failed"
    assert "ZeroDivisionError" in got.error and "Traceback" in got.error
    assert got.metrics["partial"] == 1.0  # what was logged before the failure is kept


def test_a_run_started_in_ci_records_the_commit_and_the_pipeline(world, sdk, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "0123abcd")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    with tracking.start_run(dataset="customers@v1") as run:
        run.log_metrics({"roc_auc": 0.8})
    tags = tracking.get_run(run.id).tags
    assert tags["git.commit"] == "0123abcd" and tags["ci.pipeline"] == "4242" and tags["ci.repository"] == "acme/churn"


def test_without_a_token_the_sdk_says_how_to_get_one(world, sdk, monkeypatch):
    monkeypatch.delenv("MLOPS_TOKEN", raising=False)
    with pytest.raises(AuthenticationFailed, match="MLOPS_TOKEN"):
        tracking.start_run(dataset="customers@v1")


def test_a_bad_token_is_refused(sdk, monkeypatch):
    monkeypatch.setenv("MLOPS_TOKEN", "mlh_not-a-real-token")
    with pytest.raises(AuthenticationFailed, match="unknown or revoked"):
        tracking.get_run(1)


def test_a_business_token_cannot_log_runs_and_is_told_which_role_may(hub, world, sdk):
    sdk("business")
    with pytest.raises(PermissionDenied, match=r"alice \(business\) may not .*data_scientist"):
        tracking.start_run(dataset="customers@v1")
    with pytest.raises(PermissionDenied, match="may not"):
        tracking.register_dataset("alice-data", world.frame.head(20))
    assert all(r.created_by != "alice" for r in experiments.list_runs(hub.db, limit=500).items)


def test_a_bad_dataset_reference_names_the_fix(world, sdk):
    with pytest.raises(ValidationError, match="name@vN"):
        tracking.start_run(dataset="customers v1")
    with pytest.raises(NotFound, match="no version v9"):
        tracking.start_run(dataset="customers@v9")
    with pytest.raises(NotFound, match="no dataset named"):
        tracking.start_run(dataset="nope@v1")


def test_register_dataset_uploads_a_frame_or_a_file_and_returns_a_versioned_reference(hub, world, sdk, tmp_path):
    sdk("data_engineer")
    ref = tracking.register_dataset("fresh", world.frame.head(100), use_case=world.use_case_id)
    assert ref == "fresh@v1"
    path = tmp_path / "more.csv"
    world.frame.head(150).to_csv(path, index=False)
    assert tracking.register_dataset("fresh", path) == "fresh@v2"
    assert datasets.resolve_ref(hub.db, "fresh@v2").n_rows == 150
    sdk("data_scientist")
    back = tracking.load_dataset("fresh@v2")
    assert len(back) == 150 and list(back.columns) == list(world.frame.columns)


def test_the_sdk_runs_in_a_process_that_has_no_database_url(hub, world):
    script = textwrap.dedent("""
        import os, sys
        assert "DATABASE_URL" not in os.environ and "ARTIFACT_ROOT" not in os.environ
        from mlops_core import tracking
        with tracking.start_run(dataset="customers@v1", name="from a notebook") as run:
            run.log_params({"depth": 3})
            run.log_metrics({"roc_auc": 0.75})
        print(run.id, tracking.get_run(run.id).status)
        print("db imported:", "mlops_core.db" in sys.modules)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ARTIFACT_ROOT")}
    env.update(MLOPS_HUB_URL=hub.url, MLOPS_TOKEN=hub.tokens["data_scientist"])
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    run_id, status = out.stdout.split("\n")[0].split()
    assert status == "finished"
    assert "db imported: False" in out.stdout
    assert experiments.get_run(hub.db, int(run_id)).params == {"depth": 3}


def test_an_unreachable_hub_is_retried_then_named_with_the_fix(sdk, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLOPS_HUB_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(tracking, "BACKOFF_SECONDS", 0.01)
    started = time.monotonic()
    with pytest.raises(tracking.HubUnavailable) as err:
        tracking.get_run(1)
    message = str(err.value)
    assert f"cannot reach the Hub at http://127.0.0.1:{port}" in message
    assert "python -m mlops_core serve" in message and f"tried {tracking.RETRIES + 1} times" in message
    assert time.monotonic() - started >= 0.01 * (2**tracking.RETRIES - 1)  # it waited between the tries


def test_a_run_that_loses_the_hub_fails_with_a_clear_message_and_is_marked_failed(hub, world, sdk, monkeypatch):
    monkeypatch.setattr(tracking, "BACKOFF_SECONDS", 0.01)
    run = tracking.start_run(dataset="customers@v1")
    run.log_metrics({"before": 1.0})
    real = run._hub.http.request
    calls = {"n": 0}

    def flaky(method, url, **kw):
        calls["n"] += 1
        if "log-batch" in url:  # the Hub is gone for the batch; it answers again for the failure report
            raise httpx.ConnectError("connection refused")
        return real(method, url, **kw)

    monkeypatch.setattr(run._hub.http, "request", flaky)
    with pytest.raises(tracking.HubUnavailable, match="cannot reach the Hub"):
        run.flush()
    monkeypatch.setattr(run._hub.http, "request", real)
    got = tracking.get_run(run.id)
    assert got.status == "failed" and "lost the Hub" in got.error
    assert calls["n"] >= tracking.RETRIES + 1


# --- bad input straight at the routes --------------------------------------------------------------------


@pytest.fixture
def running(hub, world, api):
    r = api("data_scientist").post("/runs", json={"dataset": "customers@v1", "name": "bad input target"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _post_raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def test_nan_inf_and_text_metric_values_are_refused_naming_the_key_and_nothing_is_stored(hub, api, running):
    ds = api("data_scientist")
    for literal in ("NaN", "Infinity", "-Infinity", '"0.9"', "1e999"):
        body = '{"metrics": [{"key": "good", "value": 1.0}, {"key": "auc", "value": %s, "step": 1}]}' % literal
        r = _post_raw(ds, f"/runs/{running}/metrics", body)
        assert r.status_code == 400, (literal, r.text)
        assert r.json()["error"] == "invalid" and "metric 'auc' must be a" in r.json()["detail"]
    assert experiments.get_run(hub.db, running).metrics == {}  # not even the good value of the batch


def test_a_batch_of_100000_metrics_is_refused_with_the_limit(hub, api, running):
    metrics = [{"key": "loss", "value": 0.5, "step": i} for i in range(100_000)]
    r = api("data_scientist").post(f"/runs/{running}/log-batch", json={"metrics": metrics})
    assert r.status_code == 413
    assert "100,000 values in one request; the limit is 10,000" in r.json()["detail"]
    assert experiments.metric_history(hub.db, running) == {}


def test_a_run_id_that_is_not_a_number_is_refused(api):
    for bad in ("abc", "1.5", "-3", "1;DROP"):
        r = api("data_scientist").get(f"/runs/{bad}")
        assert r.status_code == 400 and "is not a number" in r.json()["detail"], r.text
    assert api("data_scientist").get("/runs/99999999").status_code == 404


def test_an_artifact_path_with_dot_dot_is_refused_and_a_good_one_round_trips(hub, api, running):
    ds = api("data_scientist")
    for bad in ("..%2F..%2Fetc%2Fpasswd", "a/..%2F..%2Fx", "%2Fabs"):
        r = ds.put(f"/runs/{running}/artifacts/{bad}", content=b"x")
        assert r.status_code == 400 and "invalid artifact path" in r.json()["detail"], (bad, r.text)
    r = ds.put(
        f"/runs/{running}/artifacts/plots/roc.json",
        content=b'{"auc": 0.8}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert ds.get(f"/runs/{running}/artifacts/plots/roc.json").content == b'{"auc": 0.8}'
    names = [a["name"] for a in ds.get(f"/runs/{running}/artifacts").json()["items"]]
    assert names == ["plots/roc.json"]
    stored = [str(p) for p in Path(hub.env["ARTIFACT_ROOT"]).rglob("*") if p.is_file()]
    assert not any("passwd" in p or p.endswith("/x") for p in stored)


def test_a_model_holding_a_type_outside_the_allow_list_is_refused_by_name(hub, api, running):
    import builtins

    import numpy as np
    import skops.io as sio
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    bad = Pipeline(
        [("run", FunctionTransformer(builtins.eval)), ("clf", DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1]))]
    )
    r = api("data_scientist").put(f"/runs/{running}/model", files={"model": ("m.skops", sio.dumps(bad))})
    assert r.status_code == 400 and "builtins.eval" in r.json()["detail"]
    assert experiments.get_run(hub.db, running).model_artifact_key is None


def test_runs_are_listed_ordered_by_a_metric(hub, world, api):
    ds = api("data_scientist")
    ids = []
    for auc in (0.61, 0.93, 0.77):
        rid = ds.post("/runs", json={"dataset": "customers@v1", "use_case": world.use_case_id}).json()["id"]
        assert (
            ds.post(f"/runs/{rid}/log-batch", json={"metrics": [{"key": "ordering_auc", "value": auc}]}).status_code
            == 200
        )
        ids.append(rid)
    page = ds.get("/runs", params={"order_by": "metric:ordering_auc", "order": "desc", "limit": 2}).json()
    assert [r["id"] for r in page["items"]] == [ids[1], ids[2]]
    assert page["next_offset"] == 2
    assert ds.get("/runs", params={"order_by": "colour"}).status_code == 400


def test_models_register_alias_card_and_download_with_roles_as_in_the_ui(hub, world, api, sdk):
    with tracking.start_run(dataset="customers@v1") as run:
        run.log_model(LogisticRegression().fit(world.frame[FEATURES], world.frame["churned"]))
    biz, ds = api("business"), api("data_scientist")
    r = biz.post("/models", json={"run_id": run.id, "name": "churn-api"})
    assert r.status_code == 403 and "may not" in r.json()["detail"]
    assert ds.post("/models", json={"run_id": "x1", "name": "churn-api"}).status_code == 400
    r = ds.post("/models", json={"run_id": run.id, "name": "churn-api", "alias": "challenger"})
    assert r.status_code == 201 and r.json()["version"] == 1
    assert set(ds.put("/models/churn-api/aliases/champion", json={"version": 1}).json()["aliases"]) == {
        "challenger",
        "champion",
    }
    assert ds.get("/models/churn-api/versions/@champion").json()["version"] == 1
    assert ds.delete("/models/churn-api/aliases/challenger").status_code == 204
    assert ds.get("/models/churn-api/versions/@challenger").status_code == 404
    card = ds.patch("/models/churn-api/versions/1/card", json={"intended_use": "weekly churn scoring"}).json()
    assert card["card"]["intended_use"] == "weekly churn scoring"
    assert ds.get("/models/churn-api/versions/1/card").json()["run_name"]
    blob = biz.get("/models/churn-api/versions/1/file")
    assert blob.status_code == 200 and blob.content[:2] == b"PK"  # a skops file is a zip
    assert [v["version"] for v in ds.get("/models/churn-api/versions").json()["items"]] == [1]


# --- uploads: the limit and a cut-off stream --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_hub(hub):
    """A second `serve` replica on the same database with a 1 MB upload limit."""
    env = {**hub.env, "MLOPS_MAX_UPLOAD_MB": "1"}
    port = _free_port()
    proc = start_service(env, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_service(proc)


def _staged_files(hub) -> list[Path]:
    staging = Path(hub.env["ARTIFACT_ROOT"]) / ".staging"
    return [p for p in staging.glob("*")] if staging.exists() else []


def _no_dataset(hub, name: str) -> bool:
    return all(d.name != name for d in datasets.list_datasets(hub.db))


def test_an_upload_over_the_limit_is_refused_with_413_and_nothing_is_stored(hub, small_hub, world):
    headers = {"Authorization": f"Bearer {hub.tokens['data_engineer']}", "Content-Type": "text/csv"}
    big = ("a,b\n" + "1,2\n" * 400_000).encode()  # 1.6 MB
    r = httpx.post(
        f"{small_hub}/api/v1/datasets/too-big/versions",
        params={"filename": "big.csv"},
        content=big,
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 413 and "over the limit of 1 MB" in r.json()["detail"], r.text

    def chunks():  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    r = httpx.post(
        f"{small_hub}/api/v1/datasets/too-big/versions",
        params={"filename": "big.csv"},
        content=chunks(),
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 413 and "nothing was stored" in r.json()["detail"], r.text
    assert _no_dataset(hub, "too-big")
    assert _staged_files(hub) == []
    ok = httpx.post(
        f"{small_hub}/api/v1/datasets/small-ok/versions",
        params={"filename": "s.csv"},
        content=world.frame.head(50).to_csv(index=False).encode(),
        headers=headers,
        timeout=60,
    )
    assert ok.status_code == 201 and ok.json()["ref"] == "small-ok@v1", ok.text


def test_an_upload_cut_off_mid_stream_stores_nothing(hub, world):
    port = int(hub.url.rsplit(":", 1)[1])
    body = world.frame.to_csv(index=False).encode()
    head = (
        f"POST /api/v1/datasets/cut-off/versions?filename=c.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {hub.tokens['data_engineer']}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body) * 4}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + body)  # a quarter of what was announced...
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _staged_files(hub):
            time.sleep(0.05)
        assert _staged_files(hub), "the server never started staging the upload"
    # ...then the connection drops: the staging file goes, and no version is made.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _staged_files(hub):
        time.sleep(0.05)
    assert _staged_files(hub) == []
    assert _no_dataset(hub, "cut-off")
    # The service is still fine afterwards.
    assert httpx.get(f"{hub.url}/healthz").status_code == 200


def test_metric_values_sent_by_the_sdk_are_checked_before_sending(world, sdk):
    with tracking.start_run(dataset="customers@v1") as run:
        with pytest.raises(ValidationError, match="finite"):
            run.log_metrics({"auc": math.nan})
        with pytest.raises(ValidationError, match="must be a number"):
            run.log_metrics({"auc": "high"})
    assert tracking.get_run(run.id).status == "finished"


def test_openapi_lists_the_data_science_routes(hub):
    paths = httpx.get(f"{hub.url}/openapi.json").json()["paths"]
    for p in ("/api/v1/datasets/{name}/versions", "/api/v1/runs/{run_id}/log-batch", "/api/v1/models"):
        assert p in paths
    assert json.dumps(paths)  # the document is valid JSON all the way down


def test_a_no_code_run_is_launched_like_the_ui_with_its_ci_tags_and_roles_apply(hub, world, api):
    body = {
        "use_case": world.use_case_id,
        "dataset": "customers@v1",
        "algorithms": ["logistic_regression"],
        "config": {"target": "churned", "split": "holdout", "test_size": 0.25, "seed": 7},
        "tags": {"git.commit": "feedbeef"},
    }
    assert api("business").post("/runs/launch", json=body).status_code == 403
    r = api("data_scientist").post("/runs/launch", json=body)
    assert r.status_code == 201, r.text
    (run,) = r.json()["runs"]
    assert run["status"] == "queued" and run["source"] == "api" and run["tags"] == {"git.commit": "feedbeef"}
    assert experiments.get_run(hub.db, run["id"]).job_id is not None  # a worker will train it
    bad = api("data_scientist").post("/runs/launch", json={**body, "config": {"target": "no_such_column"}})
    assert bad.status_code == 400 and "no_such_column" in bad.json()["detail"]


def test_dataset_versions_are_listed_and_read_with_their_report_profile_and_data(hub, world, api):
    biz = api("business")  # reading is open to every role, as on the Data page
    names = [d["name"] for d in biz.get("/datasets").json()["items"]]
    assert "customers" in names
    (v1,) = [v for v in biz.get("/datasets/customers/versions").json()["items"] if v["version"] == 1]
    assert biz.get("/datasets/customers/versions/v1").json()["ref"] == "customers@v1" == v1["ref"]
    assert "findings" in biz.get("/datasets/customers/versions/1/report").json()
    assert biz.get("/datasets/customers/versions/1/profile").status_code == 200
    csv = biz.get("/datasets/customers/versions/1/data", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].split(",") == list(world.frame.columns)
    assert biz.get("/datasets/customers/versions/1/data").content[:4] == b"PAR1"
    assert biz.get("/datasets/customers/versions/v9").status_code == 404
    assert biz.get("/datasets/customers/versions/two").status_code == 400
