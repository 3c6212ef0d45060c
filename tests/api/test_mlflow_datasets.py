"""MLflow runs and Hub datasets (issue 14): a run logged by the MLflow client gets the Hub dataset version it
names, so its model can pass the `data_validated` deployment gate. Service level (mlflow_bridge, what the
MLflow routes call), on SQLite and Postgres: the `mlops.dataset` tag (start_run tags, set_tag / log-batch)
and log-inputs datasets whose name, source or digest is a Hub version (the payload shapes below are the ones
mlflow-skinny 3.17.2 sends for `mlflow.data.from_pandas(df, source=..., name=...)`); evaluation inputs and
unknown references never link; a bad tag is refused before anything is stored. The real client's log_input
is checked in test_mlflow_client.py."""

from __future__ import annotations

import json

import pytest

from mlops_core.demo.customers import make_customers
from mlops_core.errors import Conflict, NotFound
from mlops_core.services import audit, datasets, deployments, experiments, mlflow_bridge, usecases
from mlops_core.services.auth import Actor

SYSTEM = Actor.system()


def _input(name: str = "dataset", *, source=None, digest: str = "2981c147", context: str = "training") -> dict:
    source_type, src = ("code", {"tags": {"mlflow.source.name": "train.py"}}) if source is None else source
    return {
        "tags": [{"key": "mlflow.data.context", "value": context}],
        "dataset": {
            "name": name,
            "digest": digest,
            "source_type": source_type,
            "source": json.dumps(src),
            "schema": "{}",
            "profile": "{}",
        },
    }


def _gate(db, run_id: int):
    """The data_validated gate as it reads a version registered from this run (the registry copies the run's
    dataset_version_id onto the model version)."""
    return deployments._gate_data(db, {"dataset_version_id": experiments.get_run(db, run_id).dataset_version_id})


@pytest.fixture
def world(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Churn from MLflow", problem_statement="x")
    dan = people["data_engineer"]
    v1 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=make_customers(80, seed=1))
    v2 = datasets.register_version_from_frame(db, actor=dan, dataset_name="customers", frame=make_customers(80, seed=2))
    assert (v1.version, v2.version) == (1, 2) and datasets.is_trainable(v2)
    return uc.id, v1, v2


