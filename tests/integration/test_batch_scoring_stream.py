"""Batch scoring at scale (issue 16, point 2): a file several times the batch setting is scored in bounded
batches: the peak memory of the job does not grow with the file (4x the rows, about the same peak), and the
scored rows equal whole-file scoring (`score_frame`). With a Dask cluster configured the row-group partitions
are scored on it (the shared `dask_cluster` of tests/integration/conftest.py) and the result equals the local
streamed one, row for row, in order."""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_core import artifacts, data_io, jobs
from mlops_core.config import reload_settings
from mlops_core.demo.customers import make_customers
from mlops_core.errors import ValidationError
from mlops_core.services import collab, deployments, predictions
from tests.conftest import make_people
from tests.services.deployments_world import make_world

pytestmark = pytest.mark.slow

BATCH_ROWS = 500


class Ctx:
    """The job context of an inline run: records the progress messages."""

    def __init__(self, db, payload):
        self.db, self.payload, self.messages = db, payload, []

    def progress(self, fraction, message):
        self.messages.append((fraction, message))

    def check_cancelled(self):
        pass


def _deployed(db) -> dict:
    people = make_people(db)
    w = make_world(db, people)
    mv_id = w.versions[0]
    req = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=mv_id, deployment_name="churn", environment="production"
    )
    so = next(s for s in collab.signoffs_for(db, "model_version", mv_id) if s.status == "pending")
    collab.decide_signoff(db, actor=people["business"], signoff_id=so.id, approve=True)
    deployments.deploy(db, actor=people["ops"], request_id=req.id)
    return people, w.dataset_version_id


def _score(db, people, frame: pd.DataFrame, name: str) -> dict:
    """Submit `frame` as an uploaded CSV and run the job inline; its result (with the peak traced memory)."""
    job_id = predictions.submit_batch_scoring(
        db,
        actor=people["data_scientist"],
        deployment_name="churn",
        filename=name,
        data=frame.to_csv(index=False).encode(),
    )
    ctx = Ctx(db, jobs.get_job(db, job_id).payload)
    tracemalloc.start()
    try:
        out = predictions.batch_score_job(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {**out, "peak": peak, "messages": ctx.messages}


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory):
    """One deployed model for the module (training it is most of the cost): its own SQLite file and store."""
    import shutil

    from mlops_core.db import Database, forget_database

    folder = tmp_path_factory.mktemp("batch-scoring")
    shutil.copy(sqlite_template, folder / "hub.db")
    url = f"sqlite:///{folder / 'hub.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTIFACT_ROOT", str(folder / "artifacts"))
        mp.setenv("DATABASE_URL", url)
        mp.setenv("MLOPS_STREAM_BATCH_ROWS", str(BATCH_ROWS))
        mp.delenv("MLOPS_DASK_SCHEDULER", raising=False)
        # Small row groups in the canonical Parquet, so a test-sized file has several partitions.
        mp.setattr(data_io, "ROW_GROUP_ROWS", 2 * BATCH_ROWS)
        # (row groups gather CSV blocks: small blocks, small groups)
        mp.setattr(data_io, "csv_to_parquet", functools.partial(data_io.csv_to_parquet, block_size=32 << 10))
        reload_settings()
        db = Database(url)
        try:
            yield (db, *_deployed(db))
        finally:
            db.dispose()
            forget_database(url)
    reload_settings()


def _customers(n: int, seed: int) -> pd.DataFrame:
    frame = make_customers(n, seed=seed).drop(columns=["churned"])
    frame.loc[frame.index[::97], "total_charges"] = np.nan  # gaps, logged as null
    return frame


