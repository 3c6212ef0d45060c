"""Security issue 12, finding 1: code execution through a model file.

The attacker, a data scientist, logged with the SDK a Pipeline of FunctionTransformers calling
numpy.full_like (fill_value = a Python expression), numpy.ravel, builtins.min and builtins.eval, then a
DummyClassifier; registered it and requested a deployment, and the "model loads and predicts" gate ran the
expression inside the Streamlit server. Here the payload writes a marker file: it must never appear."""

import builtins
import os
import resource
import time

import numpy as np
import pytest
import skops.io as sio
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sqlmodel import select

from mlops_core import artifacts, tracking
from mlops_core.config import reload_settings
from mlops_core.errors import ValidationError
from mlops_core.ml import persistence
from mlops_core.models.experiments import Run, RunArtifact
from mlops_core.services import audit, deployments, registry, users
from mlops_core.services.auth import Actor
from tests.api.live_hub import hub_in_thread
from tests.services.experiments_world import make_world

NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "age"]


@pytest.fixture
def sara(db, people, monkeypatch):
    """The data scientist, driving the SDK (over HTTP, against a Hub on this database) with her token."""
    monkeypatch.setenv("MLOPS_TOKEN", users.create_token(db, actor=Actor.system(), username="sara"))
    with hub_in_thread(os.environ["DATABASE_URL"]) as url:
        monkeypatch.setenv("MLOPS_HUB_URL", url)
        yield people["data_scientist"]


def attacker_pipeline(marker) -> Pipeline:
    """The attacker's model, as logged. Its steps are not fitted here: fitting would run the payload."""
    expression = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned') and 0"
    clf = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    return Pipeline(
        [
            ("fill", FunctionTransformer(np.full_like, kw_args={"fill_value": expression, "dtype": object})),
            ("flat", FunctionTransformer(np.ravel)),
            ("first", FunctionTransformer(builtins.min)),
            ("run", FunctionTransformer(builtins.eval)),
            ("clf", clf),
        ]
    )


def _stored_model_files() -> list[str]:
    root = os.environ["ARTIFACT_ROOT"]  # the db fixture's store
    return [f for _, _, files in os.walk(root) for f in files if f.endswith(".skops")]


def _registered(db, sara, world, model, name):
    """Log `model` from a notebook run with the SDK and register it, as the attacker did."""
    with tracking.start_run(use_case=world.use_case_id, dataset="customers@v1", name=name) as run:
        run.log_model(model, input_example=world.frame[NUMERIC])
    return registry.register_model(db, actor=sara, run_id=run.id, name=name)


def _model_gate(db, sara, mv, deployment="churn-check"):
    req = deployments.request_deployment(
        db, actor=sara, model_version_id=mv.id, deployment_name=deployment, environment="staging"
    )
    return next(g for g in req.gates if g.gate == "model_loads")


def test_the_attackers_model_logged_through_the_sdk_is_refused_by_name_and_nothing_is_stored(
    db, people, sara, tmp_path
):
    world = make_world(db, people)
    marker = tmp_path / "pwned"
    with pytest.raises(ValidationError) as refused:
        with tracking.start_run(use_case=world.use_case_id, dataset="customers@v1", name="innocent baseline") as run:
            run.log_model(attacker_pipeline(marker))
    message = str(refused.value)
    for name in ("builtins.eval", "builtins.min", "numpy.full_like", "numpy.ravel"):
        assert name in message
    assert "does not load" in message
    # Nothing stored: no file in the artifact store, no artifact row, no model on the run, nothing to register.
    assert _stored_model_files() == []
    with db.read() as s:
        assert s.exec(select(RunArtifact).where(RunArtifact.run_id == run.id)).all() == []
        assert s.get(Run, run.id).model_artifact_key is None
    assert tracking.get_run(run.id).status == "failed"
    with pytest.raises(ValidationError, match="only a finished run can be registered"):
        registry.register_model(db, actor=sara, run_id=run.id, name="innocent")
    events = audit.list_events(db, actor=people["admin"], action="run.log_model_refused").events
    assert len(events) == 1 and events[0].actor_username == "sara" and "builtins.eval" in events[0].summary
    assert not marker.exists()


