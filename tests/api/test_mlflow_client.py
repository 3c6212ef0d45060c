"""MLflow-compatible tracking (issue 14, section 4): the real, pinned MLflow client (its own virtualenv,
.venv-mlflow from requirements-mlflow.txt) logs into a live Hub (`hub`: a real `python -m mlops_core serve`)
and what it logged is read back through the Hub's own services; then the refusals, over plain HTTP.

The workload (tests/api/mlflow_scripts/workload.py) runs once per database leg: a business user creates the
use case through MLflow's experiments/create, a data scientist's token runs autolog (cloudpickle and skops),
log_model, register_model, set_registered_model_alias, load_model("models:/NAME@ALIAS"), search_runs with
order_by and get_metric_history (the script itself asserts what the client sees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlops_core.config import PROJECT_ROOT
from mlops_core.errors import ValidationError
from mlops_core.ml import persistence
from mlops_core.services import datasets, deployments, experiments, registry, users

MLFLOW_VENV = Path(PROJECT_ROOT) / ".venv-mlflow"
REQUIREMENTS = Path(PROJECT_ROOT) / "requirements-mlflow.txt"
SCRIPT = Path(__file__).parent / "mlflow_scripts" / "workload.py"
EXP = "Iris from MLflow"
MODEL = "iris-clf"
# No outside network: the client otherwise fetches a telemetry config and posts usage.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def ensure_mlflow_venv() -> Path:
    """.venv-mlflow/bin/python, creating the virtualenv from requirements-mlflow.txt when it is missing or
    older than the requirements (as `make test` does; benchmarks/tracking.py does the same for .venv-bench)."""
    py = MLFLOW_VENV / "bin" / "python"
    stamp = MLFLOW_VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= REQUIREMENTS.stat().st_mtime and py.exists():
        return py
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    stamp.touch()
    return py


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    return ensure_mlflow_venv()


def mlflow_api(hub, role: str | None, **kw) -> httpx.Client:
    headers = {"Authorization": f"Bearer {hub.tokens[role]}"} if role else {}
    c = httpx.Client(base_url=hub.url, headers=headers, timeout=30, **kw)
    hub.clients.append(c)
    return c


@pytest.fixture(scope="module")
def workload(hub, mlflow_python):
    """The MLflow workload run once against this leg's Hub: (exit code, output, summary of ids)."""
    created = mlflow_api(hub, "business").post("/api/2.0/mlflow/experiments/create", json={"name": EXP})
    assert created.status_code == 200, created.text
    from sklearn.datasets import load_iris

    iris = datasets.register_version_from_frame(
        hub.db, actor=hub.people["data_engineer"], dataset_name="iris", frame=load_iris(as_frame=True).frame
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ARTIFACT_ROOT")}
    env.update(
        QUIET,
        MLFLOW_TRACKING_URI=hub.url,
        MLFLOW_TRACKING_TOKEN=hub.tokens["data_scientist"],
        EXP_NAME=EXP,
        MODEL_NAME=MODEL,
        HUB_DATASET=iris.ref,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        PYTHONWARNINGS="ignore",
    )
    proc = subprocess.run(
        [str(mlflow_python), str(SCRIPT)], env=env, cwd=SCRIPT.parent, capture_output=True, text=True, timeout=900
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"out": out, "experiment_id": created.json()["experiment_id"], "iris": iris, **summary}


# --- the workload, read back through the Hub's services --------------------------------------------------


def test_runs_logged_by_the_mlflow_client_are_hub_runs_of_the_use_case_with_their_params_metrics_and_files(
    hub, workload
):
    manual = experiments.get_run(hub.db, int(workload["manual"]))
    assert manual.use_case_id == int(workload["experiment_id"])
    assert manual.name == "manual" and manual.status == "finished"
    assert manual.created_by == hub.people["data_scientist"].username
    assert manual.params == {"alpha": "0.5", "depth": "3", "kind": "manual"}
    assert manual.all_metrics["loss"] == pytest.approx(0.2) and manual.all_metrics["acc"] == 0.5
    assert manual.tags["team"] == "ds"
    # set after the run had ended (set-tag / delete-tag on a finished run are annotations, as on the run page)
    assert manual.tags["reviewed"] == "yes" and "scratch" not in manual.tags
    assert experiments.run_notes(manual) == "baseline for the **churn** review"
    history = experiments.metric_history(hub.db, manual.id, "loss")["loss"]
    assert [step for step, _ in history] == [0, 1, 2, 3, 4]
    files = {a.name for a in experiments.list_artifacts(hub.db, manual.id)}
    assert {"notes.txt", "more/notes.txt", "config/features.json"} <= files

    autolog = experiments.get_run(hub.db, int(workload["autolog"]))
    assert autolog.params["C"] == "0.7" and "training_accuracy_score" in autolog.all_metrics
    # the metrics MLflow re-logs to link them to the logged model are not stored twice
    assert (
        len(experiments.metric_history(hub.db, autolog.id, "training_accuracy_score")["training_accuracy_score"]) == 1
    )

    logged = experiments.get_run(hub.db, int(workload["log_model"]))
    assert logged.model_artifact_key.endswith(f"{workload['model_id']}/model.skops")
    assert [c["name"] for c in logged.input_schema][:1] == ["sepal length (cm)"]


def test_the_alias_resolves_to_the_logged_model_and_the_hub_loads_it_to_predict_like_the_client(hub, workload):
    champion = registry.resolve_version(hub.db, model_name=MODEL, alias="champion")
    assert champion.version == int(workload["versions"][0]) and champion.run_id == int(workload["log_model"])
    # mlflow.log_input(from_pandas(X, source="iris@v1")) linked the run to that Hub version: the gate passes
    gate = {g.gate: g for g in deployments.gate_checks(hub.db, champion.id, environment="staging")}["data_validated"]
    assert (champion.dataset_version_id, gate.status) == (workload["iris"].id, "passed"), gate.detail
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    model = registry.load_model(hub.db, champion.id)  # the allow-listed skops loader, in this process
    assert model.predict(X.head(5)).tolist() == workload["predictions"]
    assert "loaded by alias, predict ->" in workload["out"]


def test_search_runs_order_by_a_metric_and_get_metric_history_work_from_the_client(workload):
    assert "history [(0, 1.0), (1, 0.5)" in workload["out"]
    table = workload["out"].split("metrics.acc", 1)[1].splitlines()[1:3]
    assert table[0].split()[1:] == [workload["log_model"], "0.97"] and table[1].split()[1:] == [
        workload["manual"],
        "0.50",
    ]


def test_a_pickle_model_from_autolog_is_registered_but_never_loaded_and_its_deployment_gate_says_why(hub, workload):
    pickled = registry.resolve_version(hub.db, model_name=MODEL, version=int(workload["versions"][1]))
    assert pickled.run_id == int(workload["autolog"]) and pickled.artifact_key.endswith("model.pkl")
    with pytest.raises(ValidationError, match="pickle"):
        registry.load_model(hub.db, pickled.id)
    gate = {g.gate: g for g in deployments.gate_checks(hub.db, pickled.id, environment="staging")}["model_loads"]
    assert gate.status == "failed" and gate.detail == persistence.PICKLE_REFUSED
    assert "serialization_format='skops'" in gate.detail


def test_the_client_gets_mlflow_errors_for_nan_bad_ids_unknown_aliases_unserved_routes_and_a_wrong_token(workload):
    out = workload["out"]
    for line in (
        "NaN metric: RestException INVALID_PARAMETER_VALUE",
        "string run id: RestException INVALID_PARAMETER",
        "unknown run: RestException RESOURCE_DOES_NOT_EXIST",
        "unknown alias: RestException RESOURCE_DOES_NOT",
        "unimplemented route: RestException ENDPOINT_NOT_FOUND",
        "wrong token: RestException UNAUTHENTICATED",
        "explicit create: PERMISSION_DENIED",
    ):
        assert line in out, line


# --- refusals over plain HTTP (no client needed) -----------------------------------------------------------


def _use_case(hub, title: str) -> str:
    r = mlflow_api(hub, "business").post("/api/2.0/mlflow/experiments/create", json={"name": title})
    if r.status_code == 400:
        return (
            mlflow_api(hub, "data_scientist")
            .get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": title})
            .json()["experiment"]["experiment_id"]
        )
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def _run(hub, exp_id: str) -> str:
    r = mlflow_api(hub, "data_scientist").post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id})
    assert r.status_code == 200, r.text
    return r.json()["run"]["info"]["run_id"]


