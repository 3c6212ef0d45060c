"""The artifact store API on a folder, a memory:// URL and a file:// URL (issue 8, "Running on several machines").

Every store keeps the same guarantees: a reader never sees half an artifact, a failed write leaves
nothing behind, keys never leave the store, and `path` gives a local file (downloaded into the cache
for a remote store).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from mlops_core import artifacts
from mlops_core.config import reload_settings
from mlops_core.errors import ValidationError


@pytest.fixture(params=["path", "memory", "file"])
def store(request, tmp_path, monkeypatch):
    """ARTIFACT_ROOT of each kind; yields (kind, a function listing every file the store holds)."""
    folder = tmp_path / "art"
    if request.param == "path":
        root = str(folder)
    elif request.param == "memory":
        root = f"memory://test-{uuid.uuid4().hex[:12]}/art"
    else:
        root = folder.as_uri()
    monkeypatch.setenv("ARTIFACT_ROOT", root)
    monkeypatch.setenv("ARTIFACT_CACHE_DIR", str(tmp_path / "cache"))
    reload_settings()
    mem = fsspec.filesystem("memory")
    base = root.removeprefix("memory:/")

    def stored() -> list[str]:
        if request.param == "memory":
            return sorted(p.removeprefix(base + "/") for p in mem.find(base))
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []

    yield request.param, stored
    if request.param == "memory" and mem.exists(base):
        mem.rm(base, recursive=True)
    reload_settings()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_put_get_exists_path_and_delete(store, tmp_path):
    kind, stored = store
    assert not artifacts.exists("reports/a.json")
    assert artifacts.put_bytes("reports/a.json", b'{"a": 1}') == "reports/a.json"
    src = tmp_path / "model.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    assert artifacts.put_file("runs/7/model.skops", src) == "runs/7/model.skops"
    assert artifacts.exists("reports/a.json") and artifacts.exists("runs/7/model.skops")
    assert artifacts.get_bytes("reports/a.json") == b'{"a": 1}'
    local = artifacts.path("runs/7/model.skops")
    assert isinstance(local, Path) and local.read_bytes() == src.read_bytes()
    assert stored() == ["reports/a.json", "runs/7/model.skops"]  # no temporary file left in the store
    artifacts.put_bytes("reports/a.json", b'{"a": 2}')  # rewriting a key replaces it
    assert artifacts.get_bytes("reports/a.json") == b'{"a": 2}'
    artifacts.delete("reports/a.json")
    artifacts.delete("reports/a.json")  # deleting a missing key is fine
    assert not artifacts.exists("reports/a.json")
    with pytest.raises(FileNotFoundError):
        artifacts.get_bytes("reports/a.json")
    assert not artifacts.path("reports/missing.parquet").exists()
    assert stored() == ["runs/7/model.skops"]


def test_a_failing_write_leaves_nothing_and_readers_never_see_half_an_artifact(store, tmp_path):
    kind, stored = store
    with pytest.raises(RuntimeError):
        with artifacts.open_for_write("datasets/ab/abc.parquet") as tmp:
            tmp.write_bytes(b"PAR1 half")
            assert not artifacts.exists("datasets/ab/abc.parquet"), "visible before the block finished"
            raise RuntimeError("the writer crashed")
    assert not artifacts.exists("datasets/ab/abc.parquet")
    assert stored() == []
    assert _files(artifacts.staging_dir()) == []

    artifacts.put_bytes("models/m.skops", b"old")
    with pytest.raises(RuntimeError):
        with artifacts.open_for_write("models/m.skops") as tmp:
            tmp.write_bytes(b"new but unfinished")
            raise RuntimeError("crash")
    assert artifacts.get_bytes("models/m.skops") == b"old"
    assert stored() == ["models/m.skops"]
    assert _files(artifacts.staging_dir()) == []
    assert [p for p in _files(tmp_path) if p.name.startswith(".tmp-")] == []


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../escape", "/etc/passwd", "", "a//b", "./a", "a/./b", "a/..", "C:/Windows/x", "a\\..\\..\\b"],
)
def test_keys_may_never_leave_the_store(store, key):
    for op in (artifacts.exists, artifacts.get_bytes, artifacts.path, artifacts.delete):
        with pytest.raises(ValidationError, match="invalid artifact key"):
            op(key)
    with pytest.raises(ValidationError, match="invalid artifact key"):
        artifacts.put_bytes(key, b"x")
    assert store[1]() == []


def test_path_downloads_a_remote_artifact_once_into_the_cache(store, tmp_path, monkeypatch):
    kind, _ = store
    artifacts.put_bytes("datasets/cd/cdef.parquet", b"content v1")
    first = artifacts.path("datasets/cd/cdef.parquet")
    assert first.read_bytes() == b"content v1"
    if kind != "memory":  # a local store hands out its own file: nothing is copied
        assert not (tmp_path / "cache").exists() or _files(tmp_path / "cache") == []
        assert first == Path(str(artifacts.root())) / "datasets/cd/cdef.parquet"
        return
    cache = tmp_path / "cache"
    assert first.is_relative_to(cache)
    assert [p for p in _files(cache) if p.name.startswith(".tmp-")] == []  # written atomically

    # A cached copy is used without asking the store again (content-addressed keys never change).
    fs = artifacts._store().fs
    fs.pipe_file(artifacts._store().url("datasets/cd/cdef.parquet"), b"changed behind our back")
    fs.get_file = lambda *a, **k: pytest.fail("downloaded twice")
    try:
        assert artifacts.path("datasets/cd/cdef.parquet") == first
        assert first.read_bytes() == b"content v1"
    finally:
        del fs.get_file

    # Writing or deleting through this process drops the stale copy.
    artifacts.put_bytes("datasets/cd/cdef.parquet", b"content v2")
    assert artifacts.path("datasets/cd/cdef.parquet").read_bytes() == b"content v2"
    artifacts.delete("datasets/cd/cdef.parquet")
    assert not artifacts.path("datasets/cd/cdef.parquet").exists()
    assert [p for p in _files(cache) if p.name.startswith(".tmp-")] == []

    # Another store with the same keys has its own cache folder.
    monkeypatch.setenv("ARTIFACT_ROOT", f"memory://other-{uuid.uuid4().hex[:8]}/art")
    reload_settings()
    artifacts.put_bytes("datasets/cd/cdef.parquet", b"other store")
    assert artifacts.path("datasets/cd/cdef.parquet").read_bytes() == b"other store"
    assert artifacts.path("datasets/cd/cdef.parquet") != first
    fsspec.filesystem("memory").rm(artifacts.store_id().removeprefix("memory:/"), recursive=True)


def test_store_id_root_and_staging_of_each_kind(store, tmp_path):
    kind, _ = store
    sid = artifacts.store_id()
    reload_settings()
    assert artifacts.store_id() == sid  # stable for the same settings
    staging = artifacts.staging_dir()
    assert staging.is_dir()
    if kind == "memory":
        assert sid.startswith("memory://") and artifacts.root() == sid
        assert staging.is_relative_to(tmp_path / "cache")  # local scratch, never the remote store
    else:
        assert Path(str(artifacts.root())) == tmp_path / "art"
        assert staging.is_relative_to(tmp_path / "art")  # one filesystem: the final move is a rename
        assert sid == (str(tmp_path / "art") if kind == "path" else (tmp_path / "art").as_uri())


def test_a_missing_driver_package_is_one_line_naming_it(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here")
    monkeypatch.setenv("ARTIFACT_ROOT", "s3://mlops-bucket/hub")
    monkeypatch.setenv("ARTIFACT_CACHE_DIR", str(tmp_path / "cache"))
    reload_settings()
    try:
        with pytest.raises(artifacts.ArtifactStoreError) as err:
            artifacts.exists("datasets/x.parquet")
        assert str(err.value) == "ARTIFACT_ROOT uses s3://, which needs the s3fs package: pip install s3fs"
        monkeypatch.setenv("ARTIFACT_ROOT", "nosuchproto://bucket/hub")
        reload_settings()
        with pytest.raises(artifacts.ArtifactStoreError, match="unknown protocol nosuchproto://"):
            artifacts.put_bytes("a.txt", b"x")
    finally:
        monkeypatch.undo()
        reload_settings()
