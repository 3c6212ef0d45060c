"""The issue-14 MLflow workload, run with the real pinned client (mlflow-skinny 3.17.2) against a live Hub
by tests/api/test_mlflow_client.py, as a data scientist whose use case (EXP_NAME) a business user created:

    MLFLOW_TRACKING_URI=http://127.0.0.1:8000 MLFLOW_TRACKING_TOKEN=<data scientist token> EXP_NAME=... \
        .venv-mlflow/bin/python tests/api/mlflow_scripts/workload.py

Exits 0 only when every step worked and the results read back are right; the last line is a JSON summary
(run ids, model ids) for the test to check on the Hub's side. A data scientist may not create use cases, so
the explicit create_experiment must be refused.
"""

# ruff: noqa: E402 - a script in steps: each imports what it needs where it starts (as the research copy)
from __future__ import annotations

import os
import tempfile

# The client otherwise fetches a telemetry config from the internet and posts usage records.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

assert os.environ.get("MLFLOW_TRACKING_URI"), "set MLFLOW_TRACKING_URI"
EXP = os.environ.get("EXP_NAME", "Iris from MLflow")
MODEL = os.environ.get("MODEL_NAME", "iris-clf")

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
exp = mlflow.set_experiment(EXP)  # get-by-name -> 404 -> create -> get
print("experiment", exp.experiment_id, exp.name)
client = MlflowClient()
try:  # a data scientist may not create use cases in the UI, so not from MLflow either
    client.create_experiment(EXP + " (explicit create)")
    raise SystemExit("explicit create_experiment by a data scientist: expected PERMISSION_DENIED")
except mlflow.exceptions.MlflowException as e:
    assert e.error_code == "PERMISSION_DENIED", e.error_code
    print("explicit create:", e.error_code, e.message[:120])

X, y = load_iris(return_X_y=True, as_frame=True)

# 1) a plain run: params, metrics with steps, tag, log_dict, log_artifact
with mlflow.start_run(run_name="manual") as run:
    manual_id = run.info.run_id
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({"depth": 3, "kind": "manual"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.5, "f1": 0.4}, step=4)
    mlflow.set_tag("team", "ds")
    mlflow.log_dict({"features": list(X.columns)}, "config/features.json")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "notes.txt")
        with open(p, "w") as f:
            f.write("hello hub\n")
        mlflow.log_artifact(p)
        mlflow.log_artifact(p, artifact_path="more")
assert manual_id.isdigit(), manual_id
print("manual run", manual_id)
# after the run ended: a tag, a description (mlflow.note.content) and deleting a tag, as MLflow allows
client.set_tag(manual_id, "reviewed", "yes")
client.set_tag(manual_id, "mlflow.note.content", "baseline for the **churn** review")
client.set_tag(manual_id, "scratch", "x")
client.delete_tag(manual_id, "scratch")
after = client.get_run(manual_id).data.tags
assert after["reviewed"] == "yes" and "scratch" not in after, after
assert after["mlflow.note.content"] == "baseline for the **churn** review", after

# 2) autolog run: LogisticRegression
mlflow.sklearn.autolog(log_models=True)
with mlflow.start_run(run_name="autolog") as run:
    auto_id = run.info.run_id
    clf = LogisticRegression(max_iter=300, C=0.7).fit(X, y)
print("autolog run (default cloudpickle!)", auto_id)

# 2b) autolog again, asking for skops (autolog's default in 3.17.2 is cloudpickle)
mlflow.sklearn.autolog(log_models=True, serialization_format="skops")
with mlflow.start_run(run_name="autolog-skops") as run:
    auto_skops_id = run.info.run_id
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
mlflow.sklearn.autolog(disable=True)
print("autolog skops run", auto_skops_id)

# 3) explicit log_model (MLflow 3 logged model) + register + alias + load by alias
with mlflow.start_run(run_name="log_model") as run:
    lm_run_id = run.info.run_id
    mlflow.log_metric("acc", 0.97)
    if os.environ.get("HUB_DATASET"):  # the Hub version this data is: links the run, for the data_validated gate
        mlflow.log_input(mlflow.data.from_pandas(X, source=os.environ["HUB_DATASET"]), context="training")
    info = mlflow.sklearn.log_model(clf, name="model", input_example=X.head(3))
print("logged model", info.model_id, info.model_uri, info.artifact_path)

mv = mlflow.register_model(info.model_uri, MODEL)
print("registered", mv.name, mv.version, mv.source)
MlflowClient().set_registered_model_alias(MODEL, "champion", mv.version)
loaded = mlflow.sklearn.load_model(f"models:/{MODEL}@champion")
pred = loaded.predict(X.head(5))
assert (pred == clf.predict(X.head(5))).all(), pred
print("loaded by alias, predict ->", pred.tolist())