def test_a_crafted_model_file_already_in_the_store_is_refused_before_anything_in_it_runs(db, people, sara, tmp_path):
    world = make_world(db, people)
    marker, proof = tmp_path / "pwned", tmp_path / "payload-is-live"
    crafted = sio.dumps(attacker_pipeline(marker))
    # The payload is real: loaded the way the old allow-list did (trust what skops reports), it runs on predict.
    live = sio.loads(
        sio.dumps(attacker_pipeline(proof)), trusted=sio.get_untrusted_types(data=sio.dumps(attacker_pipeline(proof)))
    )
    with pytest.raises(Exception):
        live.predict(world.frame[NUMERIC].head(2))
    assert proof.read_text() == "pwned"

    # A legitimate version, whose file is then replaced in the store by the crafted one.
    legit = DummyClassifier().fit(world.frame[NUMERIC], world.frame["churned"])
    mv = _registered(db, sara, world, legit, "churn-dummy")
    artifacts.put_bytes(mv.artifact_key, crafted)

    with pytest.raises(ValidationError, match="does not load: .*builtins.eval"):
        registry.load_model(db, mv.id)  # what the scoring service and the worker call
    with pytest.raises(ValidationError, match="builtins.eval"):
        deployments.load_model(db, mv.id)
    gate = _model_gate(db, sara, mv)
    assert gate.status == "failed" and "builtins.eval" in gate.detail and "numpy.full_like" in gate.detail
    # And registering another version from that run is refused too.
    with pytest.raises(ValidationError, match="builtins.eval"):
        registry.register_model(db, actor=sara, run_id=mv.run_id, name="churn-dummy")
    assert not marker.exists()


def test_the_model_gate_loads_and_predicts_in_another_process(db, people, sara, monkeypatch):
    world = make_world(db, people)
    mv = _registered(
        db, sara, world, DummyClassifier().fit(world.frame[NUMERIC], world.frame["churned"]), "churn-dummy"
    )
    # If this process built the model, the test would fail here.
    monkeypatch.setattr(persistence, "load_model_bytes", lambda *_: pytest.fail("the caller loaded the model"))
    gate = _model_gate(db, sara, mv)
    assert gate.status == "passed", gate.detail
    assert gate.evidence["rows"] == deployments.GATE_SAMPLE_ROWS
    assert gate.evidence["check_pid"] not in (None, os.getpid())
    assert "separate process" in gate.detail


def test_a_model_that_allocates_too_much_memory_fails_the_gate_without_hurting_the_caller(
    db, people, sara, monkeypatch
):
    monkeypatch.setenv("MLOPS_MODEL_CHECK_MEMORY_MB", "1536")
    reload_settings()
    world = make_world(db, people)
    bomb = DummyRegressor().fit(world.frame[NUMERIC], world.frame["monthly_charges"])
    bomb.n_outputs_ = 25_000_000  # predict fills a rows x n_outputs_ float array: 20 rows -> 4 GB
    mv = _registered(db, sara, world, bomb, "churn-bomb")  # only trusted types: it passes the type check
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gate = _model_gate(db, sara, mv)
    assert gate.status == "failed"
    assert "needs more than 1536 MB" in gate.detail and "predict" in gate.detail
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500  # the 4 GB were asked for in the child, not here


def test_a_model_that_hangs_fails_the_gate_at_the_time_limit_and_its_process_is_gone(db, people, sara, monkeypatch):
    limit = 40.0  # generous: a shared CI machine can take 10-20 s just to import scikit-learn in the child
    monkeypatch.setenv("MLOPS_MODEL_CHECK_TIMEOUT_SECONDS", str(limit))
    reload_settings()
    world = make_world(db, people)
    hang = HistGradientBoostingClassifier(max_iter=2).fit(world.frame[NUMERIC], world.frame["churned"])
    root = hang._predictors[0][0].nodes
    root["is_leaf"][0], root["left"][0], root["right"][0] = 0, 0, 0  # the root is its own child: an endless walk
    mv = _registered(db, sara, world, hang, "churn-hang")
    started = time.monotonic()
    gate = _model_gate(db, sara, mv)
    elapsed = time.monotonic() - started
    assert gate.status == "failed"
    assert f"did not finish within {limit:g} s" in gate.detail
    assert elapsed < limit + 30
    pid = gate.evidence["check_pid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the model check process {pid} is still running after the timeout")
