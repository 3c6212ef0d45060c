"""Issue 12, finding 10 (two items).

- CSV exports quoted formula cells but not formula column names: a header such as `=HYPERLINK(...)` ran when
  the export was opened in a spreadsheet.
- Server-file ingestion answered "no file at ..." for a missing path outside MLOPS_INGEST_ROOTS and "outside the
  allowed folders" for an existing one, so a data engineer could probe what exists on the server.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from mlops_core import data_io
from mlops_core.errors import ValidationError
from mlops_core.services import datasets

FORMULA_NAMES = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd", "-2+3", "@SUM(A1)"]


@pytest.fixture
def dan(people):
    return people["data_engineer"]


def _header(csv_bytes: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))


def test_an_exported_csv_quotes_formula_column_names(db, dan):
    frame = pd.DataFrame({name: [i] for i, name in enumerate(FORMULA_NAMES)} | {"plain": ["=1+1"]})
    v = datasets.register_version_from_frame(db, actor=dan, dataset_name="tricky", frame=frame)
    out = datasets.export_csv(db, v.id)
    header = _header(out)
    assert header[-1] == "plain"
    for name in header[:-1]:
        assert name.startswith("'"), f"header {name!r} would run as a formula"
    assert [h[1:] for h in header[:-1]] == FORMULA_NAMES
    rows = list(csv.reader(io.StringIO(out.decode("utf-8"))))
    assert rows[1][-1] == "'=1+1"  # cells were already quoted; still are


def test_column_names_starting_with_a_tab_or_carriage_return_are_quoted_too():
    # Registration strips such whitespace from names; an export of any frame must still be safe.
    out = data_io.to_safe_csv(pd.DataFrame({"\tTAB": [1], "\rCR": [2]}))
    assert _header(out) == ["'\tTAB", "'\rCR"]


def test_plain_and_numeric_looking_column_names_are_left_alone():
    out = data_io.to_safe_csv(pd.DataFrame({"age": [1], "2024": [2], "net-amount": [3]}))
    assert _header(out) == ["age", "2024", "net-amount"]


@pytest.fixture
def roots(tmp_path, monkeypatch):
    inside = tmp_path / "inbox"
    inside.mkdir()
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "salaries.csv").write_text("name,salary\nann,1\n")
    monkeypatch.setenv("MLOPS_INGEST_ROOTS", str(inside))
    return inside, outside


def _refusal(path) -> str:
    with pytest.raises(ValidationError) as err:
        data_io.check_server_path(str(path))
    return str(err.value)


def test_a_path_outside_the_folders_gets_the_same_answer_whether_or_not_it_exists(roots):
    inside, outside = roots
    existing, missing = outside / "salaries.csv", outside / "no-such-file.csv"
    a, b = _refusal(existing), _refusal(missing)
    assert "outside the folders" in a and "outside the folders" in b
    assert a.replace(str(existing), "<p>") == b.replace(str(missing), "<p>")
    assert "no file" not in b


def test_dot_dot_and_symlinks_out_of_the_folders_are_resolved_before_the_check(roots):
    inside, outside = roots
    (inside / "link").symlink_to(outside)
    for path in (
        inside / ".." / "private" / "salaries.csv",
        inside / ".." / "private" / "missing.csv",
        inside / "link" / "salaries.csv",
        inside / "link" / "missing.csv",
    ):
        assert "outside the folders" in _refusal(path), path


def test_a_missing_file_inside_the_folders_is_reported_as_missing(roots):
    inside, _ = roots
    assert "no file at" in _refusal(inside / "later.csv")


def test_registering_from_a_path_outside_the_folders_says_outside_and_stores_nothing(db, dan, roots):
    _, outside = roots
    for path in (outside / "salaries.csv", outside / "nothing-here.csv"):
        with pytest.raises(ValidationError, match="outside the folders"):
            datasets.register_version_from_path(db, actor=dan, dataset_name="probe", path=str(path))
    assert datasets.list_datasets(db) == []


def test_the_batch_scoring_download_neutralises_formula_column_names_and_cells(sqlite_db, monkeypatch):
    """The scored CSV of a batch upload carries the uploader's own column names back to whoever downloads it."""
    from types import SimpleNamespace

    from mlops_core import artifacts
    from mlops_core.serving.schema import RecordValidator
    from mlops_core.services import predictions

    class Model:  # answers 1 for every row; no classes_, so no score column
        def predict(self, X):
            return [1] * len(X)

    served = (SimpleNamespace(id=1, model_version_id=1), Model(), RecordValidator([{"name": FORMULA_NAMES[0]}]))
    monkeypatch.setattr(predictions, "_served_model", lambda db, name: served)
    monkeypatch.setattr(predictions, "_decision", lambda db, d, model: (None, None))
    monkeypatch.setattr(predictions, "log_predictions", lambda db, rows: len(rows))
    upload = pd.DataFrame({FORMULA_NAMES[0]: ["=1+1", "ok"]}).to_csv(index=False).encode()
    key = artifacts.put_bytes("batch_scoring/t/input.csv", upload)

    class Ctx:
        db = sqlite_db
        payload = {"input_key": key, "filename": "input.csv", "deployment": "churn"}

        def progress(self, fraction, message):
            pass

        def check_cancelled(self):
            pass

    out = predictions.batch_score_job(Ctx())
    body = artifacts.get_bytes(out["output_key"])
    header = _header(body)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert not header[0].startswith("="), header
    assert header[0].endswith(FORMULA_NAMES[0])
    assert not rows[1][0].startswith("="), rows[1]
