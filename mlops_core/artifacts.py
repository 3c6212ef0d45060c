"""The artifact store: datasets (Parquet), models (skops), plots and reports.

Paths are relative keys (e.g. "datasets/ab/abcdef.parquet") under ARTIFACT_ROOT, a local
folder or a shared filesystem path mounted on every machine. Writes go to a temporary
file and are renamed into place, so a reader never sees half a file and a crash never
leaves one behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .config import get_settings
from .errors import ValidationError


def root() -> Path:
    r = Path(get_settings().artifact_root).expanduser()
    r.mkdir(parents=True, exist_ok=True)
    return r


def _safe(key: str) -> Path:
    key = key.replace("\\", "/").lstrip("/")
    if not key or any(part in ("..", "") for part in key.split("/")):
        raise ValidationError(f"invalid artifact key {key!r}")
    return root() / key


def path(key: str) -> Path:
    """Local path of an artifact (for libraries that want a filename, e.g. pyarrow)."""
    return _safe(key)


def exists(key: str) -> bool:
    return _safe(key).exists()


def put_bytes(key: str, data: bytes) -> str:
    with open_for_write(key) as tmp:
        tmp.write_bytes(data)
    return key


def get_bytes(key: str) -> bytes:
    return _safe(key).read_bytes()


def put_file(key: str, src: str | os.PathLike) -> str:
    with open_for_write(key) as tmp:
        shutil.copyfile(src, tmp)
    return key


@contextmanager
def open_for_write(key: str) -> Iterator[Path]:
    """Yield a temporary path to write; it is renamed to `key` only if the block succeeds."""
    dest = _safe(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=dest.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def delete(key: str) -> None:
    p = _safe(key)
    if p.exists():
        p.unlink()