# also a second registration of the autolog run's model via runs:/ URI
mv2 = mlflow.register_model(f"runs:/{auto_id}/model", MODEL)
print("registered runs:/ uri as version", mv2.version, mv2.source)

# 4) search_runs ordered by a metric, get_metric_history
df = mlflow.search_runs(experiment_ids=[exp.experiment_id], order_by=["metrics.acc DESC"])
print(df[["run_id", "metrics.acc"]].to_string())
accs = [a for a in df["metrics.acc"].tolist() if not np.isnan(a)]
assert accs == sorted(accs, reverse=True) and accs[0] == 0.97, accs
runs = client.search_runs([exp.experiment_id], order_by=["metrics.`training_accuracy_score` DESC"], max_results=2)
tas = [r.data.metrics["training_accuracy_score"] for r in runs]
assert len(runs) == 2 and tas == sorted(tas, reverse=True), tas
assert {r.info.run_id for r in runs} == {auto_id, auto_skops_id}, [r.info.run_id for r in runs]
hist = client.get_metric_history(manual_id, "loss")
assert [m.step for m in hist] == list(range(5)), hist
assert abs(hist[-1].value - 0.2) < 1e-9
print("history", [(m.step, m.value) for m in hist])

# 5) read back what autolog wrote
r = client.get_run(auto_id)
assert r.data.params["C"] == "0.7", r.data.params
assert "training_accuracy_score" in r.data.metrics, r.data.metrics
arts = [a.path for a in client.list_artifacts(manual_id)]
assert {"notes.txt", "config", "more"} <= set(arts), arts
print("autolog params", sorted(r.data.params)[:6], "... metrics", sorted(r.data.metrics))
print("run outputs", [(o.model_id, o.step) for o in r.outputs.model_outputs])
print("run inputs", [(i.dataset.name, i.dataset.source_type) for i in r.inputs.dataset_inputs])


# 6) what the formats look like on the server side
def mlmodel_of(model_id):
    import yaml

    loc = client.get_logged_model(model_id).artifact_location  # mlflow-artifacts:/...
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{loc}/MLmodel")
    return yaml.safe_load(open(path))["flavors"]["sklearn"]


auto_model = client.get_run(auto_id).outputs.model_outputs[0].model_id
skops_model = client.get_run(auto_skops_id).outputs.model_outputs[0].model_id
print("autolog default format:", mlmodel_of(auto_model)["serialization_format"])
fl = mlmodel_of(skops_model)
print("autolog skops format:", fl["serialization_format"], "trusted:", fl["skops_trusted_types"])
assert fl["serialization_format"] == "skops"
p2 = mlflow.sklearn.load_model(f"models:/{skops_model}")
assert (p2.predict(X.head(5)) == pipe.predict(X.head(5))).all()
latest = mlflow.sklearn.load_model(f"models:/{MODEL}/latest")  # get-latest-versions
print("models:/NAME/latest ->", type(latest).__name__)

# 7) error paths: what the client raises for the Hub's error JSON
from mlflow.exceptions import MlflowException

for what, call in [
    ("NaN metric", lambda: client.log_metric(manual_id, "bad", float("nan"))),
    ("string run id", lambda: client.get_run("abc")),
    ("unknown run", lambda: client.get_run("999999")),
    ("unknown alias", lambda: client.get_model_version_by_alias(MODEL, "nope")),
    ("unimplemented route", lambda: client.delete_experiment(exp.experiment_id)),
]:
    try:
        call()
        raise SystemExit(f"{what}: expected an error")
    except MlflowException as e:
        print(f"{what}: {type(e).__name__} {e.error_code}: {e.message[:70]}")
old = os.environ["MLFLOW_TRACKING_TOKEN"]
os.environ["MLFLOW_TRACKING_TOKEN"] = "wrong"
try:
    MlflowClient().get_experiment_by_name(EXP)
    raise SystemExit("wrong token: expected an error")
except MlflowException as e:
    print("wrong token:", type(e).__name__, e.error_code, e.message[:60])
os.environ["MLFLOW_TRACKING_TOKEN"] = old
import json

print("OK: the whole workload passed")
print(
    json.dumps(
        {
            "experiment_id": exp.experiment_id,
            "manual": manual_id,
            "autolog": auto_id,
            "autolog_skops": auto_skops_id,
            "log_model": lm_run_id,
            "model_id": info.model_id,
            "versions": [mv.version, mv2.version],
            "predictions": pred.tolist(),
        }
    )
)