def test_a_role_that_may_not_do_it_in_the_ui_gets_permission_denied(hub):
    exp = _use_case(hub, "Roles from MLflow")
    r = mlflow_api(hub, "business").post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert "may not start experiments" in r.json()["message"]
    run_id = _run(hub, exp)
    r = mlflow_api(hub, "ops").post(
        "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "acc", "value": 0.9, "step": 0}]}
    )
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = mlflow_api(hub, "data_scientist").post("/api/2.0/mlflow/experiments/create", json={"name": "New from DS"})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert "ask a business user to create the use case 'New from DS'" in r.json()["message"]
    r = mlflow_api(hub, "business").post("/api/2.0/mlflow/registered-models/create", json={"name": "x-model"})
    assert r.status_code == 403
    assert experiments.get_run(hub.db, int(run_id)).all_metrics == {}


def test_no_wrong_or_revoked_token_gets_unauthenticated(hub):
    assert (
        mlflow_api(hub, None).get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "1"}).json()["error_code"]
        == "UNAUTHENTICATED"
    )
    token = users.create_token(
        hub.db, actor=hub.people["data_scientist"], username=hub.people["data_scientist"].username, name="to revoke"
    )
    c = httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    hub.clients.append(c)
    exp = _use_case(hub, "Tokens from MLflow")
    assert c.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": exp}).status_code == 200
    tid = users.list_tokens(hub.db, actor=hub.people["data_scientist"], username=hub.people["data_scientist"].username)[
        0
    ].id
    users.revoke_token(hub.db, actor=hub.people["data_scientist"], token_id=tid)
    r = c.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": exp})
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        ("POST", "/api/2.0/mlflow/experiments/delete", 404, "ENDPOINT_NOT_FOUND"),
        ("GET", "/ajax-api/2.0/mlflow/runs/nothing-here", 404, "ENDPOINT_NOT_FOUND"),
        ("POST", "/api/3.0/mlflow/traces", 501, "NOT_IMPLEMENTED"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/create/1/2/artifacts/x", 501, "NOT_IMPLEMENTED"),
    ],
)
def test_a_route_the_hub_does_not_serve_answers_mlflow_error_json_not_500(hub, method, path, status, code):
    r = mlflow_api(hub, "data_scientist").request(method, path, json={})
    assert (r.status_code, r.json()["error_code"]) == (status, code)
    assert r.json()["message"]