def test_streamed_scoring_equals_whole_file_scoring_and_its_memory_does_not_grow_with_the_file(world):
    db, people, _ = world
    small, large = _customers(2_000, seed=1), _customers(8_000, seed=2)
    before = predictions.count_predictions(db)
    first = _score(db, people, small, "small.csv")
    second = _score(db, people, large, "large.csv")

    assert second["rows"] == 8_000 and second["batches"] == 16 and second["executor"] == "local"
    assert second["messages"][-2][1] == "scored 8,000 of 8,000 rows (batch 16)"  # progress per batch
    assert len({m for _, m in second["messages"] if m.startswith("scored ")}) >= 16
    # Bounded by the batch, not the file: 4x the rows, about the same peak (Python and numpy allocations).
    assert second["peak"] < 1.5 * first["peak"], (first["peak"], second["peak"])
    assert second["peak"] < 20 * 1024 * 1024

    # The same rows as whole-file scoring of the same file (the pre-streaming path).
    whole = predictions.score_frame(db, deployment_name="churn", frame=small)
    streamed = pd.read_parquet(artifacts.path(first["parquet_key"]))
    assert list(streamed.columns) == list(whole.columns)
    assert streamed["prediction"].tolist() == whole["prediction"].tolist()
    np.testing.assert_allclose(streamed["score"].to_numpy(), whole["score"].to_numpy(), rtol=1e-12)
    pd.testing.assert_frame_equal(
        streamed[small.columns].reset_index(drop=True), small.reset_index(drop=True), check_dtype=False
    )
    csv = pd.read_csv(
        pd.io.common.BytesIO(artifacts.get_bytes(first["output_key"])), dtype={"request_id": str}, keep_default_na=True
    )
    assert len(csv) == 2_000 and csv["request_id"].tolist() == streamed["request_id"].tolist()
    assert csv["prediction"].tolist() == whole["prediction"].tolist()

    assert predictions.count_predictions(db) - before == 2_000 + 8_000 + 2_000  # every row logged, once per scoring
    rows = [p for p in predictions.recent_predictions(db, deployment_name="churn", limit=200) if p.source == "batch"]
    assert rows and all(set(p.inputs) == set(small.columns) for p in rows)


def test_a_bad_value_late_in_the_file_is_refused_before_any_row_is_logged(world):
    db, people, _ = world
    before = predictions.count_predictions(db)
    frame = _customers(2_000, seed=3).astype({"age": object})
    frame.loc[1_700, "age"] = "forty"
    with pytest.raises(ValidationError, match=r"column `age` must be numeric.*row 1,701 of the file"):
        _score(db, people, frame, "late.csv")
    assert predictions.count_predictions(db) == before


def test_partitions_scored_on_dask_equal_the_local_streamed_result(world, dask_cluster, monkeypatch):
    db, people, _ = world
    before = predictions.count_predictions(db)
    frame = _customers(4_500, seed=4)
    local = _score(db, people, frame, "local.csv")

    monkeypatch.setenv("MLOPS_DASK_SCHEDULER", dask_cluster.address)
    reload_settings()
    remote = _score(db, people, frame, "remote.csv")
    assert remote["executor"] == "dask" and remote["dask_workers"] == 2
    groups = pq.ParquetFile(artifacts.path(remote["parquet_key"].replace("scored", "canonical"))).num_row_groups
    assert remote["partitions"] == groups >= 3 and remote["rows"] == 4_500  # one row group (~1,000 rows) each
    a = pd.read_parquet(artifacts.path(local["parquet_key"]))
    b = pd.read_parquet(artifacts.path(remote["parquet_key"]))
    assert b["request_id"].str.rsplit(".", n=1).str[1].astype(int).tolist() == list(range(4_500))  # in file order
    pd.testing.assert_frame_equal(a.drop(columns=["request_id"]), b.drop(columns=["request_id"]))
    assert predictions.count_predictions(db) - before == 2 * 4_500
    assert any(f"on Dask ({groups} of {groups} partitions)" in m for _, m in remote["messages"])


def test_a_dataset_version_is_scored_from_its_stored_parquet(world):
    db, people, version_id = world
    from mlops_core.services import datasets

    v = datasets.get_version(db, version_id)
    job_id = predictions.submit_dataset_scoring(
        db, actor=people["data_scientist"], deployment_name="churn", dataset_ref=v.ref
    )
    out = predictions.batch_score_job(Ctx(db, jobs.get_job(db, job_id).payload))
    assert out["rows"] == v.n_rows and out["source"] == v.ref
    scored = pd.read_parquet(artifacts.path(out["parquet_key"]))
    expected = predictions.score_frame(db, deployment_name="churn", frame=datasets.load_frame(db, version_id))
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
