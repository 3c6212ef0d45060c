"""Datasets and models on an fsspec artifact store (issue 8): ARTIFACT_ROOT as a memory:// or file:// URL,
and two processes sharing one file:// store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from mlops_core import artifacts
from mlops_core.config import PROJECT_ROOT, reload_settings
from mlops_core.errors import NotFound
from mlops_core.services import datasets, experiments, registry
from tests.conftest import make_people

from .experiments_world import FAST, make_world, run_jobs


def _use_store(monkeypatch, tmp_path: Path, kind: str) -> str:
    root = f"memory://hub-{uuid.uuid4().hex[:12]}/artifacts" if kind == "memory" else (tmp_path / "shared").as_uri()
    monkeypatch.setenv("ARTIFACT_ROOT", root)
    monkeypatch.setenv("ARTIFACT_CACHE_DIR", str(tmp_path / "cache"))
    reload_settings()
    return root


def _stored_keys(root: str, tmp_path: Path) -> list[str]:
    if root.startswith("memory://"):
        base = root.removeprefix("memory:/")
        return sorted(p.removeprefix(base + "/") for p in fsspec.filesystem("memory").find(base))
    folder = tmp_path / "shared"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".staging" not in p.parts)


@pytest.fixture(params=["memory", "file"])
def url_store(request, db, tmp_path, monkeypatch):
    root = _use_store(monkeypatch, tmp_path, request.param)
    yield root
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        base = root.removeprefix("memory:/")
        if fs.exists(base):
            fs.rm(base, recursive=True)


def test_a_dataset_version_is_stored_in_the_url_store_and_loads_back(db, people, url_store, tmp_path):
    dan = people["data_engineer"]
    csv = b"age,income,plan\n31,1200.5,basic\n45,3400.0,pro\n27,900.0,basic\n"
    v = datasets.register_version_from_upload(
        db, actor=dan, dataset_name="customers", fileobj=io.BytesIO(csv), filename="customers.csv"
    )
    assert datasets.is_trainable(v), v.status
    keys = _stored_keys(url_store, tmp_path)
    assert v.artifact_key in keys and any(k.startswith("profiles/") for k in keys)
    frame = datasets.load_frame(db, v.id)
    assert frame["age"].tolist() == [31, 45, 27] and frame["plan"].tolist() == ["basic", "pro", "basic"]
    assert datasets.get_profile(db, v.id)  # read back with get_bytes
    # the same content again is the same version: nothing new stored
    again = datasets.register_version_from_upload(
        db, actor=dan, dataset_name="customers", fileobj=io.BytesIO(csv), filename="copy.csv"
    )
    assert again.deduplicated and _stored_keys(url_store, tmp_path) == keys
    # staging is local scratch and is left empty
    staged = [p for p in artifacts.staging_dir().rglob("*") if p.is_file()]
    assert staged == []
    if url_store.startswith("memory://"):
        assert artifacts.path(v.artifact_key).is_relative_to(tmp_path / "cache")
        assert not (tmp_path / "shared").exists()


def test_a_model_is_saved_to_and_loaded_from_the_url_store(db, people, url_store, tmp_path):
    world = make_world(db, people)
    run = experiments.start_run(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", "algorithm": "logistic_regression", **FAST},
    )
    assert run_jobs(db) == ["finished"]
    mv = registry.register_model(db, actor=people["data_scientist"], run_id=run.id, name="churn-url")
    assert mv.artifact_key in _stored_keys(url_store, tmp_path)
    model = registry.load_model(db, mv.id)
    assert len(model.predict(world.frame.drop(columns=["churned"]).head(4))) == 4


def test_the_model_cache_is_keyed_by_store(db, people, tmp_path, monkeypatch):
    """The same model key in two stores served by one process is two models."""
    _use_store(monkeypatch, tmp_path, "memory")
    world = make_world(db, people)
    run = experiments.start_run(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", "algorithm": "logistic_regression", **FAST},
    )
    run_jobs(db)
    mv = registry.register_model(db, actor=people["data_scientist"], run_id=run.id, name="churn-a")
    registry.load_model(db, mv.id)
    _use_store(monkeypatch, tmp_path, "memory")  # a fresh, empty store
    with pytest.raises(NotFound, match="missing from the artifact store"):
        registry.load_model(db, mv.id)


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_processes_sharing_a_file_url_store_see_each_others_artifacts(sqlite_db, tmp_path, monkeypatch):
    root = _use_store(monkeypatch, tmp_path, "file")
    env = {"DATABASE_URL": sqlite_db.url, "ARTIFACT_ROOT": root, "ARTIFACT_CACHE_DIR": str(tmp_path / "cache2")}
    dan = make_people(sqlite_db)["data_engineer"]

    # this process registers a dataset; another process loads it and stores a report of its own
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", "b", "a", "c"]})
    v = datasets.register_version_from_frame(sqlite_db, actor=dan, dataset_name="shared", frame=frame)
    other = _run(
        "import json; from mlops_core import artifacts; from mlops_core.db import Database;"
        "from mlops_core.services import datasets;"
        f"f = datasets.load_frame(Database({sqlite_db.url!r}), {v.id});"
        "artifacts.put_bytes('reports/from-other.json', json.dumps({'rows': len(f), 'y': f['y'].tolist()}).encode());"
        "print(artifacts.store_id())",
        env,
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip().splitlines()[-1] == artifacts.store_id()
    assert json.loads(artifacts.get_bytes("reports/from-other.json")) == {"rows": 4, "y": ["a", "b", "a", "c"]}

    # the CLI in another process registers a file; this process loads it back
    src = tmp_path / "incoming.csv"
    src.write_text("k,v\n1,10\n2,20\n3,30\n")
    cli = subprocess.run(
        [sys.executable, "-m", "mlops_core", "dataset", "add", "incoming", str(src)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    vid = json.loads(cli.stdout.strip().splitlines()[-1])["version_id"]
    assert datasets.load_frame(sqlite_db, vid)["v"].tolist() == [10, 20, 30]
    assert datasets.get_version(sqlite_db, vid).artifact_key in _stored_keys(root, tmp_path)


def test_the_cli_names_the_missing_driver_package(tmp_path):
    import importlib.util

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ARTIFACT_ROOT": "s3://mlops-bucket/hub",
        "ARTIFACT_CACHE_DIR": str(tmp_path / "cache"),
    }
    src = tmp_path / "a.csv"
    src.write_text("a\n1\n")
    e = {**os.environ, **env}
    init = subprocess.run(
        [sys.executable, "-m", "mlops_core", "init"],
        cwd=PROJECT_ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr
    p = subprocess.run(
        [sys.executable, "-m", "mlops_core", "dataset", "add", "a", str(src)],
        cwd=PROJECT_ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "error: ARTIFACT_ROOT uses s3://, which needs the s3fs package: pip install s3fs"
