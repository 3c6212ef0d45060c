"""Every bad input of issue 4: a clear message that says what to fix, and nothing half-stored."""

import io
import time

import pandas as pd
import pytest

from mlops_core import artifacts, data_io
from mlops_core.errors import ValidationError
from mlops_core.services import datasets
from tests.conftest import make_people


@pytest.fixture
def dan(sqlite_db):
    return make_people(sqlite_db)["data_engineer"]


def _upload(db, dan, content: bytes, filename="data.csv"):
    return datasets.register_version_from_upload(
        db, actor=dan, dataset_name="upload", fileobj=io.BytesIO(content), filename=filename
    )


def _nothing_stored(db):
    assert datasets.list_datasets(db) == []
    root = artifacts.root()
    leftovers = [p for p in root.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"age,income\n", "header but no data rows"),
        (b"age;income;plan\n30;1000;basic\n", "separated by semicolons"),
        (b"age\tincome\n30\t1000\n", "separated by tabs"),
        (b"name,city\nJos\xe9,K\xf6ln\n", "not UTF-8"),
        (b"na\xefve,b\n1,2\n", "header row is not UTF-8"),
        (b"a,b,c\n1,2,3\n4,5,6,7\n", "a row has 4 fields but the header has 3"),
        (b"age,income,age\n1,2,3\n", "duplicate column names: 'age'"),
        (b"age,,plan\n1,2,x\n", "column 2 of the header has no name"),
    ],
    ids=[
        "empty",
        "header-only",
        "semicolons",
        "tabs",
        "latin-1-cells",
        "latin-1-header",
        "ragged",
        "duplicate-names",
        "unnamed-column",
    ],
)
def test_bad_csv_gets_a_clear_message_and_nothing_is_stored(sqlite_db, dan, content, message):
    with pytest.raises(ValidationError, match=message):
        _upload(sqlite_db, dan, content)
    _nothing_stored(sqlite_db)


def test_a_file_named_parquet_that_is_not_parquet_is_refused(sqlite_db, dan):
    with pytest.raises(ValidationError, match="named like a Parquet file but is not one"):
        _upload(sqlite_db, dan, b"age,income\n1,2\n", filename="data.parquet")
    _nothing_stored(sqlite_db)


def test_a_truncated_parquet_file_is_refused(sqlite_db, dan, tmp_path):
    p = tmp_path / "x.parquet"
    pd.DataFrame({"a": range(100)}).to_parquet(p)
    data = p.read_bytes()
    broken = data[:4] + b"\0" * 20 + data[-8:]
    with pytest.raises(ValidationError, match="Parquet file could not be read"):
        _upload(sqlite_db, dan, broken, filename="x.parquet")
    _nothing_stored(sqlite_db)


def test_a_real_parquet_upload_works(sqlite_db, dan, tmp_path):
    p = tmp_path / "x.parquet"
    pd.DataFrame({"a": range(10), "b": list("abcdefghij")}).to_parquet(p)
    v = _upload(sqlite_db, dan, p.read_bytes(), filename="x.parquet")
    assert (v.n_rows, v.n_cols, v.status) == (10, 2, "validated")


class NeverRead(io.RawIOBase):
    """An upload that declares its size and fails the test if anyone reads it."""

    def __init__(self, size):
        self.size = size

    def read(self, n=-1):
        raise AssertionError("the file was read although its size is over the limit")


def test_over_the_size_limit_is_refused_before_reading(sqlite_db, dan, monkeypatch):
    from mlops_core.config import reload_settings

    monkeypatch.setenv("MLOPS_MAX_UPLOAD_MB", "1")
    reload_settings()
    with pytest.raises(ValidationError, match="over the upload limit of 1 MB"):
        datasets.register_version_from_upload(
            sqlite_db, actor=dan, dataset_name="big", fileobj=NeverRead(5 << 20), filename="big.csv"
        )
    _nothing_stored(sqlite_db)


def test_a_stream_of_unknown_size_is_stopped_at_the_limit(tmp_path, sqlite_db):
    class Endless:
        read_bytes = 0

        def read(self, n=-1):
            self.read_bytes += n
            return b"1,2\n" * (n // 4)

    src = Endless()
    with pytest.raises(ValidationError, match="over the upload limit"):
        data_io.stage_upload(src, "x.csv", limit=3 << 20)
    assert src.read_bytes <= (3 << 20) + data_io.CHUNK
    assert list(data_io.staging_dir().iterdir()) == []


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\customers.csv", "customers.csv"),
        ("/abs/path/to/data.csv", "data.csv"),
        ("..", "upload"),
        ("we\x00ird\nname;rm -rf.csv", "weirdname_rm -rf.csv"),
    ],
)
def test_filenames_lose_their_path_separators(name, expected):
    assert data_io.sanitize_filename(name) == expected


def test_an_upload_with_a_path_in_its_name_is_stored_under_its_content_hash(sqlite_db, dan):
    v = _upload(sqlite_db, dan, b"a,b\n1,2\n3,4\n", filename="../../../tmp/evil.csv")
    assert v.source == "evil.csv"
    assert v.artifact_key == f"datasets/{v.content_hash[:2]}/{v.content_hash}.parquet"
    assert artifacts.path(v.artifact_key).resolve().is_relative_to(artifacts.root().resolve())


def test_formula_cells_are_kept_as_data_and_exports_are_neutralised(sqlite_db, dan):
    content = b'name,amount,note\n=1+1,-3,@SUM(A1)\n+49 30 123,4,"=HYPERLINK(""http://x"")"\nplain,5,-dash\n'
    v = _upload(sqlite_db, dan, content)
    frame = datasets.load_frame(sqlite_db, v.id)
    assert frame["name"].tolist() == ["=1+1", "+49 30 123", "plain"]
    assert frame["amount"].tolist() == [-3, 4, 5]
    exported = datasets.export_csv(sqlite_db, v.id).decode()
    assert exported.splitlines() == [
        "name,amount,note",
        "'=1+1,-3,'@SUM(A1)",
        "'+49 30 123,4,\"'=HYPERLINK(\"\"http://x\"\")\"",
        "plain,5,'-dash",
    ]


def test_a_late_odd_value_widens_the_column_instead_of_failing(tmp_path):
    p = tmp_path / "late.csv"
    with p.open("w") as f:
        f.write("id,amount\n")
        for i in range(200_000):
            f.write(f"{i},{i % 97}\n")
        f.write("200000,n/a-ish\n")
    out = data_io.csv_to_parquet(p, block_size=1 << 16)
    try:
        assert out.n_rows == 200_001
        assert {c["name"]: c["type"] for c in out.columns} == {"id": "integer", "amount": "string"}
    finally:
        out.discard()


def test_a_million_row_upload_is_streamed_and_registered(sqlite_db, dan, tmp_path):
    path = tmp_path / "million.csv"
    n = 1_000_000
    ids = pd.RangeIndex(n)
    pd.DataFrame({"id": ids, "bucket": ids % 7}).to_csv(path, index=False)
    start = time.perf_counter()
    with path.open("rb") as f:
        v = datasets.register_version_from_upload(
            sqlite_db, actor=dan, dataset_name="million", fileobj=f, filename="million.csv"
        )
    elapsed = time.perf_counter() - start
    assert (v.n_rows, v.status) == (n, "validated")
    profile = datasets.get_profile(sqlite_db, v.id)
    assert profile.n_rows == n and profile.sample_rows < 60_000
    assert elapsed < 60