def test_bad_input_is_refused_with_a_4xx_and_nothing_is_stored(hub):
    exp = _use_case(hub, "Bad input from MLflow")
    run_id = _run(hub, exp)
    ds = mlflow_api(hub, "data_scientist")
    cases = [
        (
            "/api/2.0/mlflow/runs/log-batch",
            {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "step": i} for i in range(1001)]},
        ),
        ("/api/2.0/mlflow/runs/log-metric", {"run_id": run_id, "key": "m", "value": "NaN", "step": 0}),
        ("/api/2.0/mlflow/runs/log-metric", {"run_id": run_id, "key": "m", "value": "Infinity", "step": 0}),
        ("/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": "high"}]}),
        ("/api/2.0/mlflow/runs/log-metric", {"run_id": "12abc", "key": "m", "value": 1.0}),
    ]
    for path, body in cases:
        r = ds.post(path, json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (path, r.text)
    r = ds.post("/api/2.0/mlflow/runs/create", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert experiments.metric_history(hub.db, int(run_id)) == {}
    # a param never changes value once logged (MLflow's rule)
    assert (
        ds.post("/api/2.0/mlflow/runs/log-parameter", json={"run_id": run_id, "key": "C", "value": "1"}).status_code
        == 200
    )
    r = ds.post("/api/2.0/mlflow/runs/log-parameter", json={"run_id": run_id, "key": "C", "value": "2"})
    assert r.status_code == 400 and "Changing param values is not allowed" in r.json()["message"]
    # filters: what is supported works, anything else is refused naming what is supported
    ds.post("/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id, "key": "acc", "value": 0.8, "step": 0})
    found = ds.post(
        "/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": [exp],
            "filter": "metrics.acc > 0.5 and params.C = '1' and attributes.status = 'RUNNING'",
        },
    ).json()["runs"]
    assert [r["info"]["run_id"] for r in found] == [run_id]
    r = ds.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp], "filter": "metrics.acc > 0.5 OR 1=1"})
    assert r.status_code == 400 and "supported" in r.json()["message"]


def test_artifact_paths_with_dotdot_or_of_another_use_case_are_refused_and_nothing_is_stored(hub):
    exp = _use_case(hub, "Artifacts from MLflow")
    other = _use_case(hub, "Another use case")
    run_id = _run(hub, exp)
    ds = mlflow_api(hub, "data_scientist")
    base = "/api/2.0/mlflow-artifacts/artifacts"
    assert ds.put(f"{base}/{exp}/{run_id}/artifacts/ok.txt", content=b"fine").status_code == 200
    assert ds.get(f"{base}/{exp}/{run_id}/artifacts/ok.txt").content == b"fine"
    r = ds.put(f"{base}/{exp}/{run_id}/artifacts/a/%2E%2E/%2E%2E/escape.txt", content=b"x")
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = ds.put(f"{base}/{other}/{run_id}/artifacts/x.txt", content=b"x")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = mlflow_api(hub, "ops").put(f"{base}/{exp}/{run_id}/artifacts/ops.txt", content=b"x")
    assert r.status_code == 403
    assert {a.name for a in experiments.list_artifacts(hub.db, int(run_id))} == {"ok.txt"}
    listing = ds.get(base, params={"path": f"{exp}/{run_id}/artifacts"}).json()
    assert listing == {"files": [{"path": "ok.txt", "is_dir": False, "file_size": 4}]}
