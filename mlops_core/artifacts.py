"""The artifact store: datasets (Parquet), models (skops), plots and reports.

Artifacts are named by relative keys (e.g. "datasets/ab/abcdef.parquet") under ARTIFACT_ROOT, which is

- a folder: local, or a shared filesystem path mounted on every machine (NFS, EFS, SMB). A write goes
  to a temporary file beside the destination, renamed into place (os.replace);
- an fsspec URL: `s3://bucket/prefix` (needs `pip install s3fs`), `gcs://...` (gcsfs), `abfs://...`
  (adlfs), `file:///...`, or `memory://...` (tests). A write goes to a local temporary file that is
  uploaded in one put once it is finished, so an object appears whole or not at all (on a `file://`
  URL the temporary file is in the store's .staging folder and is renamed into place).

Either way a reader never sees half an artifact, and a failed write leaves nothing behind.

`path(key)` gives a local filename for libraries that want one (pyarrow, skops). On a remote store
the artifact is downloaded once into ARTIFACT_CACHE_DIR (written atomically there too): the keys read
through `path` (dataset versions, samples) are content-addressed and never change, so a cached copy
stays valid. Read anything that may be rewritten with `get_bytes`. Staging (uploads being converted)
is local scratch space: inside a local store (so the final rename stays on one filesystem), under
ARTIFACT_CACHE_DIR for a remote one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from .config import DATA_DIR, get_settings
from .errors import DomainError, ValidationError


class ArtifactStoreError(DomainError):
    """ARTIFACT_ROOT cannot be used (unknown protocol, missing driver package)."""


@dataclass(frozen=True)
class _Store:
    id: str  # stable string naming the store (same settings -> same id, in every process)
    local: Path | None  # the folder holding the files when they are local (a path or a file:// URL)
    fs: Any = None  # the fsspec filesystem of a URL store
    base: str = ""  # the root inside `fs`, without a trailing slash

    @property
    def is_url(self) -> bool:
        return self.fs is not None

    @property
    def is_remote(self) -> bool:
        """Files are not on a local filesystem: `path` downloads them into the cache."""
        return self.fs is not None and self.local is None

    def url(self, key: str) -> str:
        return f"{self.base}/{key}" if self.base else key


def is_url(root: str) -> bool:
    """Whether an ARTIFACT_ROOT value is an fsspec URL (rather than a folder path)."""
    return "://" in root or "::" in root


def _missing_package(protocol: str) -> str | None:
    """The pip package an fsspec protocol needs when it is not installed, else None."""
    # fsspec only for non-local artifact stores
    from fsspec.registry import known_implementations

    impl = known_implementations.get(protocol)
    if not impl:
        return None
    module = impl["class"].split(".")[0]
    return None if importlib.util.find_spec(module) is not None else module


def _filesystem(root: str):
    # fsspec only for non-local artifact stores
    import fsspec
    from fsspec.registry import known_implementations, registry

    protocols = [part.split("://", 1)[0] if "://" in part else part for part in root.split("::")]
    for protocol in protocols:
        if protocol not in known_implementations and protocol not in registry:
            raise ArtifactStoreError(
                f"ARTIFACT_ROOT uses the unknown protocol {protocol}://; use a folder path or an fsspec URL "
                "such as s3://bucket/prefix, gcs://bucket/prefix or file:///shared/folder"
            )
        package = _missing_package(protocol)
        if package:
            raise ArtifactStoreError(
                f"ARTIFACT_ROOT uses {protocol}://, which needs the {package} package: pip install {package}"
            )
    try:
        return fsspec.core.url_to_fs(root)
    except ImportError as exc:  # the package is there but its driver does not load
        raise ArtifactStoreError(
            f"ARTIFACT_ROOT uses {protocols[-1]}://, whose fsspec driver does not load: {exc}"
        ) from exc


@lru_cache(maxsize=32)
def _open(root: str, pid: int) -> _Store:
    """The store of an ARTIFACT_ROOT value; per process (`pid`), as a forked job must not reuse its parent's
    connections (fsspec's own instance cache does the same)."""
    if not is_url(root):
        folder = Path(root).expanduser()
        return _Store(id=str(folder), local=folder)
    # fsspec only for non-local artifact stores
    from fsspec.implementations.local import LocalFileSystem

    fs, base = _filesystem(root)
    base = base.rstrip("/")
    local = Path(base) if isinstance(fs, LocalFileSystem) else None
    return _Store(id=root.rstrip("/"), local=local, fs=fs, base=base)


def _store() -> _Store:
    return _open(get_settings().artifact_root, os.getpid())


def _clean(key: str) -> str:
    """The key, validated: relative, no '..', '.' or empty parts (it may never leave the store)."""
    norm = str(key).replace("\\", "/")
    parts = norm.split("/")
    if (
        not norm
        or norm.startswith("/")
        or (len(parts[0]) == 2 and parts[0][1] == ":")
        or any(part in ("..", ".", "") for part in parts)
    ):
        raise ValidationError(f"invalid artifact key {key!r}")
    return norm


def root() -> Path | str:
    """The store's root: a local folder (created if missing) or, for a remote store, its URL."""
    s = _store()
    if s.local is not None:
        s.local.mkdir(parents=True, exist_ok=True)
        return s.local
    return s.id


def store_id() -> str:
    """A stable string identifying the store (for cache keys shared by several workspaces in one process)."""
    return _store().id


def cache_dir() -> Path:
    """Local scratch folder for a URL store: downloaded copies and staging (ARTIFACT_CACHE_DIR)."""
    configured = get_settings().artifact_cache_dir
    return Path(configured).expanduser() if configured else DATA_DIR / "artifact_cache"


def staging_dir() -> Path:
    """Local folder for temporary files (uploads being converted), created if missing.

    For a folder (or file:// URL) store it is inside it, so that moving a finished file into the store is
    a rename on one filesystem; for a remote store it is under the local cache folder, never the store.
    """
    s = _store()
    d = (s.local / ".staging") if s.local is not None else cache_dir() / "staging"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _cached(s: _Store, key: str) -> Path:
    return cache_dir() / "objects" / hashlib.sha256(s.id.encode()).hexdigest()[:16] / key


def _forget_cached(s: _Store, key: str) -> None:
    if s.is_remote:
        _cached(s, key).unlink(missing_ok=True)


def path(key: str) -> Path:
    """Local filename of an artifact (for libraries that want one, e.g. pyarrow).

    On a remote store the artifact is downloaded into the cache on first use; a missing artifact gives
    a path that does not exist. Only for keys whose content never changes (content-addressed data).
    """
    key = _clean(key)
    s = _store()
    if not s.is_remote:
        return s.local / key
    dest = _cached(s, key)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=dest.suffix)
    os.close(fd)
    try:
        s.fs.get_file(s.url(key), tmp_name)
        os.replace(tmp_name, dest)
    except FileNotFoundError:
        pass
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dest


