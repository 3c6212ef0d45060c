"""Batch scoring uploads are held to the limits of the security issue (issue 12) before anything is read or
queued (issue 16, "Bad input and faults"): a Parquet file whose footer says 2,000,000,000 rows is refused at
submit from its footer (bytes or a file object), and again by the job if such a file reaches the store another
way; a file over MLOPS_MAX_UPLOAD_MB is refused by its size. Nothing is queued or stored for a refused upload."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_core import artifacts, jobs
from mlops_core.config import reload_settings
from mlops_core.errors import ValidationError
from mlops_core.serving.schema import RecordValidator
from mlops_core.services import deployments, predictions
from mlops_core.services.auth import Actor

pytestmark = pytest.mark.slow  # building the 2e9-row file takes ~10 s

CLAIMED_ROWS = 2_000_000_000

# Written in a child process: a null column of 2e9 rows is cheap (no values), but not free to build.
MAKE = r"""
import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"tenure_months": pa.nulls(int(sys.argv[1]))}), sys.argv[2], row_group_size=int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def claims_2b_rows(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("footer") / "claims.parquet"
    subprocess.run([sys.executable, "-c", MAKE, str(CLAIMED_ROWS), str(path)], check=True, timeout=120)
    assert path.stat().st_size < 10_000_000  # a few MB on disk
    return path


@pytest.fixture
def served(sqlite_db, monkeypatch):
    """A deployment that serves a model (the refusals come before the model is ever needed)."""
    monkeypatch.setattr(
        deployments, "get_by_name", lambda db, name: SimpleNamespace(id=1, name=name, model_version_id=1)
    )
    return sqlite_db


def _stored() -> list[Path]:
    root = artifacts.root()
    return [p for p in Path(root).rglob("*") if p.is_file() and ".staging" not in p.parts]


def _submit(db, data, filename="claims.parquet"):
    return predictions.submit_batch_scoring(
        db,
        actor=Actor(id=1, username="sara", role="data_scientist"),
        deployment_name="churn",
        filename=filename,
        data=data,
    )


def test_a_footer_claiming_2_billion_rows_is_refused_at_submit_before_any_row_is_read(served, claims_2b_rows):
    data = claims_2b_rows.read_bytes()
    for source in (data, io.BytesIO(data)):
        started = time.monotonic()
        with pytest.raises(ValidationError) as err:
            _submit(served, source)
        assert time.monotonic() - started < 5  # from the footer: 2e9 rows are never decoded
        assert f"{CLAIMED_ROWS:,} rows, over the limit of" in str(err.value)
        assert "MLOPS_MAX_DATASET_ROWS" in str(err.value)
    assert jobs.list_jobs(served) == []
    assert _stored() == []


def test_the_job_refuses_such_a_file_from_its_footer_too(served, claims_2b_rows, monkeypatch):
    """A file put in the store another way (an older hub, a script) meets the same limit in the job."""
    validator = RecordValidator([{"name": "tenure_months", "type": "number"}])
    monkeypatch.setattr(predictions, "_served_model", lambda db, name: (SimpleNamespace(id=1), object(), validator))
    monkeypatch.setattr(predictions, "_decision", lambda db, d, model: (None, None))
    key = artifacts.put_file("batch_scoring/x/input.parquet", claims_2b_rows)

    class Ctx:
        db = served
        payload = {"deployment": "churn", "input_key": key, "filename": "claims.parquet"}

        def progress(self, fraction, message):
            pass

        def check_cancelled(self):
            pass

    started = time.monotonic()
    with pytest.raises(ValidationError, match="MLOPS_MAX_DATASET_ROWS"):
        predictions.batch_score_job(Ctx())
    assert time.monotonic() - started < 5
    assert not artifacts.exists("batch_scoring/x/scored.csv") and not artifacts.exists(
        "batch_scoring/x/canonical.parquet"
    )


def test_an_upload_over_the_size_limit_is_refused_by_its_size(served, monkeypatch):
    monkeypatch.setenv("MLOPS_MAX_UPLOAD_MB", "1")
    reload_settings()
    big = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB
    for source in (big, io.BytesIO(big)):
        with pytest.raises(ValidationError, match="over the upload limit of 1 MB"):
            _submit(served, source, filename="big.csv")
    assert jobs.list_jobs(served) == [] and _stored() == []
    reload_settings()