def test_a_run_gets_its_dataset_from_the_tag_or_a_logged_input_and_passes_the_data_gate(db, people, world):
    uc_id, v1, v2 = world
    sara = people["data_scientist"]

    # Without a link the gate fails as before (no lineage).
    bare = mlflow_bridge.create_run(db, actor=sara, use_case_id=uc_id, name="bare", tags={})
    assert bare.source == "mlflow" and bare.dataset_version_id is None
    assert _gate(db, bare.id).status == "failed"
    mlflow_bridge.add_inputs(db, actor=sara, run_id=bare.id, datasets=[_input("dataset")], models=[])
    assert experiments.get_run(db, bare.id).dataset_version_id is None  # an input that is not a Hub dataset

    # 1) start_run(tags={"mlops.dataset": ...})
    tagged = mlflow_bridge.create_run(
        db, actor=sara, use_case_id=uc_id, name="tagged", tags={mlflow_bridge.DATASET_TAG: "customers@v1"}
    )
    assert (tagged.dataset_version_id, tagged.dataset_hash) == (v1.id, v1.content_hash)
    gate = _gate(db, tagged.id)
    assert gate.status == "passed" and gate.detail == "customers@v1 passed validation"

    # 2) log-inputs: an evaluation set never links; the training input whose source is "customers@v2" does,
    # and a later input does not move it; an explicit set_tag does (and is audited both times).
    run = mlflow_bridge.create_run(db, actor=sara, use_case_id=uc_id, name="inputs", tags={})
    inputs = [
        _input("customers@v1", context="eval"),
        _input(source=("local", {"uri": "customers@v2"})),
    ]
    mlflow_bridge.add_inputs(db, actor=sara, run_id=run.id, datasets=inputs, models=[])
    got = experiments.get_run(db, run.id)
    assert (got.dataset_version_id, got.dataset_hash) == (v2.id, v2.content_hash)
    assert len(mlflow_bridge.mlflow_meta(got)["inputs"]) == 2  # kept for MLflow as sent
    mlflow_bridge.add_inputs(db, actor=sara, run_id=run.id, datasets=[_input("customers@v1")], models=[])
    assert experiments.get_run(db, run.id).dataset_version_id == v2.id
    mlflow_bridge.log(db, actor=sara, run_id=run.id, tags={mlflow_bridge.DATASET_TAG: "customers@v1"})
    got = experiments.get_run(db, run.id)
    assert got.dataset_version_id == v1.id and got.tags[mlflow_bridge.DATASET_TAG] == "customers@v1"
    events = audit.list_events(db, actor=SYSTEM, action="run.dataset", entity_id=str(run.id)).events
    assert sorted(e.summary for e in events) == [
        f"run {run.id} trained on customers@v1 (from tag mlops.dataset)",
        f"run {run.id} trained on customers@v2 (from MLflow log-inputs)",
    ]
    assert {e.actor_username for e in events} == {sara.username}

    # 3) the Hub's download URL as an http source, the name, and the content hash as the digest
    for item, want in (
        (_input(source=("http", {"url": "http://hub:8000/api/v1/datasets/customers/versions/2/data"})), v2),
        (_input("customers@v1"), v1),
        (_input("train", digest=v2.content_hash[:12]), v2),
    ):
        r = mlflow_bridge.create_run(db, actor=sara, use_case_id=uc_id, name="more", tags={})
        mlflow_bridge.add_inputs(db, actor=sara, run_id=r.id, datasets=[item], models=[])
        assert experiments.get_run(db, r.id).dataset_version_id == want.id, item
    r = mlflow_bridge.create_run(db, actor=sara, use_case_id=uc_id, name="short digest", tags={})
    mlflow_bridge.add_inputs(
        db, actor=sara, run_id=r.id, datasets=[_input("customers@v7"), _input(digest=v2.content_hash[:8])], models=[]
    )
    assert experiments.get_run(db, r.id).dataset_version_id is None  # unknown version, digest too short

    # 4) a tag naming no version is refused with a sentence, before anything is stored
    with pytest.raises(NotFound, match=r"tag mlops.dataset='customers@v9': dataset 'customers' has no version v9"):
        mlflow_bridge.log(db, actor=sara, run_id=bare.id, tags={mlflow_bridge.DATASET_TAG: "customers@v9", "t": "1"})
    assert "t" not in experiments.get_run(db, bare.id).tags
    before = experiments.list_runs(db, use_case_id=uc_id, limit=100, with_total=False)
    with pytest.raises(NotFound, match="no dataset named 'orders'"):
        mlflow_bridge.create_run(
            db, actor=sara, use_case_id=uc_id, name="x", tags={mlflow_bridge.DATASET_TAG: "orders"}
        )
    assert len(experiments.list_runs(db, use_case_id=uc_id, limit=100, with_total=False)) == len(before)

    # 5) a finished run's lineage does not change any more (the input itself is kept, as MLflow does)
    mlflow_bridge.end_run(db, actor=sara, run_id=tagged.id, mlflow_status="FINISHED")
    with pytest.raises(Conflict):
        mlflow_bridge.log(db, actor=sara, run_id=tagged.id, tags={mlflow_bridge.DATASET_TAG: "customers@v2"})
    mlflow_bridge.end_run(db, actor=sara, run_id=bare.id, mlflow_status="FINISHED")
    mlflow_bridge.add_inputs(db, actor=sara, run_id=bare.id, datasets=[_input("customers@v2")], models=[])
    assert experiments.get_run(db, bare.id).dataset_version_id is None
    assert experiments.get_run(db, tagged.id).dataset_version_id == v1.id