def exists(key: str) -> bool:
    key = _clean(key)
    s = _store()
    if not s.is_url:
        return (s.local / key).exists()
    return bool(s.fs.exists(s.url(key)))


def put_bytes(key: str, data: bytes) -> str:
    with open_for_write(key) as tmp:
        tmp.write_bytes(data)
    return key


def get_bytes(key: str) -> bytes:
    """The artifact's content; FileNotFoundError when it is missing."""
    key = _clean(key)
    s = _store()
    if not s.is_url:
        return (s.local / key).read_bytes()
    return s.fs.cat_file(s.url(key))


def put_file(key: str, src: str | os.PathLike) -> str:
    with open_for_write(key) as tmp:
        shutil.copyfile(src, tmp)
    return key


def _upload(s: _Store, tmp: Path, key: str) -> None:
    dest = s.url(key)
    if s.local is None:  # object store: one put, the object appears whole
        s.fs.put_file(str(tmp), dest)
        return
    # file:// URL: the temporary file is in the store's .staging folder, so this is a rename (atomic)
    s.fs.makedirs(s.fs._parent(dest), exist_ok=True)
    s.fs.mv(str(tmp), dest)


@contextmanager
def open_for_write(key: str) -> Iterator[Path]:
    """Yield a temporary local path to write; it becomes `key` only if the block succeeds."""
    key = _clean(key)
    s = _store()
    if s.is_url:
        folder = staging_dir()
    else:
        folder = (s.local / key).parent
        folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=PurePosixPath(key).suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if s.is_url:
            _upload(s, tmp, key)
            _forget_cached(s, key)
        else:
            os.replace(tmp, s.local / key)
    finally:
        if tmp.exists():
            tmp.unlink()


def delete(key: str) -> None:
    key = _clean(key)
    s = _store()
    if not s.is_url:
        (s.local / key).unlink(missing_ok=True)
        return
    if s.fs.exists(s.url(key)):
        s.fs.rm_file(s.url(key))
    _forget_cached(s, key)
